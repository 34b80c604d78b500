//! The device-style login (OAuth 2.0 device authorization grant) against
//! the fake CARTO: the device authorization request and its form, every
//! polling answer (pending, slow_down, expired, denied, approved), the
//! login timeout, the fallback when CARTO refuses the grant, the two-step
//! form, the organization, `CARTO_AUTH_DEVICE_FLOW`, and the CLI.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carto_auth::{CartoAuth, Error, Flow, LoginInstructions, Prompt};
use support::{ChildSession, FakeCarto, Fault, USER_ANA};

/// A user with a phone: records what the login showed and said; in the
/// paste flow (a fallback) plays the browser and pastes.
#[derive(Clone, Default)]
struct Watcher {
    shown: Arc<Mutex<Vec<LoginInstructions>>>,
    notices: Arc<Mutex<Vec<String>>>,
}

impl Prompt for Watcher {
    fn show_login(&self, login: &LoginInstructions) {
        self.shown.lock().unwrap().push(login.clone());
    }
    fn ask_code(&self, _: &str) -> std::io::Result<String> {
        let url = self
            .shown
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .authorize_url
            .clone();
        Ok(support::follow_authorize(&url))
    }
    fn notice(&self, message: &str) {
        self.notices.lock().unwrap().push(message.to_string());
    }
}

fn builder(fake: &FakeCarto, watcher: &Watcher, dir: &std::path::Path) -> carto_auth::OAuthBuilder {
    CartoAuth::oauth()
        .device_flow(true)
        .open_browser(false)
        .endpoints(fake.endpoints())
        .cache_filepath(dir.join("token_oauth.json"))
        .prompt(watcher.clone())
}

/// Runs the one-line login on a thread; the test plays the phone.
fn login_in_background(
    builder: carto_auth::OAuthBuilder,
) -> std::thread::JoinHandle<Result<CartoAuth, Error>> {
    std::thread::spawn(move || builder.login())
}

#[test]
fn an_approved_code_signs_in_by_itself_with_the_forms_carto_expects() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::default();
    let login = login_in_background(builder(&fake, &watcher, dir.path()));
    let code = fake.wait_user_code(0, Duration::from_secs(20));
    // Two polls while pending, then the approval.
    fake.wait_requests("/oauth/token", 2, Duration::from_secs(20));
    fake.approve_device(&code);
    let auth = login.join().unwrap().unwrap();

    let request = &fake.requests("/oauth/device/code")[0];
    let mut keys = request.form_keys();
    keys.sort_unstable();
    assert_eq!(keys, ["audience", "client_id"]);
    assert_eq!(request.form_value("client_id"), Some(support::CLIENT_ID));
    // Two polls were recorded before the approval; the second may already
    // have been answered with the token (the approval can come between its
    // recording and its answer).
    let polls = fake.requests("/oauth/token");
    assert!(polls.len() >= 2);
    for poll in &polls {
        let mut keys = poll.form_keys();
        keys.sort_unstable();
        assert_eq!(keys, ["client_id", "device_code", "grant_type"]);
        assert_eq!(
            poll.form_value("grant_type"),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
    }
    // The interval (1 s at this fake) was honoured: no slow_down was earned.
    for pair in polls.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "polled too fast"
        );
    }

    let shown = watcher.shown.lock().unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].flow, Flow::DeviceCode);
    assert_eq!(shown[0].user_code.as_deref(), Some(code.as_str()));
    assert_eq!(
        shown[0].authorize_url,
        format!("{}/activate?user_code={code}", fake.base)
    );
    assert_eq!(
        shown[0].verification_uri.as_deref(),
        Some(format!("{}/activate", fake.base).as_str())
    );
    assert!(shown[0].expires_at.is_some());

    // After the token, as for the other flows: discovery and the cache.
    let token = auth.get_access_token().unwrap();
    assert_eq!(support::jwt::claims(&token).unwrap()["sub"], USER_ANA);
    assert_eq!(auth.get_api_base_url(), Some(fake.api_base_url().as_str()));
    let cached = support::read_json(&dir.path().join("token_oauth.json"));
    assert_eq!(cached["access_token"], token.as_str());
    // The device code is a secret: never shown.
    let device_code = request_device_code(&fake);
    for text in watcher
        .notices
        .lock()
        .unwrap()
        .iter()
        .chain([format!("{shown:?}")].iter())
    {
        assert!(
            !text.contains(&device_code) && !text.contains(&token),
            "{text}"
        );
    }
}

