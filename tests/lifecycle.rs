//! The interactive login's loose ends, in child processes with their own
//! `$BROWSER` and stdin: the callback port is free the moment a login ends
//! (code, timeout, drop) even while its `PendingLogin` lives, so a re-run
//! `begin()` gets the local flow again; a cancelled `login_async` neither
//! keeps the program from exiting nor swallows the next answer; the
//! callback's `iss` must be CARTO's; `open_browser(true)` forces the local
//! flow on a machine that looks remote.

mod support;

use std::net::{Ipv6Addr, TcpListener};
use std::time::Duration;

use carto_auth::{CartoAuth, Error, Flow};
use support::{FakeCarto, IssParam, child_scenario};

/// Whether both loopback addresses' port is free (IPv6 where there is one).
fn bindable(port: u16) -> bool {
    // Said by the test, not here: this runs in the child, whose stderr
    // the test reads and does not show.
    let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    TcpListener::bind(("127.0.0.1", port)).is_ok()
        && (!v6 || TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok())
}

fn redirect_port() -> u16 {
    let uri = std::env::var("CARTO_AUTH_REDIRECT_URI").unwrap();
    url::Url::parse(&uri).unwrap().port().unwrap()
}

fn child_main() {
    match child_scenario().as_deref() {
        Some("lifecycle") => lifecycle(),
        Some("cancel") => cancel(),
        Some("drop-local") => drop_local(),
        Some("forced-local") => {
            let login = CartoAuth::oauth().open_browser(true).begin().unwrap();
            println!("\nRESULT {:?}", login.flow());
        }
        other => panic!("unknown scenario {other:?}"),
    }
}

fn lifecycle() {
    let port = redirect_port();
    let login = CartoAuth::oauth().begin().unwrap();
    println!("\nFLOW {:?} bound={}", login.flow(), !bindable(port));
    let auth = login.wait();
    // `login` is alive until the end of this function.
    println!("WAITED {} bindable={}", auth.is_ok(), bindable(port));
    let again = CartoAuth::oauth().begin().unwrap();
    println!("AGAIN {:?} bound={}", again.flow(), !bindable(port));
    drop(again);
    println!("DROPPED bindable={}", bindable(port));
    let timed = CartoAuth::oauth()
        .login_timeout(Duration::from_millis(300))
        .begin()
        .unwrap();
    let err = timed.wait().unwrap_err();
    println!(
        "TIMEDOUT {} bindable={}",
        matches!(err, Error::LoginTimeout { .. }),
        bindable(port)
    );
    let late = std::net::TcpStream::connect(("127.0.0.1", port));
    println!("LATE refused={}", late.is_err());
    drop(login);
    println!("RESULT done");
}

/// A login cancelled while it waits for a pasted answer (a timeout around
/// `login_async`); the runtime is dropped; then a new login asks and gets
/// the line typed next.
fn cancel() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cancelled = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(300),
            CartoAuth::oauth().open_browser(false).login_async(),
        )
        .await
    });
    println!("\nCANCELLED {}", cancelled.is_err());
    // A blocking task left on stdin would make this drop wait forever.
    drop(runtime);
    println!("DROPPED");
    // On stderr, where the login's instructions go: ordered with them.
    eprintln!("SECOND");
    match CartoAuth::oauth().open_browser(false).login() {
        Ok(auth) => println!("RESULT ok {}", auth.get_api_base_url().unwrap_or("-")),
        Err(e) => println!("RESULT err {e}"),
    }
}

/// `login_async` in the local flow, on a current-thread runtime (on
/// pollster's plain `block_on` when `CARTO_TEST_EXECUTOR=pollster`), dropped
/// once its callback port is bound: how long until the port is free.
fn drop_local() {
    let port = redirect_port();
    let bound_then_dropped = async {
        let login = CartoAuth::oauth().login_async();
        let mut login = std::pin::pin!(login);
        // Polled until the port is bound; the thread is never blocked, or
        // this loop could not run.
        let mut polls = 0u32;
        while bindable(port) {
            let poll =
                std::future::poll_fn(|cx| std::task::Poll::Ready(login.as_mut().poll(cx))).await;
            assert!(poll.is_pending(), "the login ended: {poll:?}");
            std::thread::sleep(Duration::from_millis(10));
            polls += 1;
            assert!(polls < 3000, "the port was never bound");
        }
        // `login` is dropped here.
    };
    if std::env::var("CARTO_TEST_EXECUTOR").as_deref() == Ok("pollster") {
        pollster::block_on(bound_then_dropped);
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(bound_then_dropped);
    }
    let dropped = std::time::Instant::now();
    while !bindable(port) && dropped.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "\nRESULT freed={} ms={}",
        bindable(port),
        dropped.elapsed().as_millis()
    );
}

/// A dropped `login_async` frees the callback port within a second, on
/// tokio's current-thread runtime and on a plain `block_on`.
#[test]
fn a_dropped_login_async_frees_the_callback_port_within_a_second() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    for executor in ["tokio", "pollster"] {
        let extra = [("CARTO_TEST_EXECUTOR".to_string(), executor.to_string())];
        let (_home, mut child, _opened) = test.local_flow(&fake, "drop-local", &extra);
        let (result, stderr) = child.result(Duration::from_secs(30));
        let ms: u64 = result
            .strip_prefix("freed=true ms=")
            .unwrap_or_else(|| panic!("{executor}: {result}: {stderr}"))
            .parse()
            .unwrap();
        assert!(ms < 1000, "{executor}: the port was freed after {ms} ms");
    }
}

