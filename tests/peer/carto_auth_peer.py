"""CARTO's Python package `carto-auth` 0.2.0 as a peer of the Rust crate's
tests (tests/python_peer.rs): the real package, unchanged, pointed at the
tests' fake CARTO.

    python carto_auth_peer.py '<json>'

The JSON argument:
  fake          the fake's base URL, "http://127.0.0.1:<port>"
  mode          "m2m" or "oauth"
  cache         the cache file (cache_filepath)
  creds         M2M: the credentials file
  api_base_url  OAuth, optional: passed to from_oauth (skips discovery)
  get           whether to call get_access_token() (default true)
  clock         optional: real Unix times to convert to the package's clock

It prints ONE line of JSON on stdout: the token the package handed out, the
expiration its object holds (in the package's own clock), the package's
"now" in that clock and the real Unix time, how many times it asked the
user, and every URL it requested (as rewritten). Any exception gives
{"ok": false, "error": ...} and exit status 1. The time zone is the
process's TZ, as for any user of the package.
"""

import json
import sys
import time
import traceback
from datetime import datetime
from urllib.parse import urlsplit

import requests

import carto_auth
import carto_auth.pkce as pkce
from carto_auth import CartoAuth

ARGS = json.loads(sys.argv[1])
FAKE = ARGS["fake"].rstrip("/")
FAKE_NETLOC = urlsplit(FAKE).netloc

# What the package asked for, after rewriting: [method, url].
REQUESTED = []
# How many times the package asked the user for the code.
ASKED = []


def rewrite(url):
    """The package's hard-coded CARTO URLs, moved to the fake. Anything else
    is refused: these tests never reach the real service."""
    for real in ("https://auth.carto.com", "https://accounts.app.carto.com"):
        if url == real or url.startswith(real + "/"):
            return FAKE + url[len(real):]
    # The config.yaml fetch built from tenant_domain ("127.0.0.1:<port>").
    if url.startswith("https://" + FAKE_NETLOC + "/"):
        return "http://" + url[len("https://"):]
    if url.startswith(FAKE + "/"):
        return url
    raise RuntimeError("the package asked for a URL outside the fake CARTO: " + url)


_request = requests.Session.request


def request(self, method, url, *args, **kwargs):
    url = rewrite(url)
    REQUESTED.append([method, url])
    return _request(self, method, url, *args, **kwargs)


# Every call of requests (requests.get/post and sessions) goes through here.
requests.Session.request = request

# The PKCE flow's module globals: CartoPKCE reads them when it runs.
pkce.OAUTH_AUTHORIZE_URL = FAKE + "/authorize"
pkce.OAUTH_TOKEN_URL = FAKE + "/oauth/token"
pkce.REDIRECT_URI_CLI = FAKE + "/auth/token"


def play_the_user(self, prompt):
    """The user: opens the authorize URL the prompt shows, is signed in by
    the fake, and pastes the address CARTO sent the browser to."""
    ASKED.append(1)
    url = next(
        line.strip() for line in prompt.splitlines() if line.startswith("http")
    )
    answer = requests.get(url, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(
            "the fake refused the authorize URL: %s %s" % (answer.status_code, answer.text)
        )
    return answer.headers["Location"]


pkce.CartoPKCE._input = play_the_user


def main():
    mode = ARGS["mode"]
    if mode == "m2m":
        auth = CartoAuth.from_m2m(ARGS["creds"], cache_filepath=ARGS["cache"])
    elif mode == "oauth":
        auth = CartoAuth.from_oauth(
            cache_filepath=ARGS["cache"],
            open_browser=False,
            api_base_url=ARGS.get("api_base_url"),
        )
    else:
        raise ValueError("unknown mode " + mode)
    token = auth.get_access_token() if ARGS.get("get", True) else None
    return {
        "ok": True,
        "version": getattr(carto_auth, "__version__", None),
        "token": token,
        # The object's own token and expiration (its clock: naive UTC read
        # as local time).
        "held_token": auth._access_token,
        "expiration": auth._expiration,
        "api_base_url": auth.get_api_base_url(),
        "python_now": datetime.utcnow().timestamp(),
        "real_now": time.time(),
        # The package's number for each real Unix time asked: the naive UTC
        # wall time of that instant read as local time, as its
        # `(datetime.utcnow() + timedelta(...)).timestamp()` does.
        "clock": [
            int(datetime.utcfromtimestamp(t).timestamp()) for t in ARGS.get("clock", [])
        ],
        "asked": len(ASKED),
        "requested": REQUESTED,
    }


if __name__ == "__main__":
    try:
        out = main()
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything is reported
        out = {
            "ok": False,
            "error": "%s: %s" % (type(e).__name__, e),
            "traceback": traceback.format_exc(),
            "requested": REQUESTED,
        }
        code = 1
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    sys.exit(code)
