//! The Python peers of the interop tests, run by the tests' Python
//! ([`tools::python`](super::tools::python): scripts/test's virtual
//! environment): CARTO's own package `carto-auth` 0.2.0 through
//! `tests/peer/carto_auth_peer.py`, and a real OAuth server, oauthlib's
//! validation behind `tests/peer/oauth_server.py`. A missing Python or
//! package fails the test; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use carto_auth::Endpoints;
use serde_json::{Value, json};

use super::{AUDIENCE, CLIENT_ID, ChildSession, M2M_ID, M2M_SECRET, finish_child};

const TIMEOUT: Duration = Duration::from_secs(60);

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peer")
        .join(name)
}

/// An M2M application whose id and secret hold every printable ASCII
/// character and some beyond (a space, `~`, `*`, `é`, an emoji): where two
/// form encoders can part ways.
pub fn awkward_m2m() -> (String, String) {
    let ascii: String = ('!'..='~').collect();
    ("m2m~client*B.(1)!'".into(), format!("a b{ascii}é€😀"))
}

/// What one run of the Python package gave: whether it exited well, its
/// JSON line (see the harness), and its stderr.
pub struct PeerRun {
    pub success: bool,
    pub out: Value,
    pub stderr: String,
}

/// CARTO's Python package once, against the fake at `fake_base`, with
/// `HOME` and `TZ` as given (see `carto_auth_peer.py` for `args`).
pub fn carto_auth_peer(fake_base: &str, home: &Path, tz: &str, args: &Value) -> PeerRun {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    let python = PYTHON.get_or_init(|| super::tools::python(&["carto_auth", "requests"]));
    let mut args = args.clone();
    args["fake"] = fake_base.into();
    let child = Command::new(python)
        .arg(script("carto_auth_peer.py"))
        .arg(args.to_string())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TZ", tz)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (success, out, stderr) = finish_child(child, TIMEOUT);
    let line = out.lines().last().unwrap_or_default();
    let out = serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("TZ={tz}: the harness printed no JSON:\n{out}\n{stderr}"));
    PeerRun {
        success,
        out,
        stderr,
    }
}

/// oauthlib's OAuth server on loopback, set up as CARTO's tenant: the
/// public client (PKCE S256, authorization code and device code grants,
/// CARTO's two redirect URIs), the M2M applications [`M2M_ID`] and
/// [`awkward_m2m`] (client credentials), the audience. Its log, one JSON
/// object per request, says what oauthlib validated.
pub struct OauthServer {
    pub base: String,
    pub oauthlib_version: String,
    session: ChildSession,
    /// Log entries already handed out by [`OauthServer::next_entry`].
    read: usize,
}

impl OauthServer {
    pub fn start() -> OauthServer {
        static PYTHON: OnceLock<PathBuf> = OnceLock::new();
        let python = PYTHON.get_or_init(|| super::tools::python(&["oauthlib"]));
        let carto = Endpoints::carto();
        let (awkward_id, awkward_secret) = awkward_m2m();
        let args = json!({
            "client_id": CLIENT_ID,
            "m2m": {M2M_ID: M2M_SECRET, awkward_id: awkward_secret},
            "redirect_uris": [carto.redirect_uri, carto.paste_redirect_uri],
            "audience": AUDIENCE,
        });
        let child = Command::new(python)
            .arg(script("oauth_server.py"))
            .arg(args.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut session = ChildSession::new(child);
        let line = session.wait_line(TIMEOUT, |l| l.starts_with(r#"{"listening""#));
        let hello: Value = serde_json::from_str(&line).unwrap();
        let read = session.seen.len();
        OauthServer {
            base: hello["listening"].as_str().unwrap().to_string(),
            oauthlib_version: hello["oauthlib"].as_str().unwrap().to_string(),
            session,
            read,
        }
    }

    /// CARTO's endpoints with the OAuth server and the accounts service
    /// here; the redirect URIs stay CARTO's (the paste flow never visits
    /// its redirect URI: the user copies the address).
    pub fn endpoints(&self) -> Endpoints {
        let mut e = Endpoints::carto();
        e.auth_url = self.base.clone();
        e.accounts_url = self.base.clone();
        e.issuer = format!("{}/", self.base);
        e
    }

    /// The next log entry (waiting at most a minute) for `endpoint`,
    /// skipping those of other endpoints.
    pub fn next_entry(&mut self, endpoint: &str) -> Value {
        loop {
            while self.session.seen.len() <= self.read {
                self.session.wait_new_line(TIMEOUT, |_| true);
            }
            let (is_err, line) = &self.session.seen[self.read];
            self.read += 1;
            if *is_err {
                continue; // Python's own warnings
            }
            let entry: Value = serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("the OAuth server logged a non-JSON line: {line}"));
            if entry["endpoint"] == endpoint {
                return entry;
            }
        }
    }

    /// The next log entry for `endpoint`, which oauthlib must have
    /// validated (its log and stderr are shown when it did not).
    pub fn accepted(&mut self, endpoint: &str) -> Value {
        let entry = self.next_entry(endpoint);
        assert_eq!(
            entry["valid"],
            true,
            "oauthlib refused: {entry:#}\n{}",
            self.stderr()
        );
        entry
    }

    /// Everything the server printed on stderr so far (a traceback).
    pub fn stderr(&mut self) -> String {
        self.session.has_line(|_| false);
        self.session
            .seen
            .iter()
            .filter(|(e, _)| *e)
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for OauthServer {
    fn drop(&mut self) {
        let _ = self.session.child.kill();
        let _ = self.session.child.wait();
    }
}
