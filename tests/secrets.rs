//! No secret ever leaves the crate by the wrong door. Every flow and every
//! fault is run against the fake CARTO, which records each secret that goes
//! through it (the tokens and codes it issues, the verifiers, codes and
//! client secrets it is sent). Everything the crate shows is collected:
//! `Debug` and `Display` of its values, the HTML of its cards, the messages
//! of its errors, what it says through a `Prompt`, every `log` record at
//! trace level (a capturing logger), and all stdout and stderr of child
//! processes running the real terminal flows. Not one may contain a secret.
//!
//! Then the cache's permissions under `umask 000`, and HTML escaping of
//! values from servers and users.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use carto_auth::{CartoAuth, Endpoints, LoginInstructions, Prompt};
use support::{ChildSession, ChildTest, FakeCarto, Fault, child_scenario, closed_port_url};

// ---- what the crate shows ----

/// Everything collected, from every scenario of this process.
fn shown() -> &'static Mutex<Vec<String>> {
    static SHOWN: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SHOWN.get_or_init(Mutex::default)
}

fn show(what: impl Into<String>) {
    shown().lock().unwrap().push(what.into());
}

/// A `log` logger at trace level that keeps every record (in a child
/// process: prints it to stderr, which the parent collects).
struct Capture {
    to_stderr: bool,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = format!(
            "LOG {} {}: {}",
            record.level(),
            record.target(),
            record.args()
        );
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            show(line);
        }
    }
    fn flush(&self) {}
}

fn capture_logs(to_stderr: bool) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_logger(Box::leak(Box::new(Capture { to_stderr }))).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Records of the whole test binary: how many came in, to check the logger
/// did hear the crate.
fn log_lines() -> usize {
    shown()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("LOG "))
        .count()
}

fn show_auth(auth: &CartoAuth) {
    show(format!("{auth:?}"));
    show(auth.to_string());
    show(auth.summary());
    show(auth.masked_token());
    #[cfg(feature = "notebook")]
    show(auth.to_html());
    if let Ok(layer) = auth.get_layer_credentials() {
        show(format!("{layer:?}"));
    }
}

fn show_result<T>(what: &str, result: Result<T, carto_auth::Error>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            show(format!(
                "{what}: {e} / {e:?} / {:?}",
                std::error::Error::source(&e).map(ToString::to_string)
            ));
            None
        }
    }
}

/// A user at a browser: records what the crate shows, signs in at the fake
/// when asked, and pastes the address CARTO sent them to.
#[derive(Clone)]
struct Recorder {
    fake_base: String,
}

impl Prompt for Recorder {
    fn show_login(&self, login: &LoginInstructions) {
        show(format!("{login:?}"));
    }
    fn ask_code(&self, question: &str) -> std::io::Result<String> {
        show(question);
        let shown = shown().lock().unwrap().iter().rev().find_map(|s| {
            s.split("authorize_url: \"")
                .nth(1)
                .map(|r| r.split('"').next().unwrap().to_string())
        });
        let url = shown.expect("the login was shown first");
        assert!(url.starts_with(&self.fake_base));
        let (_, headers, _) = support::http_get(&url);
        Ok(support::header(&headers, "location").unwrap())
    }
    fn notice(&self, message: &str) {
        show(message);
    }
}

/// Every secret any fake of this process saw, beyond the fakes' own lists.
fn extra_secrets() -> &'static Mutex<Vec<String>> {
    static EXTRA: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    EXTRA.get_or_init(Mutex::default)
}

/// Fails on any secret in anything collected.
fn assert_no_secret(secrets: &[String], texts: &[String]) {
    assert!(!secrets.is_empty());
    for secret in secrets {
        assert!(
            secret.len() >= 8,
            "a secret too short to search for: {secret:?}"
        );
        for text in texts {
            assert!(
                !text.contains(secret.as_str()),
                "secret {secret:?} leaked in:\n{text}"
            );
        }
    }
}