fn request_device_code(fake: &FakeCarto) -> String {
    fake.requests("/oauth/token")[0]
        .form_value("device_code")
        .unwrap()
        .to_string()
}

#[test]
fn slow_down_adds_five_seconds_to_the_interval() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::default();
    let login = login_in_background(builder(&fake, &watcher, dir.path()));
    let code = fake.wait_user_code(0, Duration::from_secs(20));
    fake.slow_down_device(&code);
    // The slowed-down poll, then the next one 1 + 5 s later.
    fake.wait_requests("/oauth/token", 2, Duration::from_secs(30));
    fake.approve_device(&code);
    assert!(login.join().unwrap().is_ok());
    let polls = fake.device_polls(&code);
    let gap = polls[1] - polls[0];
    assert!(
        gap >= Duration::from_millis(5900),
        "{gap:?} after slow_down"
    );
}

#[test]
fn an_expired_or_denied_code_ends_the_login_with_its_own_error() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::default();

    let login = login_in_background(builder(&fake, &watcher, dir.path()));
    let code = fake.wait_user_code(0, Duration::from_secs(20));
    fake.expire_device(&code);
    let err = login.join().unwrap().unwrap_err();
    assert!(matches!(err, Error::DeviceCodeExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("Start the login again"), "{err}");

    // CARTO slow to issue the second code: its request is recorded well
    // before the code exists, when the latest code is still the first
    // login's. The test must deny the code of the login it drives.
    fake.fault(
        "/oauth/device/code",
        Fault::Delay(Duration::from_millis(500)),
    );
    let login = login_in_background(builder(&fake, &watcher, dir.path()));
    let code = fake.wait_user_code(1, Duration::from_secs(20));
    fake.deny_device(&code);
    let err = login.join().unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Authorization { error, .. } if error == "access_denied"),
        "{err:?}"
    );
    assert!(err.to_string().contains("access_denied"));
    assert!(!dir.path().join("token_oauth.json").exists());
    // The denied code is the one this login showed.
    let shown = watcher.shown.lock().unwrap();
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[1].user_code.as_deref(), Some(code.as_str()));
}

/// The login timeout ends the wait when it comes first, even when the
/// polling interval is longer, and says it was the timeout.
#[test]
fn nobody_approving_ends_at_the_login_timeout_not_an_interval_later() {
    let fake = FakeCarto::start();
    fake.device_timing(600.into(), 30.into());
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::default();
    let started = Instant::now();
    let err = builder(&fake, &watcher, dir.path())
        .login_timeout(Duration::from_secs(1))
        .login()
        .unwrap_err();
    // Not the 30 s interval: ended at the timeout (loosely bounded).
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");
    assert!(
        matches!(err, Error::DeviceLoginTimeout { waited } if waited >= Duration::from_secs(1)),
        "{err:?}"
    );
    assert!(err.to_string().contains("login timeout"), "{err}");
    assert!(
        fake.requests("/oauth/token").is_empty(),
        "no poll before the interval"
    );
}

