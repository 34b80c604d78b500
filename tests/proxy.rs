//! Proxies from the environment, as curl reads them for HTTPS: `HTTPS_PROXY`
//! (or `ALL_PROXY`, lower case too) sends every request through a CONNECT
//! tunnel; `NO_PROXY` names the hosts that go direct; `HTTP_PROXY` alone is
//! for plain HTTP and not used. In child processes, whose environment is
//! their own.

mod support;

use std::time::Duration;

use carto_auth::CartoAuth;
use support::proxy::ConnectProxy;
use support::{FakeCarto, child_scenario};

fn child_main() {
    assert_eq!(child_scenario().as_deref(), Some("m2m"));
    let creds = std::env::var("CARTO_TEST_CREDENTIALS").unwrap();
    let outcome = CartoAuth::m2m(creds)
        .use_cache(false)
        .login()
        .and_then(|auth| auth.get_carto_dw_credentials());
    match outcome {
        Ok((project, _)) => println!("\nRESULT ok {project}"),
        Err(e) => println!("\nRESULT err {e}"),
    }
}

#[test]
fn requests_go_through_the_https_proxy_and_no_proxy_hosts_go_direct() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    let proxy = ConnectProxy::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let fake_host = fake.base.trim_start_matches("http://").to_string();
    let session = |extra: &[(&str, String)]| {
        let mut env = fake.env();
        env.push(("CARTO_TEST_CREDENTIALS".into(), creds.display().to_string()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut child = test.session("m2m", dir.path(), &env);
        child.result(Duration::from_secs(30))
    };

    let (result, stderr) = session(&[("HTTPS_PROXY", proxy.url())]);
    assert_eq!(result, "ok carto-dw-ac-fake", "{stderr}");
    let tunnelled = proxy.requests();
    // The token request and the DW call, each through a tunnel to the fake
    // (one tunnel when the connection is kept for both).
    assert!(!tunnelled.is_empty());
    assert!(
        tunnelled
            .iter()
            .all(|r| *r == format!("CONNECT {fake_host} HTTP/1.1")),
        "{tunnelled:?}"
    );
    assert_eq!(fake.requests("/oauth/token").len(), 1);

    // NO_PROXY names the fake's host: nothing reaches the proxy.
    let (result, stderr) = session(&[
        ("HTTPS_PROXY", proxy.url()),
        ("NO_PROXY", "localhost,127.0.0.1".into()),
    ]);
    assert_eq!(result, "ok carto-dw-ac-fake", "{stderr}");
    assert_eq!(proxy.requests().len(), tunnelled.len());
    assert_eq!(fake.requests("/oauth/token").len(), 2);

    // HTTP_PROXY alone is for plain HTTP: CARTO's HTTPS goes direct.
    let (result, stderr) = session(&[("HTTP_PROXY", proxy.url())]);
    assert_eq!(result, "ok carto-dw-ac-fake", "{stderr}");
    assert_eq!(proxy.requests().len(), tunnelled.len());
    assert_eq!(fake.requests("/oauth/token").len(), 3);

    // A proxy that is down is a network error that names the proxy's
    // refusal, not a hang.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}", down.local_addr().unwrap());
    drop(down);
    let (result, stderr) = session(&[("HTTPS_PROXY", down_url)]);
    assert!(result.starts_with("err "), "{result} {stderr}");
    assert!(result.contains("refused"), "{result}");
    assert_eq!(fake.requests("/oauth/token").len(), 3);
}