// ---- in-process scenarios: every flow, every fault ----

fn creds_file(dir: &Path, api: &str, secret: &str) -> PathBuf {
    let path = dir.join(format!("creds-{}.json", secret.len()));
    std::fs::write(
        &path,
        format!(
            r#"{{"api_base_url": "{api}", "client_id": "{}", "client_secret": "{secret}"}}"#,
            support::M2M_ID
        ),
    )
    .unwrap();
    path
}

fn m2m_scenarios(fake: &FakeCarto, dir: &Path) {
    let creds = fake.m2m_credentials_file(dir);
    let cache = dir.join("m2m.json");
    // A fresh login, the cached one, renewal, the DW.
    fake.set_expires_in(30);
    let auth = CartoAuth::m2m(&creds)
        .cache_filepath(&cache)
        .endpoints(fake.endpoints())
        .login()
        .unwrap();
    show_auth(&auth);
    fake.set_expires_in(86_400);
    auth.get_access_token().unwrap();
    show_auth(&auth);
    show_result("dw", auth.get_carto_dw_credentials());
    let cached = CartoAuth::m2m(&creds)
        .cache_filepath(&cache)
        .endpoints(fake.endpoints())
        .login()
        .unwrap();
    show_auth(&cached);
    show(format!(
        "{:?}",
        carto_auth::CachedToken::read(&cache).unwrap()
    ));

    // Credentials files that are wrong in every way, each holding a secret.
    let secret = "file-secret-Hq7Zt2xV";
    extra_secrets().lock().unwrap().push(secret.into());
    for text in [
        format!(r#"{{"client_secret": "{secret}", "#),
        format!(r#"{{"client_secret": "{secret}"}}"#),
        format!(r#"{{"api_base_url": "", "client_id": "x", "client_secret": "{secret}"}}"#),
        format!(r#"["{secret}"]"#),
        format!(r#"{{"api_base_url": "x", "client_id": "x", "client_secret": "{secret}" trailing"#),
    ] {
        std::fs::write(dir.join("bad.json"), &text).unwrap();
        show_result(
            "bad credentials",
            CartoAuth::m2m(dir.join("bad.json"))
                .use_cache(false)
                .endpoints(fake.endpoints())
                .login(),
        );
    }
    let wrong = "wrong-secret-Kd93kQ";
    extra_secrets().lock().unwrap().push(wrong.into());
    show_result(
        "wrong secret",
        CartoAuth::m2m(creds_file(dir, &fake.api_base_url(), wrong))
            .use_cache(false)
            .endpoints(fake.endpoints())
            .login(),
    );
}

fn oauth_scenarios(fake: &FakeCarto, dir: &Path) {
    let prompt = Recorder {
        fake_base: fake.base.clone(),
    };
    let cache = dir.join("oauth.json");
    // The one-liner in the paste flow, then renewal by a new login.
    fake.set_expires_in(30);
    let auth = CartoAuth::oauth()
        .open_browser(false)
        .org("acme")
        .endpoints(fake.endpoints())
        .cache_filepath(&cache)
        .prompt(prompt.clone())
        .login()
        .unwrap();
    show_auth(&auth);
    fake.set_expires_in(86_400);
    auth.get_access_token().unwrap();
    show_auth(&auth);
    // The cached session.
    show_auth(
        &CartoAuth::oauth()
            .endpoints(fake.endpoints())
            .cache_filepath(&cache)
            .prompt(prompt.clone())
            .login()
            .unwrap(),
    );

    // The two-step login, with slips before and after.
    let login = CartoAuth::oauth()
        .open_browser(false)
        .endpoints(fake.endpoints())
        .cache_filepath(&cache)
        .prompt(prompt.clone())
        .begin()
        .unwrap();
    show(format!("{login:?}"));
    show(format!("{:?}", login.instructions()));
    #[cfg(feature = "notebook")]
    show(login.to_html());
    let landed = fake.authorize(login.authorize_url());
    show_result("slip", login.complete("https://app.carto.com/auth/token"));
    show_result("slip", login.complete("two words"));
    show_result("wait in paste flow", login.wait());
    let auth = login.complete(&landed).unwrap();
    show_auth(&auth);
    show_result("again", login.complete(&landed));
    show(format!("{login:?}"));

    // A code the server refuses (used twice), and an error in the address.
    let login = CartoAuth::oauth()
        .open_browser(false)
        .endpoints(fake.endpoints())
        .use_cache(false)
        .prompt(prompt.clone())
        .begin()
        .unwrap();
    show_result("reused code", login.complete(&landed));
    let denied = CartoAuth::oauth()
        .open_browser(false)
        .org("denied-org")
        .endpoints(fake.endpoints())
        .use_cache(false)
        .prompt(prompt.clone())
        .begin()
        .unwrap();
    show_result(
        "denied",
        denied.complete(&fake.authorize(denied.authorize_url())),
    );
}

/// Each endpoint answering badly in each way; the token endpoint's odd
/// answers carry a token, which must not be echoed.
fn fault_scenarios(fake: &FakeCarto, dir: &Path) {
    let leak = "eyJ-leaky-token-Pw82nX";
    extra_secrets().lock().unwrap().push(leak.into());
    let creds = fake.m2m_credentials_file(dir);
    let faults = |missing: &str| {
        vec![
            Fault::Status(500, "Internal Server Error".into()),
            Fault::Status(
                401,
                r#"{"error":"access_denied","error_description":"Unauthorized"}"#.into(),
            ),
            Fault::Status(
                403,
                r#"{"error":"forbidden","error_description":"Insufficient permissions"}"#.into(),
            ),
            Fault::Status(
                400,
                format!(r#"{{"error":"invalid_request","access_token":"{leak}"}}"#),
            ),
            Fault::Html,
            Fault::Empty,
            Fault::Json(missing.to_string()),
            Fault::Json(format!(
                r#"{{"access_token":"{leak}","expires_in":"soon"}}"#
            )),
            Fault::Slow(Duration::from_secs(2)),
        ]
    };
    let quick = Duration::from_millis(300);
    let m2m_login = || {
        CartoAuth::m2m(&creds)
            .use_cache(false)
            .endpoints(fake.endpoints())
            .timeout(quick)
            .login()
    };
    // A browser sign-in through the two-step API, to its completion.
    let browser_login = || {
        let login = CartoAuth::oauth()
            .open_browser(false)
            .endpoints(fake.endpoints())
            .use_cache(false)
            .timeout(quick)
            .prompt(Recorder {
                fake_base: fake.base.clone(),
            })
            .begin()
            .unwrap();
        login.complete(&fake.authorize(login.authorize_url()))
    };
    for fault in faults(&format!(r#"{{"access_token":"{leak}"}}"#)) {
        fake.fault("/oauth/token", fault);
        show_result("m2m token", m2m_login());
        show_result("code exchange", browser_login());
        fake.clear_faults();
    }
    for (path, missing) in [
        ("/accounts", r#"{"id":"ac"}"#),
        ("/config.yaml", "version: 1"),
        ("/api/v3/connections/carto-dw/token", r#"{"projectId":"p"}"#),
    ] {
        for fault in faults(missing) {
            fake.fault(path, fault);
            if path.starts_with("/api") {
                show_result("dw", m2m_login().unwrap().get_carto_dw_credentials());
            } else {
                show_result("discovery", browser_login());
            }
            fake.clear_faults();
        }
    }
    // Connection refused, for the token endpoint and the accounts service.
    let mut closed = fake.endpoints();
    closed.auth_url = closed_port_url();
    show_result(
        "refused",
        CartoAuth::m2m(&creds)
            .use_cache(false)
            .endpoints(closed)
            .login(),
    );
    let mut closed: Endpoints = fake.endpoints();
    closed.accounts_url = closed_port_url();
    let login = CartoAuth::oauth()
        .open_browser(false)
        .endpoints(closed)
        .use_cache(false)
        .prompt(Recorder {
            fake_base: fake.base.clone(),
        })
        .begin()
        .unwrap();
    show_result(
        "refused",
        login.complete(&fake.authorize(login.authorize_url())),
    );
    // A broken cache file that holds a token.
    let cache = dir.join("broken.json");
    std::fs::write(
        &cache,
        format!(r#"{{"api_base_url": "x", "access_token": "{leak}", "expiration": "soon"}}"#),
    )
    .unwrap();
    show_result("broken cache", carto_auth::CachedToken::read(&cache));
    show_result(
        "login over a broken cache",
        CartoAuth::m2m(&creds)
            .cache_filepath(&cache)
            .endpoints(fake.endpoints())
            .login(),
    );
}

// ---- child processes: the real terminal flows, all output collected ----

fn child_main() {
    capture_logs(true);
    let scenario = child_scenario().unwrap();
    let result = match scenario.as_str() {
        "m2m" => {
            let mut builder = CartoAuth::m2m(std::env::var("CARTO_TEST_CREDS").unwrap());
            if let Ok(cache) = std::env::var("CARTO_TEST_CACHE") {
                builder = builder.cache_filepath(cache);
            }
            builder.login()
        }
        "oauth" => CartoAuth::oauth()
            .login_timeout(Duration::from_secs(30))
            .login(),
        other => panic!("unknown scenario {other}"),
    };
    match result {
        Ok(auth) => {
            let token = auth.get_access_token().unwrap();
            // What a program would print of a session.
            println!("{auth}\n{auth:?}\n{}", auth.summary());
            if let Ok(dw) = auth.get_carto_dw_credentials() {
                println!("dw project {}", dw.0);
            }
            println!("\nRESULT ok {}", token.len());
        }
        Err(e) => println!("\nRESULT err {e} / {e:?}"),
    }
}

fn child_env(fake: &FakeCarto, dir: &Path, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = fake.env();
    env.push(("TMPDIR".into(), dir.display().to_string()));
    for (k, v) in extra {
        env.push((k.to_string(), v.clone()));
    }
    env
}

/// Runs a child to its end and collects all it printed.
fn collect(mut child: ChildSession) -> String {
    let (result, _) = child.result(Duration::from_secs(30));
    let all: Vec<String> = child.seen.iter().map(|(_, l)| l.clone()).collect();
    let text = all.join("\n");
    show(text.clone());
    assert!(
        text.contains("LOG "),
        "the child's logger heard nothing:\n{text}"
    );
    result + "\n" + &text
}

fn child_scenarios(test: &ChildTest, fake: &FakeCarto, dir: &Path) {
    let creds = fake.m2m_credentials_file(dir);
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let m2m = child_env(
        fake,
        dir,
        &[("CARTO_TEST_CREDS", creds.display().to_string())],
    );
    let out = collect(test.session("m2m", &home, &m2m));
    assert!(out.starts_with("ok "), "{out}");
    // Again, from the cache.
    let out = collect(test.session("m2m", &home, &m2m));
    assert!(out.starts_with("ok "), "{out}");
    // A wrong secret.
    let wrong = "child-wrong-secret-7Hd2";
    extra_secrets().lock().unwrap().push(wrong.into());
    let bad = creds_file(dir, &fake.api_base_url(), wrong);
    let out = collect(test.session(
        "m2m",
        &dir.join("home-bad"),
        &child_env(
            fake,
            dir,
            &[("CARTO_TEST_CREDS", bad.display().to_string())],
        ),
    ));
    assert!(out.starts_with("err "), "{out}");

    // The paste flow through the terminal prompt.
    let paste = child_env(fake, dir, &[("CARTO_AUTH_OPEN_BROWSER", "0".into())]);
    let mut child = test.session("oauth", &dir.join("home-paste"), &paste);
    let url = child.wait_line(Duration::from_secs(30), |l| {
        l.starts_with(&format!("{}/authorize?", fake.base))
    });
    child.write_line(&fake.authorize(&url));
    assert!(collect(child).starts_with("ok "));

    // The local flow: $BROWSER, the callback server.
    let (browser, opened) = support::recording_browser(dir);
    let local = child_env(
        fake,
        dir,
        &[
            ("CARTO_AUTH_OPEN_BROWSER", "1".into()),
            ("BROWSER", browser.display().to_string()),
        ],
    );
    let child = test.session("oauth", &dir.join("home-local"), &local);
    let url = support::wait_for_file(&opened, Duration::from_secs(30));
    let (status, _, body) = support::http_get(&fake.authorize(&url));
    assert_eq!(status, 302);
    show(body);
    assert!(collect(child).starts_with("ok "));
}

#[test]
fn nothing_shown_printed_logged_or_returned_holds_a_secret() {
    let test = support::child_test!(child_main);
    capture_logs(false);
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    m2m_scenarios(&fake, dir.path());
    oauth_scenarios(&fake, dir.path());
    fault_scenarios(&fake, dir.path());
    child_scenarios(&test, &fake, dir.path());

    let mut secrets = fake.secrets();
    secrets.extend(extra_secrets().lock().unwrap().iter().cloned());
    let texts = shown().lock().unwrap().clone();
    // The scenarios did see what they were meant to: tokens, codes and
    // verifiers of both grants went through, and the logger heard the crate.
    let requests = fake.requests("/oauth/token");
    assert!(
        requests
            .iter()
            .any(|r| r.form_value("code_verifier").is_some())
    );
    assert!(
        requests
            .iter()
            .any(|r| r.form_value("client_secret") == Some(support::M2M_SECRET))
    );
    assert!(
        fake.issued_tokens().len() >= 8,
        "{}",
        fake.issued_tokens().len()
    );
    assert!(
        log_lines() > 20,
        "the logger heard only {} records",
        log_lines()
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("CARTO") && t.contains("HTTP 401")),
        "the errors were collected"
    );
    assert_no_secret(&secrets, &texts);
    eprintln!(
        "{} secrets checked against {} collected texts ({} bytes, {} log records)",
        secrets.len(),
        texts.len(),
        texts.iter().map(String::len).sum::<usize>(),
        log_lines()
    );
}

// ---- permissions ----

#[test]
fn the_cache_is_private_even_under_umask_000() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();

    // The default cache: ~/.carto-auth is made by the crate.
    let env = child_env(
        &fake,
        dir.path(),
        &[("CARTO_TEST_CREDS", creds.display().to_string())],
    );
    let (result, _) = ChildSession::new(test.spawn_with_umask("000", "m2m", &home, &env))
        .result(Duration::from_secs(30));
    assert!(result.starts_with("ok "), "{result}");
    let default = home.join(".carto-auth");
    assert_eq!(support::file_mode(&default), 0o700);
    assert_eq!(support::file_mode(&default.join("token_m2m.json")), 0o600);
    assert_eq!(
        support::file_mode(&default.join("token_m2m.json.lock")),
        0o600
    );

    // A cache file the caller names, in directories that do not exist yet.
    let named = dir.path().join("a").join("b").join("token.json");
    let env = child_env(
        &fake,
        dir.path(),
        &[
            ("CARTO_TEST_CREDS", creds.display().to_string()),
            ("CARTO_TEST_CACHE", named.display().to_string()),
        ],
    );
    let (result, _) = ChildSession::new(test.spawn_with_umask("000", "m2m", &home, &env))
        .result(Duration::from_secs(30));
    assert!(result.starts_with("ok "), "{result}");
    assert_eq!(support::file_mode(&named), 0o600);
    assert_eq!(support::file_mode(named.parent().unwrap()), 0o700);
    assert_eq!(support::file_mode(&dir.path().join("a")), 0o700);

    // Files left world-readable (by the Python package, say) are tightened on
    // the next write, and so is ~/.carto-auth itself.
    use std::os::unix::fs::PermissionsExt;
    for path in [&named, &default.join("token_m2m.json")] {
        std::fs::write(
            path,
            format!(
                r#"{{"api_base_url": "{}", "access_token": "old", "expiration": 1000}}"#,
                fake.api_base_url()
            ),
        )
        .unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&default, std::fs::Permissions::from_mode(0o755)).unwrap();
    for cache in [None, Some(&named)] {
        let mut extra = vec![("CARTO_TEST_CREDS", creds.display().to_string())];
        if let Some(c) = cache {
            extra.push(("CARTO_TEST_CACHE", c.display().to_string()));
        }
        let (result, _) = ChildSession::new(test.spawn_with_umask(
            "000",
            "m2m",
            &home,
            &child_env(&fake, dir.path(), &extra),
        ))
        .result(Duration::from_secs(30));
        assert!(result.starts_with("ok "), "{result}");
    }
    assert_eq!(support::file_mode(&named), 0o600);
    assert_eq!(support::file_mode(&default.join("token_m2m.json")), 0o600);
    assert_eq!(support::file_mode(&default), 0o700);
    assert_eq!(
        fake.requests("/oauth/token").len(),
        4,
        "two first logins (one per file), then both files expired"
    );
}

// ---- HTML escaping ----

#[cfg(feature = "notebook")]
#[test]
fn values_from_servers_and_users_are_escaped_in_html() {
    let script = "<script>alert(1)</script>";
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let check = |html: String| {
        assert!(!html.contains("<script"), "unescaped: {html}");
        assert!(
            html.contains("&lt;script&gt;"),
            "the value is not shown at all: {html}"
        );
    };

    // The organization (a user's value) on the login card and the status card.
    let login = CartoAuth::oauth()
        .open_browser(false)
        .org(format!("acme{script}"))
        .endpoints(fake.endpoints())
        .use_cache(false)
        .api_base_url(format!("https://api.example/{script}"))
        .begin()
        .unwrap();
    check(login.to_html());
    let auth = login
        .complete(&fake.authorize(login.authorize_url()))
        .unwrap();
    check(auth.to_html());
    assert!(auth.to_html().contains("acme&lt;script&gt;"));

    // The API base URL from the server (discovered from config.yaml).
    fake.fault(
        "/config.yaml",
        Fault::Json(format!(
            "apis:\n  baseUrl: \"https://api.example/{script}\"\n"
        )),
    );
    let login = CartoAuth::oauth()
        .open_browser(false)
        .endpoints(fake.endpoints())
        .use_cache(false)
        .begin()
        .unwrap();
    let auth = login
        .complete(&fake.authorize(login.authorize_url()))
        .unwrap();
    assert_eq!(
        auth.get_api_base_url(),
        Some(format!("https://api.example/{script}").as_str())
    );
    check(auth.to_html());

    // ... from a credentials file, and from a cache file another program wrote.
    let creds = creds_file(
        dir.path(),
        &format!("https://api.example/{script}"),
        support::M2M_SECRET,
    );
    let auth = CartoAuth::m2m(&creds)
        .use_cache(false)
        .endpoints(fake.endpoints())
        .login()
        .unwrap();
    check(auth.to_html());
    let cache = dir.path().join("written-elsewhere.json");
    std::fs::write(&cache, format!(r#"{{"api_base_url": "https://api.example/{script}", "access_token": "t", "expiration": 99999999999}}"#)).unwrap();
    let auth = CartoAuth::oauth()
        .endpoints(fake.endpoints())
        .cache_filepath(&cache)
        .login()
        .unwrap();
    check(auth.to_html());
}