/// A code that expires before the login timeout ends the wait then, and
/// says that the code expired.
#[test]
fn a_code_expiring_before_the_login_timeout_is_reported_as_expired() {
    let fake = FakeCarto::start();
    fake.device_timing(1.into(), 30.into());
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::default();
    let started = Instant::now();
    let err = builder(&fake, &watcher, dir.path())
        .login_timeout(Duration::from_secs(120))
        .login()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");
    assert!(matches!(err, Error::DeviceCodeExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("has expired"), "{err}");
}

/// Lifetimes and intervals beyond any clock, or written as strings and
/// floats, neither wrap around nor end the login: the login timeout caps
/// them.
#[test]
fn absurd_lifetimes_from_the_server_still_sign_in() {
    for (expires_in, interval) in [
        (serde_json::json!(u64::MAX), serde_json::json!(1)),
        (serde_json::json!(1e300), serde_json::json!(1.0)),
        (serde_json::json!("86400000000"), serde_json::json!("1")),
    ] {
        let fake = FakeCarto::start();
        fake.device_timing(expires_in.clone(), interval);
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher::default();
        let login = login_in_background(builder(&fake, &watcher, dir.path()));
        let code = fake.wait_user_code(0, Duration::from_secs(20));
        // Approved once the login is polling: the code did not count as
        // expired at once.
        fake.wait_requests("/oauth/token", 1, Duration::from_secs(20));
        fake.approve_device(&code);
        let auth = login
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{expires_in}: {e}"));
        assert!(fake.accepts(&auth.get_access_token().unwrap()));
        let shown = watcher.shown.lock().unwrap();
        let expires_at = shown[0].expires_at.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(expires_at > now + 86_400, "{expires_in}: {expires_at}");
    }
}

/// CARTO may not allow the grant for its public client: the login says why
/// in one line and goes on with the paste flow in the same call.
#[test]
fn a_refused_device_grant_falls_back_to_pasting_in_the_same_login() {
    for (fault, why) in [
        (
            Fault::Status(
                403,
                r#"{"error":"unauthorized_client","error_description":"Grant type not allowed"}"#
                    .into(),
            ),
            "CARTO does not allow the device sign-in for this client (unauthorized_client)",
        ),
        (
            Fault::Status(401, r#"{"error":"invalid_client"}"#.into()),
            "(invalid_client)",
        ),
        (
            Fault::Status(400, r#"{"error":"unsupported_grant_type"}"#.into()),
            "(unsupported_grant_type)",
        ),
        (
            Fault::Status(404, "Not Found".into()),
            "no device sign-in endpoint (HTTP 404)",
        ),
        (Fault::Status(403, "{}".into()), "refused (HTTP 403)"),
        (
            Fault::Slow(Duration::from_secs(3)),
            "did not answer (no answer within 0.5 s)",
        ),
    ] {
        let fake = FakeCarto::start();
        fake.fault("/oauth/device/code", fault.clone());
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher::default();
        let auth = builder(&fake, &watcher, dir.path())
            .timeout(Duration::from_millis(500))
            .login()
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert!(fake.accepts(&auth.get_access_token().unwrap()));
        let notices = watcher.notices.lock().unwrap();
        assert!(
            notices[0].contains(why)
                && notices[0].ends_with("; continuing with a code to paste instead."),
            "{fault:?}: {notices:?}"
        );
        assert_eq!(
            watcher.shown.lock().unwrap()[0].flow,
            Flow::Paste,
            "{fault:?}"
        );
        assert_eq!(
            fake.requests("/oauth/token").len(),
            1,
            "one exchange, no poll"
        );
    }
}

#[test]
fn the_two_step_form_shows_the_code_and_waits_for_the_approval() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::default();
    let login = builder(&fake, &watcher, dir.path())
        .org("acme")
        .begin()
        .unwrap();
    assert_eq!(login.flow(), Flow::DeviceCode);
    let code = login.user_code().unwrap();
    assert_eq!(
        fake.requests("/oauth/device/code")[0].form_value("organization"),
        Some("acme")
    );
    #[cfg(feature = "notebook")]
    {
        let html = login.to_html();
        assert!(html.contains(&format!(">{code}</div>")), "{html}");
        assert!(
            html.contains("Open the sign-in page")
                && html.contains("<img src=\"data:image/svg+xml;base64,")
        );
    }
    let err = login.complete("https://x/?code=abc").unwrap_err();
    assert!(err.to_string().contains("finishes by itself"), "{err}");
    fake.approve_device(&code);
    let auth = login.wait().unwrap();
    let token = auth.get_access_token().unwrap();
    assert_eq!(support::jwt::claims(&token).unwrap()["org_id"], "org_acme");
    assert_eq!(auth.org(), Some("acme"));
    assert_eq!(
        support::read_json(&dir.path().join("token_oauth.json"))["org"],
        "acme"
    );
    assert!(matches!(
        login.wait(),
        Err(Error::LoginFinished { state: "completed" })
    ));
}

fn child_login() {
    let result = CartoAuth::oauth().login();
    match result {
        Ok(auth) => println!("\nRESULT ok {}", auth.get_api_base_url().unwrap_or("-")),
        Err(e) => println!("\nRESULT err {e}"),
    }
}

/// `CARTO_AUTH_DEVICE_FLOW=1` turns it on where code does not say; the
/// terminal shows the link and the code on a line of its own.
#[test]
fn the_environment_turns_the_device_flow_on() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let mut env = support::paste_flow_env(&fake);
    env.push(("CARTO_AUTH_DEVICE_FLOW".into(), "1".into()));
    let mut child = test.session("login", home.path(), &env);
    let link = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/activate?user_code=", fake.base))
    });
    let code = support::query_param(&link, "user_code").unwrap();
    let spaced: String = code
        .chars()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    child.wait_line(Duration::from_secs(5), |l| l.contains(&spaced));
    // The code plain on a line of its own, to select and copy, and a QR
    // code of the link for a phone (this build has the `notebook` feature).
    child.wait_line(Duration::from_secs(5), |l| l == code);
    child.wait_line(Duration::from_secs(5), |l| {
        l == "Or scan this QR code with a phone:"
    });
    fake.approve_device(&code);
    let (result, stderr) = child.result(Duration::from_secs(30));
    assert_eq!(result, format!("ok {}", fake.api_base_url()));
    let qr: Vec<&str> = stderr
        .split("Or scan this QR code with a phone:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| !l.is_empty() && l.chars().all(|c| " \u{2580}\u{2584}\u{2588}".contains(c)))
        .collect();
    // At least version 2 (25 modules and a 4-module quiet zone), square.
    assert!(qr.len() >= 17, "{stderr}");
    assert!(
        qr.iter()
            .all(|l| l.chars().count() == qr[0].chars().count()),
        "{stderr}"
    );
    assert_eq!(qr[0].chars().count().div_ceil(2), qr.len(), "{stderr}");
}

