//! A fake CARTO on loopback that checks what it is sent the way the real
//! service does (PKCE, exact form fields, registered redirect URIs, bearer
//! tokens) and records every request; and helpers to run a login in a child
//! process with its own environment, stdin and `$BROWSER`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use carto_auth::Endpoints;

pub const CLIENT_ID: &str = "0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u";
pub const AUDIENCE: &str = "carto-cloud-native-api";
pub const M2M_ID: &str = "m2m-client-A";
pub const M2M_SECRET: &str = "m2m-secret-Zq8wXv3";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub authorization: Option<String>,
}

impl Recorded {
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
}

struct Issued {
    challenge: String,
    redirect_uri: String,
    used: bool,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    codes: HashMap<String, Issued>,
    tokens: Vec<String>,
    faults: HashMap<String, Fault>,
    expires_in: i64,
    counter: u64,
}

pub struct FakeCarto {
    pub base: String,
    pub port: u16,
    /// The local redirect URI registered for the public client (a free port).
    pub redirect_uri: String,
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    /// Notified after each request is recorded.
    recorded: Arc<Condvar>,
}

impl FakeCarto {
    pub fn start() -> FakeCarto {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind fake CARTO"));
        let port = server.server_addr().to_ip().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let redirect_uri = format!("http://localhost:{}/callback/", free_port());
        let state = Arc::new(Mutex::new(State {
            expires_in: 86_400,
            ..State::default()
        }));
        let recorded = Arc::new(Condvar::new());
        let fake = FakeCarto {
            base: base.clone(),
            port,
            redirect_uri: redirect_uri.clone(),
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
        e
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

    pub fn set_expires_in(&self, seconds: i64) {
        self.state.lock().unwrap().expires_in = seconds;
    }

    /// Makes the endpoint at `path` (e.g. "/oauth/token") answer `fault`.
    pub fn fault(&self, path: &str, fault: Fault) {
        self.state.lock().unwrap().faults.insert(path.into(), fault);
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
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
        self.state.lock().unwrap().tokens.clone()
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

    /// Every secret value that went through this fake: the access tokens it
    /// issued, the authorization codes it issued, and the code verifiers,
    /// codes and client secrets it was sent. What the crate prints, logs,
    /// displays or returns as an error must contain none of them.
    pub fn secrets(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let mut out: Vec<String> = s.tokens.iter().chain(s.codes.keys()).cloned().collect();
        for r in &s.requests {
            for key in ["code", "code_verifier", "client_secret"] {
                if let Some(v) = r.form_value(key) {
                    out.push(v.to_string());
                }
            }
        }
        out.push(M2M_SECRET.to_string());
        out.retain(|v| !v.is_empty());
        out.sort();
        out.dedup();
        out
    }

    /// Plays the browser at the authorize URL: CARTO's login answers with a
    /// redirect, whose target is returned (not followed).
    pub fn authorize(&self, authorize_url: &str) -> String {
        let (status, headers, body) = http_get(authorize_url);
        assert_eq!(status, 302, "authorize refused: {body}");
        header(&headers, "location").expect("a Location header")
    }

    pub fn m2m_credentials_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("carto_credentials.json");
        std::fs::write(
            &path,
            format!(r#"{{"api_base_url": "{}", "client_id": "{M2M_ID}", "client_secret": "{M2M_SECRET}"}}"#, self.api_base_url()),
        )
        .unwrap();
        path
    }
}

impl Drop for FakeCarto {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn handle(
    mut request: tiny_http::Request,
    state: &Mutex<State>,
    recorded_cv: &Condvar,
    base: &str,
    redirect_uri: &str,
) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let query = pairs(query);
    let mut body = String::new();
    let _ = request.as_reader().read_to_string(&mut body);
    let form = pairs(&body);
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.to_string());
    let recorded = Recorded {
        method: request.method().to_string(),
        path: path.to_string(),
        query,
        form,
        authorization,
    };
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
        other => other,
    };
    if let Some(fault) = fault {
        return answer_fault(request, fault);
    }
    let (status, body, location, content_type) = route(&recorded, state, base, redirect_uri);
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
        Fault::Delay(_) => unreachable!("a delay is served by the normal route"),
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    response.add_header(tiny_http::Header::from_bytes("Content-Type", content_type).unwrap());
    let _ = request.respond(response);
}

fn json_error(
    status: u16,
    error: &str,
    description: &str,
) -> (u16, String, Option<String>, &'static str) {
    (
        status,
        format!(r#"{{"error":"{error}","error_description":"{description}"}}"#),
        None,
        "application/json",
    )
}

fn route(
    r: &Recorded,
    state: &Mutex<State>,
    base: &str,
    redirect_uri: &str,
) -> (u16, String, Option<String>, &'static str) {
    let paste_uri = format!("{base}/auth/token");
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/authorize") => {
            let q = |k| r.query_value(k).unwrap_or("");
            let redirect = q("redirect_uri");
            if q("client_id") != CLIENT_ID
                || q("response_type") != "code"
                || q("audience") != AUDIENCE
            {
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
            if q("organization") == "denied-org" {
                let mut to =
                    format!("{redirect}?error=access_denied&error_description=Org%20denied");
                if let Some(st) = r.query_value("state") {
                    to.push_str(&format!("&state={st}"));
                }
                return (302, String::new(), Some(to), "text/html");
            }
            let mut s = state.lock().unwrap();
            s.counter += 1;
            let code = format!("code{}x{}", s.counter, random_word());
            s.codes.insert(
                code.clone(),
                Issued {
                    challenge: challenge.into(),
                    redirect_uri: redirect.into(),
                    used: false,
                },
            );
            let mut to = format!("{redirect}?code={code}");
            if let Some(st) = r.query_value("state") {
                to.push_str(&format!("&state={}", url_escape(st)));
            }
            (302, String::new(), Some(to), "text/html")
        }
        ("POST", "/oauth/token") => token(r, state),
        ("GET", "/accounts") => {
            if !bearer_ok(r, state) {
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
            if !bearer_ok(r, state) {
                return json_error(401, "Unauthorized", "a valid bearer token is required");
            }
            (
                200,
                r#"{"projectId":"carto-dw-ac-fake","token":"dw-token-fake"}"#.into(),
                None,
                "application/json",
            )
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
        ("GET", "/auth/success") | ("GET", "/auth/error") => {
            (200, "<html>done</html>".into(), None, "text/html")
        }
        _ => (404, "not found".into(), None, "text/plain"),
    }
}

fn bearer_ok(r: &Recorded, state: &Mutex<State>) -> bool {
    let Some(token) = r
        .authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return false;
    };
    state.lock().unwrap().tokens.iter().any(|t| t == token)
}

fn token(r: &Recorded, state: &Mutex<State>) -> (u16, String, Option<String>, &'static str) {
    let mut s = state.lock().unwrap();
    let mut keys = r.form_keys();
    keys.sort_unstable();
    let f = |k| r.form_value(k).unwrap_or("");
    match f("grant_type") {
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
            issued.used = true;
            if issued.redirect_uri != f("redirect_uri") {
                return json_error(403, "invalid_grant", "redirect_uri does not match");
            }
            let digest = ring::digest::digest(&ring::digest::SHA256, f("code_verifier").as_bytes());
            let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            let verifier_len = f("code_verifier").len();
            if expected != issued.challenge || !(43..=128).contains(&verifier_len) {
                return json_error(403, "invalid_grant", "Failed to verify code verifier");
            }
        }
        "client_credentials" => {
            if keys != ["audience", "client_id", "client_secret", "grant_type"] {
                return json_error(400, "invalid_request", "unexpected form fields");
            }
            if f("audience") != AUDIENCE
                || f("client_id") != M2M_ID
                || f("client_secret") != M2M_SECRET
            {
                return json_error(401, "access_denied", "Unauthorized");
            }
        }
        _ => return json_error(400, "unsupported_grant_type", "grant_type"),
    }
    s.counter += 1;
    let token = format!("eyJfake.{}.{}", s.counter, random_word());
    s.tokens.push(token.clone());
    let body = format!(
        r#"{{"access_token":"{token}","expires_in":{},"token_type":"Bearer"}}"#,
        s.expires_in
    );
    (200, body, None, "application/json")
}

fn pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .into_owned()
        .collect()
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn random_word() -> String {
    let mut b = [0u8; 9];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback address where nothing listens: connecting is refused.
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A bare HTTP/1.1 GET that follows no redirect: status, headers, body.
pub fn http_get(url: &str) -> (u16, Vec<(String, String)>, String) {
    http_request("GET", url)
}

pub fn http_request(method: &str, url: &str) -> (u16, Vec<(String, String)>, String) {
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap();
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let mut stream = TcpStream::connect((host, parsed.port_or_known_default().unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

pub fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// A `$BROWSER` that writes the URL it is given to a file and returns.
pub fn recording_browser(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("browser.sh");
    let record = dir.join("opened-url");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{}.tmp' && mv '{0}.tmp' '{0}'\n",
            record.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (script, record)
}

/// Waits (bounded) for a file to appear and returns its content.
pub fn wait_for_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs this test binary again as a child that executes `scenario` (see
/// `child_main` in the calling test file), with a clean environment: only
/// PATH, HOME=`home` and the variables given.
pub fn spawn_child(
    test_name: &str,
    scenario: &str,
    home: &Path,
    env: &[(String, String)],
) -> Child {
    child_command(
        Command::new(std::env::current_exe().unwrap()),
        test_name,
        scenario,
        home,
        env,
    )
    .spawn()
    .unwrap()
}

/// [`spawn_child`] under `sh -c 'umask <umask> && exec <child>'`.
pub fn spawn_child_with_umask(
    umask: &str,
    test_name: &str,
    scenario: &str,
    home: &Path,
    env: &[(String, String)],
) -> Child {
    spawn_child_in_sh(
        &[],
        &format!("umask {umask}"),
        test_name,
        scenario,
        home,
        env,
    )
}

/// [`spawn_child`] as `<launcher...> sh -c '<setup> && exec <child>'`, e.g.
/// `unshare -m` with a `mount` as setup. The environment is the child's.
pub fn spawn_child_in_sh(
    launcher: &[&str],
    setup: &str,
    test_name: &str,
    scenario: &str,
    home: &Path,
    env: &[(String, String)],
) -> Child {
    let mut cmd = match launcher.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg("/bin/sh");
            c
        }
        None => Command::new("/bin/sh"),
    };
    cmd.arg("-c")
        .arg(format!("{setup} && exec \"$0\" \"$@\""))
        .arg(std::env::current_exe().unwrap());
    child_command(cmd, test_name, scenario, home, env)
        .spawn()
        .unwrap()
}

fn child_command(
    mut cmd: Command,
    test_name: &str,
    scenario: &str,
    home: &Path,
    env: &[(String, String)],
) -> Command {
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CARTO_TEST_CHILD", scenario)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Waits for a child (bounded) and returns (success, stdout, stderr).
pub fn finish_child(mut child: Child, timeout: Duration) -> (bool, String, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.success(), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `RESULT ...` line a child printed.
pub fn child_result(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"))
}

/// A child process whose stdout and stderr lines are read as they come.
pub struct ChildSession {
    pub child: Child,
    pub stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<(bool, String)>,
    pub seen: Vec<(bool, String)>,
}

impl ChildSession {
    pub fn new(mut child: Child) -> ChildSession {
        let (tx, rx) = std::sync::mpsc::channel();
        let stdin = child.stdin.take();
        for (is_err, stream) in [
            (
                false,
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            ),
            (true, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let _ = tx.send((is_err, line));
                }
            });
        }
        ChildSession {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The first line (stdout or stderr) matching `pred`, waiting at most `timeout`.
    pub fn wait_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        if let Some((_, l)) = self.seen.iter().find(|(_, l)| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line.1) {
                        return line.1;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no matching line within {timeout:?}; saw:\n{:#?}",
                        self.seen
                    );
                }
            }
        }
    }

    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the RESULT line and the exit; returns the result and all
    /// stderr text.
    pub fn result(&mut self, timeout: Duration) -> (String, String) {
        let line = self.wait_line(timeout, |l| l.starts_with("RESULT "));
        let deadline = Instant::now() + timeout;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "child did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        let stderr = self
            .seen
            .iter()
            .filter(|(e, _)| *e)
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        (line.trim_start_matches("RESULT ").to_string(), stderr)
    }
}

/// The scenario this process runs as a child, if it is one.
pub fn child_scenario() -> Option<String> {
    std::env::var("CARTO_TEST_CHILD").ok()
}

/// The environment of a child that runs the local flow: the fake's
/// endpoints, a `$BROWSER`, the local flow forced on, temporary files in `dir`.
pub fn local_flow_env(fake: &FakeCarto, dir: &Path, browser: &Path) -> Vec<(String, String)> {
    let mut env = fake.env();
    env.push(("BROWSER".into(), browser.display().to_string()));
    env.push(("CARTO_AUTH_OPEN_BROWSER".into(), "1".into()));
    env.push(("TMPDIR".into(), dir.display().to_string()));
    env
}

/// A query parameter of a URL, decoded.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A JSON file (a cache file, say), parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
