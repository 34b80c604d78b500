"""A real OAuth 2.0 server for the wire tests (tests/wire.rs): oauthlib's
server-side validation behind Python's http.server, on loopback, set up as
CARTO's Auth0 tenant is for its clients.

    python oauth_server.py '<json>'

The JSON argument:
  client_id       CARTO's public client: no secret, PKCE S256 required;
                  authorization code and device code grants
  m2m             {client_id: client_secret}: confidential clients with the
                  client credentials grant only
  redirect_uris   the redirect URIs registered for the public client
  audience        the one audience Auth0 accepts (its extension to OAuth)
  user            whom the browser is signed in as at /authorize

Endpoints (the paths of CARTO's, so that CARTO_AUTH_URL and
CARTO_ACCOUNTS_URL can both point here):
  GET  /authorize          oauthlib's authorization endpoint; a valid request
                           is approved at once (a signed-in browser) and
                           answered 302 to redirect_uri?code=...
  POST /oauth/token        oauthlib's token endpoint: authorization_code
                           (PKCE), client_credentials, device_code
  POST /oauth/device/code  oauthlib's RFC 8628 device authorization endpoint
  GET  /activate?user_code=...  the user approves a device login
  GET  /accounts           a resource that oauthlib's bearer validation guards
                           (CARTO's accounts service: tenant_domain)
  GET  /config.yaml        the tenant's configuration (apis.baseUrl)

Output, on stdout, one JSON object per line: first {"listening": base URL},
then one per request: {"endpoint", "status", "valid", and what oauthlib
validated: "grant_type", "client_id", "error", the form's "keys" in order,
...}. A request oauthlib refuses is logged with its error, never hidden.
"""

import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

# Loopback only, so no TLS: oauthlib refuses plain http unless told.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import oauthlib  # noqa: E402
from oauthlib.common import generate_token  # noqa: E402
from oauthlib.oauth2 import Server  # noqa: E402
from oauthlib.oauth2.rfc6749 import errors  # noqa: E402
from oauthlib.oauth2.rfc8628.endpoints import DeviceAuthorizationEndpoint  # noqa: E402
from oauthlib.oauth2.rfc8628.grant_types import DeviceCodeGrant  # noqa: E402
from oauthlib.oauth2.rfc8628.request_validator import RequestValidator  # noqa: E402

ARGS = json.loads(sys.argv[1])
PUBLIC = ARGS["client_id"]
M2M = ARGS["m2m"]
REDIRECT_URIS = ARGS["redirect_uris"]
AUDIENCE = ARGS["audience"]
USER = ARGS.get("user", "auth0|oauthlib-user")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GRANTS = {PUBLIC: {"authorization_code", DEVICE_GRANT}}
GRANTS.update({client: {"client_credentials"} for client in M2M})
TOKEN_LIFETIME = 3600
USER_CODE_CHARS = "BCDFGHJKLMNPQRSTVWXZ"

LOCK = threading.Lock()
CODES = {}  # authorization code -> what was authorized
DEVICES = {}  # device_code -> device login
USER_CODES = {}  # user_code -> device_code
TOKENS = {}  # access token -> (client_id, user, expiry)


def log(**entry):
    with LOCK:
        sys.stdout.write(json.dumps(entry) + "\n")
        sys.stdout.flush()


class Client:
    def __init__(self, client_id):
        self.client_id = client_id