#[test]
fn the_callback_port_is_free_the_moment_a_login_ends() {
    let test = support::child_test!(child_main);
    support::has_ipv6_loopback("lifecycle: the callback port is free again on [::1]");
    let fake = FakeCarto::start();
    let (_home, mut child, opened) = test.local_flow(&fake, "lifecycle", &[]);
    let flow = child.wait_line(Duration::from_secs(30), |l| l.starts_with("FLOW"));
    assert_eq!(flow, "FLOW LocalCallback bound=true");
    // The browser signs in and comes back to the callback.
    let url = support::wait_for_file(&opened, Duration::from_secs(30));
    std::fs::remove_file(&opened).unwrap();
    let back = fake.authorize(&url);
    let (status, _, _) = support::http_get(&back);
    assert_eq!(status, 302);
    for (step, want) in [
        ("WAITED", "WAITED true bindable=true"),
        ("AGAIN", "AGAIN LocalCallback bound=true"),
        ("DROPPED", "DROPPED bindable=true"),
        ("TIMEDOUT", "TIMEDOUT true bindable=true"),
        ("LATE", "LATE refused=true"),
    ] {
        let line = child.wait_line(Duration::from_secs(30), |l| l.starts_with(step));
        assert_eq!(line, want);
    }
    let (result, stderr) = child.result(Duration::from_secs(30));
    assert_eq!(result, "done", "{stderr}");
}

#[test]
fn a_cancelled_login_neither_blocks_the_exit_nor_swallows_the_next_answer() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let env = support::paste_flow_env(&fake);
    let mut child = test.session("cancel", home.path(), &env);
    // stdin stays open: a thread left reading it must not keep the runtime.
    assert_eq!(
        child.wait_line(Duration::from_secs(30), |l| l.starts_with("CANCELLED")),
        "CANCELLED true"
    );
    child.wait_line(Duration::from_secs(10), |l| l == "DROPPED");
    // The second login's address comes after its marker on stderr. (The
    // first may never have shown one: it can be cancelled before that.)
    child.wait_line(Duration::from_secs(20), |l| l.ends_with("SECOND"));
    let prefix = format!("{}/authorize?", fake.base);
    let at = child
        .seen
        .iter()
        .position(|(e, l)| *e && l.ends_with("SECOND"))
        .unwrap();
    let after: Option<String> = child.seen[at..]
        .iter()
        .find(|(e, l)| *e && l.starts_with(&prefix))
        .map(|(_, l)| l.clone());
    let url = after.unwrap_or_else(|| {
        child.wait_new_line(Duration::from_secs(20), |l| l.starts_with(&prefix))
    });
    // Answered the moment the address is shown, as a program driving the
    // login would: the second login may not have asked yet, and the line
    // is still its own (it took over the first login's waiting question
    // before showing the address), not dropped as the first login's.
    child.write_line(&fake.authorize(&url));
    let (result, stderr) = child.result(Duration::from_secs(30));
    assert_eq!(result, format!("ok {}", fake.api_base_url()), "{stderr}");
}

#[test]
fn open_browser_true_forces_the_local_flow_where_the_guess_says_remote() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let (browser, _) = support::recording_browser(home.path());
    let mut env = fake.env();
    env.push(("BROWSER".into(), browser.display().to_string()));
    env.push(("SSH_CONNECTION".into(), "10.0.0.1 5000 10.0.0.2 22".into()));
    env.push(("CODESPACES".into(), "true".into()));
    let mut child = test.session("forced-local", home.path(), &env);
    let (result, _) = child.result(Duration::from_secs(30));
    assert_eq!(result, "LocalCallback");
}

/// RFC 9207: a sign-in answer that names another issuer is refused; one
/// that names CARTO's (with or without its trailing slash) is used.
#[test]
fn an_answer_from_another_issuer_is_not_used() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let begin = || {
        CartoAuth::oauth()
            .open_browser(false)
            .endpoints(fake.endpoints())
            .cache_filepath(dir.path().join("t.json"))
            .begin()
            .unwrap()
    };
    fake.set_iss_param(IssParam::Other("https://evil.example/".into()));
    let login = begin();
    let landed = fake.authorize(login.authorize_url());
    let err = login.complete(&landed).unwrap_err();
    assert!(
        matches!(&err, Error::IssuerMismatch { got, .. } if got == "https://evil.example/"),
        "{err:?}"
    );
    assert!(
        fake.requests("/oauth/token").is_empty(),
        "the code was not sent anywhere"
    );
    assert!(login.is_pending());
    fake.set_iss_param(IssParam::Ours);
    let landed = fake.authorize(login.authorize_url());
    assert!(landed.contains("&iss="), "{landed}");
    let auth = login.complete(&landed).unwrap();
    assert!(fake.accepts(&auth.get_access_token().unwrap()));
    assert_eq!(begin().flow(), Flow::Paste);
}