#[test]
fn the_cli_logs_in_with_a_device_code() {
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_carto-auth"));
    cmd.args(["login", "--device"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("CARTO_AUTH_OPEN_BROWSER", "0")
        .envs(fake.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = ChildSession::new(cmd.spawn().unwrap());
    let link = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/activate?user_code=", fake.base))
    });
    fake.approve_device(&support::query_param(&link, "user_code").unwrap());
    child.wait_line(Duration::from_secs(30), |l| {
        l.starts_with("Signed in to CARTO. OAuth session")
    });
    assert!(child.child.wait().unwrap().success());
    let cached = support::read_json(&home.path().join(".carto-auth").join("token_oauth.json"));
    assert!(fake.accepts(cached["access_token"].as_str().unwrap()));
}

/// `cancel()` from another thread ends a device wait within a second (the
/// wait used to hold the login's lock for its whole poll), no token comes
/// back after it even when the code is approved, and polling stops.
#[test]
fn cancel_ends_a_device_wait_within_a_second_and_no_token_comes_after() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let login = Arc::new(
        builder(&fake, &Watcher::default(), dir.path())
            .begin()
            .unwrap(),
    );
    let waiting = {
        let login = login.clone();
        std::thread::spawn(move || login.wait())
    };
    let code = fake.wait_user_code(0, Duration::from_secs(20));
    fake.wait_requests("/oauth/token", 1, Duration::from_secs(20));
    let cancelled = Instant::now();
    login.cancel();
    let got = waiting.join().unwrap();
    assert!(
        cancelled.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled.elapsed()
    );
    assert!(
        matches!(got, Err(Error::LoginFinished { state: "cancelled" })),
        "{got:?}"
    );
    fake.approve_device(&code);
    let polls = fake.requests("/oauth/token").len();
    // Three of the fake's 1 s intervals: a poller left running would poll.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fake.requests("/oauth/token").len(), polls);
    assert!(!cache.exists(), "no token was cached after the cancel");
    assert!(matches!(
        login.wait(),
        Err(Error::LoginFinished { state: "cancelled" })
    ));
}

/// Dropping `login_async`'s future (a timeout around it) stops the device
/// polling behind it, on a current-thread runtime whose one thread the
/// login never blocks.
#[test]
fn a_dropped_device_login_async_stops_polling() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let login = builder(&fake, &Watcher::default(), dir.path()).login_async();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = runtime.block_on(async {
        // Ticks on the same thread while the login waits: it is not blocked.
        let ticker = async {
            let mut ticks = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                ticks += 1;
                if ticks == 25 {
                    return ticks;
                }
            }
        };
        tokio::select! {
            done = login => panic!("the login ended by itself: {done:?}"),
            ticks = ticker => ticks,
        }
    });
    assert_eq!(ticks, 25);
    let polls = fake.requests("/oauth/token").len();
    assert!(polls >= 1, "the login polled while it ran");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fake.requests("/oauth/token").len(), polls);
}