class CartoValidator(RequestValidator):
    """What CARTO's tenant knows: its clients, their grants and redirect
    URIs, and the codes and tokens it issued."""

    # -- clients --
    def client_authentication_required(self, request, *args, **kwargs):
        # The public client has no secret; every other client has one.
        return request.client_id != PUBLIC

    def authenticate_client(self, request, *args, **kwargs):
        # client_secret_post, as Auth0 takes it (and as both packages send).
        expected = M2M.get(request.client_id)
        secret = request.client_secret
        if expected is None or secret is None:
            return False
        if not hmac.compare_digest(expected.encode(), secret.encode()):
            return False
        request.client = Client(request.client_id)
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        if client_id != PUBLIC or request.client_secret is not None:
            return False
        request.client = Client(client_id)
        return True

    def validate_client_id(self, client_id, request, *args, **kwargs):
        # Only the public client signs people in (authorize, device code).
        return client_id == PUBLIC

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type in GRANTS.get(client_id, ())

    # -- authorization requests --
    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        return client_id == PUBLIC and redirect_uri in REDIRECT_URIS

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        return None  # two are registered: the client must say which

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return client_id == PUBLIC and response_type == "code"

    def is_pkce_required(self, client_id, request):
        return client_id == PUBLIC

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return []

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        # The Python package's authorize URL carries `scope=None`, the
        # literal word (CARTO_PROTOCOL.md); Auth0 ignores a scope it does
        # not know. No other scope is granted here.
        return set(scopes) <= {"None"}

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        with LOCK:
            CODES[code["code"]] = {
                "client_id": client_id,
                "redirect_uri": request.redirect_uri,
                "challenge": request.code_challenge,
                "method": request.code_challenge_method,
                "user": request.user,
                "scopes": request.scopes,
                "used": False,
            }

    # -- the code exchange --
    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        with LOCK:
            issued = CODES.get(code)
        if issued is None or issued["used"] or issued["client_id"] != client_id:
            return False
        request.user = issued["user"]
        request.scopes = issued["scopes"]
        return True

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *a, **k):
        return CODES[code]["redirect_uri"] == redirect_uri

    def get_code_challenge(self, code, request):
        return CODES[code]["challenge"]

    def get_code_challenge_method(self, code, request):
        return CODES[code]["method"]

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        with LOCK:
            CODES[code]["used"] = True

    # -- the device grant --
    def validate_device_code(self, client_id, code, request, *args, **kwargs):
        with LOCK:
            device = DEVICES.get(code)
            if device is None or device["client_id"] != client_id:
                return None
            if time.time() > device["expires_at"]:
                return DeviceCodeGrant.DEVICE_CODE_EXPIRED
            if device["status"] != "approved":
                return DeviceCodeGrant.DEVICE_CODE_PENDING
            device["status"] = "used"
        request.user = device["user"]
        request.scopes = []
        return DeviceCodeGrant.DEVICE_CODE_AUTHORIZED

    # -- tokens --
    def save_bearer_token(self, token, request, *args, **kwargs):
        with LOCK:
            TOKENS[token["access_token"]] = (
                request.client_id,
                request.user,
                time.time() + token["expires_in"],
            )

    def validate_bearer_token(self, token, scopes, request):
        with LOCK:
            held = TOKENS.get(token)
        if held is None or time.time() > held[2]:
            return False
        request.client_id, request.user = held[0], held[1]
        return True


def require_audience(request):
    """Auth0's extension: an `audience` parameter naming CARTO's API.
    oauthlib knows nothing of it, so this check is ours."""
    if request.audience != AUDIENCE:
        raise errors.InvalidRequestError(
            description="audience must be %s" % AUDIENCE, request=request
        )
    return {}


def require_s256(request):
    if request.code_challenge_method != "S256":
        raise errors.InvalidRequestError(
            description="PKCE with code_challenge_method=S256 is required", request=request
        )
    return {}


def require_form(request):
    """RFC 6749, 4.1.3 / 4.4.2: the token request is a form."""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise errors.InvalidRequestError(
            description="Content-Type must be application/x-www-form-urlencoded",
            request=request,
        )


VALIDATOR = CartoValidator()
SERVER = Server(VALIDATOR, token_expires_in=TOKEN_LIFETIME)
# Auth0 issues no refresh token unless offline_access is asked for.
for grant in (SERVER.auth_grant, SERVER.credentials_grant, SERVER.device_code_grant):
    grant.refresh_token = False
    grant.custom_validators.pre_token.append(require_form)
