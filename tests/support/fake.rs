//! A fake CARTO on loopback that checks what it is sent the way the real
//! service does (PKCE, exact form fields, registered redirect URIs, bearer
//! tokens that must be issued and unexpired) and records every request.
//! Its access tokens are JWTs as Auth0 issues them, for whoever the browser
//! is signed in as; it can issue opaque tokens too.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use carto_auth::Endpoints;
use serde_json::json;

use super::device::{Approval, Devices, PollAnswer};
use super::jwt::{self, Subject};
use super::{PortLease, header, http_get, lease_port, pairs, random_word, url_escape};

pub const CLIENT_ID: &str = "0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u";
pub const AUDIENCE: &str = "carto-cloud-native-api";
pub const M2M_ID: &str = "m2m-client-A";
pub const M2M_SECRET: &str = "m2m-secret-Zq8wXv3";
/// A second M2M application of the same organization (same API).
pub const M2M_ID_B: &str = "m2m-client-B";
pub const M2M_SECRET_B: &str = "m2m-secret-Bb71kQ";
/// Whom the browser is signed in as, unless a test says otherwise.
pub const USER_ANA: &str = "auth0|ana-6123";
pub const USER_BEN: &str = "auth0|ben-9876";
/// The code exchange's form fields, in the Python package's order.
pub const CODE_EXCHANGE_FORM: [&str; 6] = [
    "client_id",
    "grant_type",
    "audience",
    "code",
    "redirect_uri",
    "code_verifier",
];

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub body: String,
    pub authorization: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    pub at: Instant,
    /// The client's address: one per connection.
    pub peer: Option<std::net::SocketAddr>,
}

impl Recorded {
    /// A request as it arrived: method, path, query, body (read), the
    /// form it holds, its headers (names lower case).
    pub fn from_request(request: &mut tiny_http::Request) -> Recorded {
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.to_string().to_ascii_lowercase(),
                    h.value.to_string(),
                )
            })
            .collect();
        let authorization = headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone());
        Recorded {
            method: request.method().to_string(),
            path: path.to_string(),
            query: pairs(query),
            form: pairs(&body),
            body,
            authorization,
            headers,
            at: Instant::now(),
            peer: request.remote_addr().copied(),
        }
    }

    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn form_keys(&self) -> Vec<&str> {
        self.form.iter().map(|(k, _)| k.as_str()).collect()
    }
    pub fn form_value(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn bearer(&self) -> Option<&str> {
        self.authorization.as_deref()?.strip_prefix("Bearer ")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }
}

/// What a faulty endpoint answers instead of the real thing.
#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16, String),
    Html,
    Empty,
    Json(String),
    Slow(Duration),
    /// Closes the connection without answering.
    Drop,
    /// Answers normally, but only after this delay (a busy server).
    Delay(Duration),
    /// Answers normally once the test opens the gate: a server busy for
    /// exactly as long as the test needs.
    Hold(Gate),
}

/// What a [`Fault::Hold`] waits for.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Lets every held request through, now and later.
    pub fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }

    fn wait(&self) {
        let (open, cv) = &*self.0;
        let _open = cv.wait_while(open.lock().unwrap(), |open| !*open).unwrap();
    }
}

struct Issued {
    challenge: String,
    redirect_uri: String,
    used: bool,
    sub: String,
    org: Option<String>,
}

/// How the authorize endpoint's redirect names its issuer (RFC 9207).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssParam {
    None,
    Ours,
    Other(String),
}

pub(crate) struct State {
    requests: Vec<Recorded>,
    codes: HashMap<String, Issued>,
    /// Every token issued, with its real expiry.
    tokens: Vec<(String, i64)>,
    faults: HashMap<String, Fault>,
    expires_in: i64,
    counter: u64,
    user: String,
    opaque: bool,
    m2m_apps: HashMap<String, String>,
    iss_param: IssParam,
    devices: Devices,
    /// Extra routes (the SQL API, say): path prefix to handler.
    pub(crate) extra: Vec<(String, super::Route)>,
    /// The CARTO Data Warehouse tokens handed out, shared with the fake
    /// BigQuery (`bigquery.rs`), which accepts only those not revoked.
    pub(crate) dw: Arc<Mutex<super::bigquery::DwTokens>>,
}

