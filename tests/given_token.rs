//! Tokens given as is, as CARTO's own tools take them: `CartoAuth::
//! from_token`, and `CARTO_API_TOKEN` (with `CARTO_API_BASE_URL`) that
//! `from_oauth()` uses without any prompt or cache, so that a notebook runs
//! unattended in CI. And the crate as a good neighbour: it leaves the
//! process-wide rustls provider to the host program.

mod support;

use std::time::Duration;

use carto_auth::{CartoAuth, Error, Mode, TokenSource};
use support::jwt::Subject;
use support::{FakeCarto, USER_ANA, child_scenario};

fn ana() -> Subject {
    Subject::user(USER_ANA)
}

#[test]
fn a_given_jwt_expires_when_it_says_and_then_is_an_error_not_a_login() {
    let fake = FakeCarto::start();
    let token = fake.mint_token(&ana(), 3600);
    let auth = CartoAuth::from_token(token.clone(), format!("{}/", fake.api_base_url()));
    assert_eq!(auth.mode(), Mode::Token);
    assert_eq!(auth.token_source(), TokenSource::Given);
    assert_eq!(auth.get_api_base_url(), Some(fake.api_base_url().as_str()));
    assert_eq!(auth.cache_filepath(), None, "nothing is cached");
    assert_eq!(auth.get_access_token().unwrap(), token);
    let exp = support::jwt::claims(&token).unwrap()["exp"]
        .as_i64()
        .unwrap();
    assert_eq!(auth.expiration(), exp);
    assert_eq!(auth.subject().as_deref(), Some(USER_ANA));
    // It works for what comes next.
    assert_eq!(
        auth.get_carto_dw_credentials().unwrap().0,
        "carto-dw-ac-fake"
    );

    let old = fake.mint_token(&ana(), -120);
    let expired = CartoAuth::from_token(old, fake.api_base_url());
    let err = expired.get_access_token().unwrap_err();
    assert!(matches!(err, Error::TokenExpired { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("given to CartoAuth::from_token expired 2 min ago"),
        "{msg}"
    );
    assert!(fake.requests("/oauth/token").is_empty() && fake.requests("/authorize").is_empty());
    #[cfg(feature = "notebook")]
    assert!(expired.to_html().contains("cannot be renewed here"));

    // Not a JWT: no expiry known; an empty API base URL is unknown.
    let opaque = CartoAuth::from_token("an-api-access-token", "");
    assert_eq!(opaque.get_access_token().unwrap(), "an-api-access-token");
    assert_eq!(opaque.describe_expiry(), "no known expiry");
    assert!(matches!(
        opaque.get_layer_credentials(),
        Err(Error::NoApiBaseUrl { .. })
    ));
}

/// An API base URL that is not https is refused without a panic: the
/// session has none, and what needs one says why and how to write it.
#[test]
fn a_given_api_base_url_that_is_not_https_is_refused_and_said_where_needed() {
    let fake = FakeCarto::start();
    let token = fake.mint_token(&ana(), 3600);
    for (url, fix) in [
        (
            "gcp-us-east1.api.carto.com",
            "https://gcp-us-east1.api.carto.com",
        ),
        (
            "http://gcp-us-east1.api.carto.com",
            "https://gcp-us-east1.api.carto.com",
        ),
        ("ftp://api.example", "https://api.example"),
    ] {
        let auth = CartoAuth::from_token(token.clone(), url);
        assert_eq!(auth.get_api_base_url(), None, "{url}");
        assert_eq!(auth.get_access_token().unwrap(), token);
        let err = auth.get_carto_dw_credentials().unwrap_err();
        assert!(matches!(err, Error::NoApiBaseUrl { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "the API base URL given to CartoAuth::from_token is not usable ({url:?})"
            )) && msg.contains(&format!("Write it as {fix}")),
            "{msg}"
        );
    }
    assert!(
        fake.requests("/api/v3/connections/carto-dw/token")
            .is_empty()
    );
    // On this machine plain http is allowed (the fake is one).
    let local = CartoAuth::from_token(token, fake.api_base_url());
    assert_eq!(local.get_api_base_url(), Some(fake.api_base_url().as_str()));
}

fn child_main() {
    let builder = match child_scenario().as_deref() {
        Some("env") => CartoAuth::oauth(),
        Some("force") => CartoAuth::oauth().force_login(true),
        other => panic!("unknown scenario {other:?}"),
    };
    match builder.login() {
        Ok(auth) => println!(
            "\nRESULT ok {:?} {} {}",
            auth.token_source(),
            auth.get_api_base_url().unwrap_or("-"),
            auth.get_access_token().map(|t| t.len()).unwrap_or(0)
        ),
        Err(e) => println!("\nRESULT err {e}"),
    }
}

/// `from_oauth()` with `CARTO_API_TOKEN`: no prompt (stdin closed), no
/// cache read or written, the base URL from `CARTO_API_BASE_URL` or, without
/// it, discovered with the token; `force_login` signs in anyway.
#[test]
fn carto_api_token_is_used_without_a_prompt_before_any_stored_login() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let token = fake.mint_token(&ana(), 3600);
    let run = |scenario: &str, extra: &[(&str, String)]| {
        let mut env = support::paste_flow_env(&fake);
        env.push(("CARTO_API_TOKEN".into(), token.clone()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut child = test.session(scenario, home.path(), &env);
        child.close_stdin();
        child.result(Duration::from_secs(30))
    };
    let (result, stderr) = run("env", &[("CARTO_API_BASE_URL", fake.api_base_url())]);
    assert_eq!(
        result,
        format!("ok Environment {} {}", fake.api_base_url(), token.len()),
        "{stderr}"
    );
    assert_eq!(stderr.trim(), "", "unattended: nothing said");
    assert!(fake.requests("/accounts").is_empty());
    // Without the base URL: discovered with the token.
    let (result, _) = run("env", &[]);
    assert_eq!(
        result,
        format!("ok Environment {} {}", fake.api_base_url(), token.len())
    );
    assert_eq!(fake.requests("/accounts")[0].bearer(), Some(token.as_str()));
    assert!(fake.requests("/oauth/token").is_empty() && fake.requests("/authorize").is_empty());
    assert!(!home.path().join(".carto-auth").exists(), "nothing cached");
    // force_login: the environment token is not used; here nobody can
    // answer, which says so.
    let (result, _) = run("force", &[]);
    assert!(
        result.starts_with("err no answer can be read here"),
        "{result}"
    );
}

/// The crate gives reqwest a rustls configuration of its own: the process
/// default provider stays unset, so the host program (or another `:dep` of
/// the same kernel) can install its own afterwards without a panic.
#[test]
fn the_process_wide_crypto_provider_is_left_to_the_host_program() {
    let fake = FakeCarto::start();
    let (_dir, auth) = support::m2m_session(&fake);
    auth.get_carto_dw_credentials().unwrap();
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("the host program installs its provider");
    // And the crate goes on working beside it.
    assert!(auth.get_carto_dw_credentials().is_ok());
}

/// A child set-up that names no test of this binary (here: a helper's
/// name, not the test's) fails at once and says why, where its child would
/// have run nothing and the test waited out its timeouts.
#[test]
#[should_panic(
    expected = "this test binary has no test \"a_child_of_no_test_fails_at_once::not_a_test\""
)]
fn a_child_of_no_test_fails_at_once() {
    fn not_a_test() {
        let _test = support::child_test!(child_main);
    }
    not_a_test();
}