SERVER.auth_grant.custom_validators.pre_auth.extend([require_audience, require_s256])
for grant in (SERVER.auth_grant, SERVER.credentials_grant):
    grant.custom_validators.pre_token.append(require_audience)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    device_endpoint = None  # set once the address is known

    def log_message(self, format, *args):
        return  # the JSON log on stdout is the log

    def base(self):
        host, port = self.server.server_address[:2]
        return "http://%s:%d" % (host, port)

    def answer(self, status, body, headers=None, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        sent = {k.lower() for k in (headers or {})}
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "content-type" not in sent:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8") if length else ""

    def uri(self):
        return self.base() + self.path

    def do_GET(self):
        path = urlsplit(self.path).path
        try:
            if path == "/authorize":
                return self.authorize()
            if path == "/activate":
                return self.activate()
            if path == "/accounts":
                return self.accounts()
            if path == "/config.yaml":
                log(endpoint="config.yaml", status=200, valid=True)
                body = "apis:\n  baseUrl: %s/api\n" % self.base()
                return self.answer(200, body, content_type="text/yaml")
            return self.answer(404, '{"error": "not_found"}')
        except Exception as e:  # noqa: BLE001 - a bug here must show in the test
            log(endpoint=path, status=500, valid=False, error="%s: %s" % (type(e).__name__, e))
            return self.answer(500, json.dumps({"error": "server_error"}))

    def do_POST(self):
        path = urlsplit(self.path).path
        body = self.read_body()
        try:
            if path == "/oauth/token":
                return self.token(body)
            if path == "/oauth/device/code":
                return self.device_code(body)
            return self.answer(404, '{"error": "not_found"}')
        except Exception as e:  # noqa: BLE001
            log(endpoint=path, status=500, valid=False, error="%s: %s" % (type(e).__name__, e))
            return self.answer(500, json.dumps({"error": "server_error"}))

    def authorize(self):
        query = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
        entry = {"endpoint": "authorize", "keys": [k for k, _ in query]}
        try:
            scopes, credentials = SERVER.validate_authorization_request(
                self.uri(), "GET", None, dict(self.headers)
            )
        except (errors.FatalClientError, errors.OAuth2Error) as e:
            log(status=400, valid=False, error=e.error, description=e.description, **entry)
            return self.answer(400, e.json)
        # The browser is signed in and consents: approved at once.
        credentials.pop("request", None)
        credentials["user"] = USER
        headers, body, status = SERVER.create_authorization_response(
            self.uri(), "GET", None, dict(self.headers), scopes, credentials
        )
        log(
            status=status,
            valid=status == 302,
            client_id=credentials.get("client_id"),
            redirect_uri=credentials.get("redirect_uri"),
            code_challenge_method=credentials.get("code_challenge_method"),
            scopes=scopes,
            **entry,
        )
        return self.answer(status, body or "", headers, content_type="text/html")

    def token(self, body):
        keys = [k for k, _ in parse_qsl(body, keep_blank_values=True)]
        form = dict(parse_qsl(body, keep_blank_values=True))
        try:
            headers, answer, status = SERVER.create_token_response(
                self.uri(), "POST", body, dict(self.headers)
            )
        except errors.OAuth2Error as e:  # refused before a grant saw it
            headers, answer, status = e.headers, e.json, e.status_code
        parsed = json.loads(answer) if answer else {}
        log(
            endpoint="token",
            status=status,
            valid=status == 200,
            grant_type=form.get("grant_type"),
            client_id=form.get("client_id"),
            keys=keys,
            content_type=self.headers.get("Content-Type"),
            error=parsed.get("error"),
            description=parsed.get("error_description"),
            access_token=parsed.get("access_token"),
        )
        return self.answer(status, answer, headers)

    def device_code(self, body):
        keys = [k for k, _ in parse_qsl(body, keep_blank_values=True)]
        form = dict(parse_qsl(body, keep_blank_values=True))
        entry = {"endpoint": "device_code", "keys": keys, "client_id": form.get("client_id")}
        if form.get("audience") != AUDIENCE:  # Auth0's extension, checked by us
            log(status=400, valid=False, error="invalid_request", description="audience", **entry)
            return self.answer(400, json.dumps({"error": "invalid_request"}))
        try:
            headers, data, status = self.device_endpoint.create_device_authorization_response(
                self.uri(), "POST", body, dict(self.headers)
            )
        except errors.OAuth2Error as e:
            log(status=e.status_code, valid=False, error=e.error, description=e.description,
                **entry)
            return self.answer(e.status_code, e.json)
        if status == 200:
            with LOCK:
                DEVICES[data["device_code"]] = {
                    "client_id": form.get("client_id"),
                    "status": "pending",
                    "user": None,
                    "expires_at": time.time() + data["expires_in"],
                }
                USER_CODES[data["user_code"]] = data["device_code"]
        log(status=status, valid=status == 200, user_code=data.get("user_code"), **entry)
        body = json.dumps(data) if isinstance(data, dict) else data
        return self.answer(status, body, headers)

    def activate(self):
        user_code = dict(parse_qsl(urlsplit(self.path).query)).get("user_code")
        with LOCK:
            device = DEVICES.get(USER_CODES.get(user_code))
            if device is not None and device["status"] == "pending":
                device["status"], device["user"] = "approved", USER
                approved = True
            else:
                approved = False
        status = 200 if approved else 404
        log(endpoint="activate", status=status, valid=approved, user_code=user_code)
        return self.answer(status, "<html>approved</html>", content_type="text/html")

    def accounts(self):
        valid, request = SERVER.verify_request(self.uri(), "GET", None, dict(self.headers))
        status = 200 if valid else 401
        log(endpoint="accounts", status=status, valid=valid, client_id=request.client_id)
        if not valid:
            return self.answer(status, json.dumps({"error": "Unauthorized"}))
        tenant = "%s:%d" % self.server.server_address[:2]
        return self.answer(200, json.dumps({"tenant_domain": tenant}))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = "http://127.0.0.1:%d" % server.server_address[1]
    Handler.device_endpoint = DeviceAuthorizationEndpoint(
        VALIDATOR,
        verification_uri=base + "/activate",
        verification_uri_complete=base + "/activate?user_code={user_code}",
        expires_in=600,
        interval=1,
        # Short and readable, as Auth0's are (it says BCDF-GHJK).
        user_code_generator=lambda: "-".join(generate_token(4, USER_CODE_CHARS) for _ in "ab"),
    )
    log(listening=base, oauthlib=oauthlib.__version__)
    server.serve_forever()


if __name__ == "__main__":
    main()