pub struct FakeCarto {
    pub base: String,
    pub port: u16,
    /// The local redirect URI registered for the public client (a free port).
    pub redirect_uri: String,
    /// The redirect URI's port, reserved while the fake lives.
    _redirect_port: PortLease,
    server: Arc<tiny_http::Server>,
    pub(crate) state: Arc<Mutex<State>>,
    /// Notified after each request is recorded, and again once answered.
    recorded: Arc<Condvar>,
}

impl FakeCarto {
    pub fn start() -> FakeCarto {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind fake CARTO"));
        let port = server.server_addr().to_ip().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        // Leased, not just free now: the login's callback server binds it
        // later, in this process or a child.
        let redirect_port = lease_port();
        let redirect_uri = format!("http://localhost:{}/callback/", redirect_port.port);
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            codes: HashMap::new(),
            tokens: Vec::new(),
            faults: HashMap::new(),
            expires_in: 86_400,
            counter: 0,
            user: USER_ANA.into(),
            opaque: false,
            m2m_apps: HashMap::from([
                (M2M_ID.to_string(), M2M_SECRET.to_string()),
                (M2M_ID_B.to_string(), M2M_SECRET_B.to_string()),
            ]),
            iss_param: IssParam::None,
            devices: Devices::default(),
            extra: Vec::new(),
            dw: Arc::default(),
        }));
        let recorded = Arc::new(Condvar::new());
        let fake = FakeCarto {
            base: base.clone(),
            port,
            redirect_uri: redirect_uri.clone(),
            _redirect_port: redirect_port,
            server: server.clone(),
            state: state.clone(),
            recorded: recorded.clone(),
        };
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let (state, recorded, base, redirect_uri) = (
                    state.clone(),
                    recorded.clone(),
                    base.clone(),
                    redirect_uri.clone(),
                );
                std::thread::spawn(move || {
                    handle(request, &state, &recorded, &base, &redirect_uri)
                });
            }
        });
        fake
    }

    /// Endpoints pointing here, as `CARTO_*` variables would.
    pub fn endpoints(&self) -> Endpoints {
        let mut e = Endpoints::carto();
        e.auth_url = self.base.clone();
        e.accounts_url = self.base.clone();
        e.redirect_uri = self.redirect_uri.clone();
        e.paste_redirect_uri = format!("{}/auth/token", self.base);
        e.success_page = format!("{}/auth/success", self.base);
        e.error_page = format!("{}/auth/error", self.base);
        e.issuer = self.issuer();
        e
    }

    /// The issuer of its tokens, as Auth0 writes it (a trailing slash).
    pub fn issuer(&self) -> String {
        format!("{}/", self.base)
    }

    /// The same as environment variables, for child processes.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CARTO_AUTH_URL".into(), self.base.clone()),
            ("CARTO_ACCOUNTS_URL".into(), self.base.clone()),
            ("CARTO_AUTH_REDIRECT_URI".into(), self.redirect_uri.clone()),
            (
                "CARTO_AUTH_PASTE_REDIRECT_URI".into(),
                format!("{}/auth/token", self.base),
            ),
        ]
    }

    pub fn api_base_url(&self) -> String {
        format!("{}/api", self.base)
    }

    /// Writes `path` as the Python package writes a cache of this fake's
    /// API: byte for byte what its `json.dump` gives, three keys, none of
    /// ours, and an expiration far away in any clock.
    pub fn write_python_cache(&self, path: &std::path::Path, token: &str) {
        std::fs::write(
            path,
            format!(
                r#"{{"api_base_url": "{}", "access_token": "{token}", "expiration": 99999999999}}"#,
                self.api_base_url()
            ),
        )
        .unwrap();
    }

    pub fn set_expires_in(&self, seconds: i64) {
        self.state.lock().unwrap().expires_in = seconds;
    }

    /// Whom the browser is signed in as: the next codes and device
    /// approvals are this user's.
    pub fn sign_in_as(&self, sub: &str) {
        self.state.lock().unwrap().user = sub.into();
    }

    /// Issue opaque tokens (not JWTs) from now on, or JWTs again.
    pub fn set_opaque_tokens(&self, opaque: bool) {
        self.state.lock().unwrap().opaque = opaque;
    }

    /// Whether, and with which issuer, the authorize redirect carries `iss`.
    pub fn set_iss_param(&self, iss: IssParam) {
        self.state.lock().unwrap().iss_param = iss;
    }

    /// Makes the endpoint at `path` (e.g. "/oauth/token") answer `fault`.
    pub fn fault(&self, path: &str, fault: Fault) {
        self.state.lock().unwrap().faults.insert(path.into(), fault);
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Every request so far, in the order they arrived.
    pub fn all_requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Registers one more M2M application (any characters in its id and
    /// secret: the wire tests send awkward ones).
    pub fn add_m2m_app(&self, client_id: &str, secret: &str) {
        self.state
            .lock()
            .unwrap()
            .m2m_apps
            .insert(client_id.into(), secret.into());
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .tokens
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Issues a token directly, as if from an earlier sign-in of `subject`,
    /// valid for `expires_in` seconds from now (negative: already expired).
    pub fn mint_token(&self, subject: &Subject, expires_in: i64) -> String {
        let mut s = self.state.lock().unwrap();
        let azp = match subject {
            Subject::Client { client_id } => client_id.clone(),
            Subject::User { .. } => CLIENT_ID.to_string(),
        };
        issue_token(&mut s, &self.issuer(), &azp, subject, expires_in)
    }

    /// Waits (bounded) until `count` requests to `path` have arrived; the
    /// recorded requests to it, or a panic after `timeout`.
    pub fn wait_requests(&self, path: &str, count: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        loop {
            let seen: Vec<Recorded> = s
                .requests
                .iter()
                .filter(|r| r.path == path)
                .cloned()
                .collect();
            if seen.len() >= count {
                return seen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{count} requests to {path} did not arrive within {timeout:?} (saw {})",
                seen.len()
            );
            s = self.recorded.wait_timeout(s, left).unwrap().0;
        }
    }

    /// The user code of the `nth` device login this fake started (0: the
    /// first), waiting (bounded) until it has been issued. Counted, not
    /// "the latest": a request to `/oauth/device/code` is recorded before
    /// its code is issued, so the latest code can still be the previous
    /// login's.
    pub fn wait_user_code(&self, nth: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        loop {
            if let Some(code) = s.devices.issued.get(nth) {
                return code.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "device login {nth} got no code within {timeout:?} ({} issued)",
                s.devices.issued.len()
            );
            s = self.recorded.wait_timeout(s, left).unwrap().0;
        }
    }

    /// Approves a device login as the browser's current user.
    pub fn approve_device(&self, user_code: &str) {
        let mut s = self.state.lock().unwrap();
        let sub = s.user.clone();
        let grant = s
            .devices
            .by_user_code(user_code)
            .unwrap_or_else(|| panic!("no device login with code {user_code}"));
        grant.approval = Approval::Approved { sub };
    }

    pub fn deny_device(&self, user_code: &str) {
        let mut s = self.state.lock().unwrap();
        s.devices.by_user_code(user_code).unwrap().approval = Approval::Denied;
    }

    pub fn expire_device(&self, user_code: &str) {
        let mut s = self.state.lock().unwrap();
        s.devices.by_user_code(user_code).unwrap().expires_at = Instant::now();
    }

    /// What the next device logins are told: their lifetime and polling
    /// interval in seconds, as JSON (1 s and 600 s unless set).
    pub fn device_timing(&self, expires_in: serde_json::Value, interval: serde_json::Value) {
        let mut s = self.state.lock().unwrap();
        s.devices.expires_in = expires_in;
        s.devices.interval = interval;
    }

    /// The next poll of this device login is answered `slow_down`.
    pub fn slow_down_device(&self, user_code: &str) {
        let mut s = self.state.lock().unwrap();
        s.devices.by_user_code(user_code).unwrap().slow_down_next = true;
    }

    /// When each poll of a device login came.
    pub fn device_polls(&self, user_code: &str) -> Vec<Instant> {
        let mut s = self.state.lock().unwrap();
        s.devices.by_user_code(user_code).unwrap().polls.clone()
    }

    /// Every secret value that went through this fake: the access tokens it
    /// issued, the authorization and device codes it issued, and the code
    /// verifiers, codes and client secrets it was sent. What the crate
    /// prints, logs, displays or returns as an error must contain none.
    pub fn secrets(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let mut out: Vec<String> = s
            .tokens
            .iter()
            .map(|(t, _)| t.clone())
            .chain(s.codes.keys().cloned())
            .chain(s.devices.grants.keys().cloned())
            .collect();
        for r in &s.requests {
            for key in ["code", "code_verifier", "client_secret", "device_code"] {
                if let Some(v) = r.form_value(key) {
                    out.push(v.to_string());
                }
            }
        }
        out.extend(s.m2m_apps.values().cloned());
        out.retain(|v| !v.is_empty());
        out.sort();
        out.dedup();
        out
    }

    /// See [`follow_authorize`].
    pub fn authorize(&self, authorize_url: &str) -> String {
        follow_authorize(authorize_url)
    }

    pub fn m2m_credentials_file(&self, dir: &std::path::Path) -> std::path::PathBuf {
        self.m2m_credentials_file_for(dir, M2M_ID, M2M_SECRET)
    }

    /// A credentials file of one of the fake's M2M applications.
    pub fn m2m_credentials_file_for(
        &self,
        dir: &std::path::Path,
        client_id: &str,
        secret: &str,
    ) -> std::path::PathBuf {
        let path = dir.join(format!("credentials_{client_id}.json"));
        std::fs::write(
            &path,
            format!(
                r#"{{"api_base_url": "{}", "client_id": "{client_id}", "client_secret": "{secret}"}}"#,
                self.api_base_url()
            ),
        )
        .unwrap();
        path
    }

    /// Whether `token` is one the fake issued and is unexpired now, as the
    /// real API would accept it.
    pub fn accepts(&self, token: &str) -> bool {
        bearer_token_ok(&self.state.lock().unwrap(), token)
    }

    /// [`accepts`](Self::accepts) as a function another fake (the Maps
    /// API's, on its own server) can keep.
    pub fn acceptor(&self) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let state = self.state.clone();
        Arc::new(move |token| bearer_token_ok(&state.lock().unwrap(), token))
    }
}

impl Drop for FakeCarto {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn issue_token(
    s: &mut State,
    issuer: &str,
    azp: &str,
    subject: &Subject,
    expires_in: i64,
) -> String {
    s.counter += 1;
    let now = now_unix();
    let exp = now + expires_in;
    let token = if s.opaque {
        format!("opaque-{}-{}{}", s.counter, random_word(), random_word())
    } else {
        jwt::issue(issuer, AUDIENCE, azp, subject, now, exp)
    };
    s.tokens.push((token.clone(), exp));
    token
}

fn bearer_token_ok(s: &State, token: &str) -> bool {
    s.tokens
        .iter()
        .any(|(t, exp)| t == token && *exp > now_unix())
}

fn handle(
    mut request: tiny_http::Request,
    state: &Mutex<State>,
    recorded_cv: &Condvar,
    base: &str,
    redirect_uri: &str,
) {
    let recorded = Recorded::from_request(&mut request);
    let path = recorded.path.as_str();
    let fault = {
        let mut s = state.lock().unwrap();
        s.requests.push(recorded.clone());
        s.faults.get(path).cloned()
    };
    recorded_cv.notify_all();
    let fault = match fault {
        Some(Fault::Delay(delay)) => {
            std::thread::sleep(delay);
            None
        }
        Some(Fault::Hold(gate)) => {
            gate.wait();
            None
        }
        other => other,
    };
    if let Some(fault) = fault {
        return answer_fault(request, fault);
    }
    let (status, body, location, content_type) = route(&recorded, state, base, redirect_uri);
    // What the route changed (a device code issued) is waited on too.
    recorded_cv.notify_all();
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    response.add_header(tiny_http::Header::from_bytes("Content-Type", content_type).unwrap());
    if let Some(location) = location {
        response.add_header(tiny_http::Header::from_bytes("Location", location).unwrap());
    }
    let _ = request.respond(response);
}

fn answer_fault(request: tiny_http::Request, fault: Fault) {
    let (status, body, content_type) = match fault {
        Fault::Status(status, body) => (status, body, "application/json"),
        Fault::Html => (
            200,
            "<!doctype html><h1>Gateway</h1>".to_string(),
            "text/html",
        ),
        Fault::Empty => (200, String::new(), "application/json"),
        Fault::Json(body) => (200, body, "application/json"),
        Fault::Slow(delay) => {
            std::thread::sleep(delay);
            (200, "{}".to_string(), "application/json")
        }
        Fault::Drop => return drop(request),
        Fault::Delay(_) | Fault::Hold(_) => unreachable!("served by the normal route"),
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    response.add_header(tiny_http::Header::from_bytes("Content-Type", content_type).unwrap());
    let _ = request.respond(response);
}

pub(crate) type Answer = (u16, String, Option<String>, &'static str);

fn json_error(status: u16, error: &str, description: &str) -> Answer {
    (
        status,
        json!({"error": error, "error_description": description}).to_string(),
        None,
        "application/json",
    )
}

fn route(r: &Recorded, state: &Mutex<State>, base: &str, redirect_uri: &str) -> Answer {
    let paste_uri = format!("{base}/auth/token");
    let issuer = format!("{base}/");
    let extra = {
        let s = state.lock().unwrap();
        s.extra
            .iter()
            .find(|(prefix, _)| r.path.starts_with(prefix.as_str()))
            .map(|(_, handler)| handler.clone())
    };
    if let Some(handler) = extra {
        let ok = bearer_token_ok(&state.lock().unwrap(), r.bearer().unwrap_or(""));
        let (status, body) = handler(r, ok);
        return (status, body, None, "application/json");
    }
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/authorize") => authorize(r, state, redirect_uri, &paste_uri),
        ("POST", "/oauth/token") => token(r, state, &issuer),
        ("POST", "/oauth/device/code") => device_code(r, state, base),
        ("GET", "/accounts") => {
            if !bearer_token_ok(&state.lock().unwrap(), r.bearer().unwrap_or("")) {
                return json_error(401, "Unauthorized", "a valid bearer token is required");
            }
            let domain = base.trim_start_matches("http://");
            (
                200,
                format!(r#"{{"id":"ac_fake","tenant_domain":"{domain}"}}"#),
                None,
                "application/json",
            )
        }
        ("GET", "/config.yaml") => (
            200,
            format!("version: 1\napis:\n  baseUrl: {base}/api\n  otherUrl: x\n"),
            None,
            "text/yaml",
        ),
        ("GET", "/api/v3/connections/carto-dw/token") => {
            if !bearer_token_ok(&state.lock().unwrap(), r.bearer().unwrap_or("")) {
                return json_error(401, "Unauthorized", "a valid bearer token is required");
            }
            // A new Google access token on every call, as CARTO hands out.
            let dw = state.lock().unwrap().dw.clone();
            let token = dw.lock().unwrap().issue();
            let body = json!({"projectId": super::bigquery::DW_PROJECT, "token": token});
            (200, body.to_string(), None, "application/json")
        }
        ("GET", "/auth/token") => {
            let code = r.query_value("code").unwrap_or("");
            (
                200,
                format!("<html><body>Your code: <pre>{code}</pre></body></html>"),
                None,
                "text/html",
            )
        }
        ("GET", "/auth/success") | ("GET", "/auth/error") | ("GET", "/activate") => {
            (200, "<html>done</html>".into(), None, "text/html")
        }
        _ => (404, "not found".into(), None, "text/plain"),
    }
}

fn authorize(r: &Recorded, state: &Mutex<State>, redirect_uri: &str, paste_uri: &str) -> Answer {
    let q = |k| r.query_value(k).unwrap_or("");
    let redirect = q("redirect_uri");
    if q("client_id") != CLIENT_ID || q("response_type") != "code" || q("audience") != AUDIENCE {
        return json_error(
            400,
            "invalid_request",
            "bad client_id, response_type or audience",
        );
    }
    if redirect != redirect_uri && redirect != paste_uri {
        return json_error(400, "invalid_request", "redirect_uri is not registered");
    }
    let challenge = q("code_challenge");
    if q("code_challenge_method") != "S256" || challenge.len() != 43 {
        return json_error(400, "invalid_request", "PKCE S256 challenge required");
    }
    if !matches!(r.query_value("prompt"), None | Some("login")) {
        return json_error(400, "invalid_request", "unsupported prompt");
    }
    let mut s = state.lock().unwrap();
    let mut to = if q("organization") == "denied-org" {
        format!("{redirect}?error=access_denied&error_description=Org%20denied")
    } else {
        s.counter += 1;
        let code = format!("code{}x{}", s.counter, random_word());
        let sub = s.user.clone();
        s.codes.insert(
            code.clone(),
            Issued {
                challenge: challenge.into(),
                redirect_uri: redirect.into(),
                used: false,
                sub,
                org: r.query_value("organization").map(str::to_string),
            },
        );
        format!("{redirect}?code={code}")
    };
    if let Some(st) = r.query_value("state") {
        to.push_str(&format!("&state={}", url_escape(st)));
    }
    let base = paste_uri.trim_end_matches("/auth/token");
    match &s.iss_param {
        IssParam::None => {}
        IssParam::Ours => to.push_str(&format!("&iss={}", url_escape(&format!("{base}/")))),
        IssParam::Other(iss) => to.push_str(&format!("&iss={}", url_escape(iss))),
    }
    (302, String::new(), Some(to), "text/html")
}

fn device_code(r: &Recorded, state: &Mutex<State>, base: &str) -> Answer {
    let mut keys = r.form_keys();
    keys.sort_unstable();
    let allowed = [
        vec!["audience", "client_id"],
        vec!["audience", "client_id", "organization"],
    ];
    if !allowed.contains(&keys) {
        return json_error(400, "invalid_request", "unexpected form fields");
    }
    if r.form_value("client_id") != Some(CLIENT_ID) {
        return json_error(401, "invalid_client", "Unknown client");
    }
    if r.form_value("audience") != Some(AUDIENCE) {
        return json_error(403, "access_denied", "Service not found");
    }
    let mut s = state.lock().unwrap();
    let (device_code, user_code) = s
        .devices
        .start(r.form_value("organization").map(str::to_string));
    let body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": format!("{base}/activate"),
        "verification_uri_complete": format!("{base}/activate?user_code={user_code}"),
        "expires_in": s.devices.expires_in,
        "interval": s.devices.interval,
    });
    (200, body.to_string(), None, "application/json")
}

fn token(r: &Recorded, state: &Mutex<State>, issuer: &str) -> Answer {
    let mut s = state.lock().unwrap();
    let mut keys = r.form_keys();
    keys.sort_unstable();
    let f = |k| r.form_value(k).unwrap_or("");
    let (azp, subject) = match f("grant_type") {
        "authorization_code" => {
            if keys
                != [
                    "audience",
                    "client_id",
                    "code",
                    "code_verifier",
                    "grant_type",
                    "redirect_uri",
                ]
            {
                return json_error(400, "invalid_request", "unexpected form fields");
            }
            if f("client_id") != CLIENT_ID || f("audience") != AUDIENCE {
                return json_error(401, "access_denied", "Unauthorized");
            }
            let Some(issued) = s.codes.get_mut(f("code")) else {
                return json_error(403, "invalid_grant", "Invalid authorization code");
            };
            if issued.used {
                return json_error(403, "invalid_grant", "Invalid authorization code");
            }
            if issued.redirect_uri != f("redirect_uri") {
                issued.used = true;
                return json_error(403, "invalid_grant", "redirect_uri does not match");
            }
            let digest = ring::digest::digest(&ring::digest::SHA256, f("code_verifier").as_bytes());
            let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            let verifier_len = f("code_verifier").len();
            if expected != issued.challenge || !(43..=128).contains(&verifier_len) {
                // Auth0 burns the code on a failed exchange too.
                issued.used = true;
                return json_error(403, "invalid_grant", "Failed to verify code verifier");
            }
            issued.used = true;
            (
                CLIENT_ID.to_string(),
                Subject::User {
                    sub: issued.sub.clone(),
                    org_id: issued.org.as_ref().map(|o| format!("org_{o}")),
                },
            )
        }
        "client_credentials" => {
            if keys != ["audience", "client_id", "client_secret", "grant_type"] {
                return json_error(400, "invalid_request", "unexpected form fields");
            }
            let known = s.m2m_apps.get(f("client_id")).map(String::as_str);
            if f("audience") != AUDIENCE || known != Some(f("client_secret")) {
                return json_error(401, "access_denied", "Unauthorized");
            }
            (
                f("client_id").to_string(),
                Subject::Client {
                    client_id: f("client_id").to_string(),
                },
            )
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            if keys != ["client_id", "device_code", "grant_type"] {
                return json_error(400, "invalid_request", "unexpected form fields");
            }
            if f("client_id") != CLIENT_ID {
                return json_error(401, "invalid_client", "Unknown client");
            }
            match s.devices.poll(f("device_code")) {
                PollAnswer::Error(status, error) => {
                    return json_error(status, error, "device login not approved");
                }
                PollAnswer::Approved { sub, organization } => (
                    CLIENT_ID.to_string(),
                    Subject::User {
                        sub,
                        org_id: organization.map(|o| format!("org_{o}")),
                    },
                ),
            }
        }
        _ => return json_error(400, "unsupported_grant_type", "grant_type"),
    };
    let expires_in = s.expires_in;
    let token = issue_token(&mut s, issuer, &azp, &subject, expires_in);
    let body = json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"});
    (200, body.to_string(), None, "application/json")
}

/// Plays the browser at an authorize URL of the fake: CARTO's login answers
/// with a redirect, whose target is returned (not followed).
pub fn follow_authorize(authorize_url: &str) -> String {
    let (status, headers, body) = http_get(authorize_url);
    assert_eq!(status, 302, "authorize refused: {body}");
    header(&headers, "location").expect("a Location header")
}
