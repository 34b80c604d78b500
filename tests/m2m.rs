//! M2M login against the fake CARTO: the exact request, the cache shared
//! with the Python package, renewal, and the credentials file's errors.

mod support;

use std::time::Duration;

use carto_auth::{CartoAuth, Error, Service, TokenSource};
use support::{FakeCarto, M2M_ID, M2M_SECRET};

fn login(
    fake: &FakeCarto,
    creds: &std::path::Path,
    cache: &std::path::Path,
) -> Result<CartoAuth, Error> {
    CartoAuth::m2m(creds)
        .cache_filepath(cache)
        .endpoints(fake.endpoints())
        .login()
}

#[test]
fn token_request_has_exactly_the_python_form_fields() {
    let fake = FakeCarto::start();
    let (_dir, auth) = support::m2m_session(&fake);

    let requests = fake.requests("/oauth/token");
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.form_keys(),
        ["grant_type", "audience", "client_id", "client_secret"]
    );
    assert_eq!(r.form_value("grant_type"), Some("client_credentials"));
    assert_eq!(r.form_value("audience"), Some("carto-cloud-native-api"));
    assert_eq!(r.form_value("client_id"), Some(M2M_ID));
    assert_eq!(r.form_value("client_secret"), Some(M2M_SECRET));

    assert_eq!(auth.get_api_base_url(), Some(fake.api_base_url().as_str()));
    assert_eq!(fake.issued_tokens(), [auth.get_access_token().unwrap()]);
    assert_eq!(auth.mode(), carto_auth::Mode::M2m);
}

#[test]
fn cache_is_written_privately_and_reused_without_a_request() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("new-dir").join("token_m2m.json");

    let first = login(&fake, &creds, &cache).unwrap();
    let json = support::read_json(&cache);
    assert_eq!(
        json["access_token"],
        first.get_access_token().unwrap().as_str()
    );
    assert_eq!(json["api_base_url"], fake.api_base_url().as_str());
    assert_eq!(json["client_id"], M2M_ID);
    // The true Unix expiry in our key; the Python package's number (its
    // clock, 60 s early) in `expiration`: whatever this machine's zone, the
    // two differ by the margin plus a whole number of quarter hours.
    let real = json["expiration_unix"].as_i64().unwrap();
    let python = json["expiration"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 86_400 - real).abs() <= 5,
        "expiration_unix {real} is not now + expires_in"
    );
    let shift = real - 60 - python;
    assert!(shift % 900 == 0 && shift.abs() <= 14 * 3600, "{shift}");
    assert_eq!(first.expiration(), real);

    #[cfg(unix)]
    {
        assert_eq!(support::file_mode(&cache), 0o600);
        assert_eq!(support::file_mode(cache.parent().unwrap()), 0o700);
    }
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(cache.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
        "{names:?}"
    );

    let second = login(&fake, &creds, &cache).unwrap();
    assert_eq!(
        second.get_access_token().unwrap(),
        first.get_access_token().unwrap()
    );
    assert_eq!(
        fake.requests("/oauth/token").len(),
        1,
        "a good cache must not cost a request"
    );
}

#[test]
fn a_python_written_cache_is_used_when_its_token_says_it_is_this_clients() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    // A JWT of this client (azp): reused without a request.
    let ours = fake.mint_token(
        &support::jwt::Subject::Client {
            client_id: M2M_ID.into(),
        },
        3600,
    );
    fake.write_python_cache(&cache, &ours);
    let auth = login(&fake, &creds, &cache).unwrap();
    assert_eq!(auth.get_access_token().unwrap(), ours);
    assert!(fake.requests("/oauth/token").is_empty());
    assert!(matches!(
        auth.token_source(),
        carto_auth::TokenSource::Cache(_)
    ));

    // Another application's JWT, same API base URL: replaced.
    let theirs = fake.mint_token(
        &support::jwt::Subject::Client {
            client_id: support::M2M_ID_B.into(),
        },
        3600,
    );
    fake.write_python_cache(&cache, &theirs);
    let auth = login(&fake, &creds, &cache).unwrap();
    assert_ne!(auth.get_access_token().unwrap(), theirs);
    assert_eq!(fake.requests("/oauth/token").len(), 1);

    // An opaque token nothing attributes: not presented as this client's.
    fake.write_python_cache(&cache, "py-opaque-token");
    let auth = login(&fake, &creds, &cache).unwrap();
    assert_ne!(auth.get_access_token().unwrap(), "py-opaque-token");
    assert_eq!(fake.requests("/oauth/token").len(), 2);
}

#[test]
fn a_cache_of_another_client_or_api_is_not_used() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    for other in [
        format!(r#"{{"api_base_url": "{}", "access_token": "other-client", "expiration": 99999999999, "client_id": "B"}}"#, fake.api_base_url()),
        r#"{"api_base_url": "https://other.api.carto.com", "access_token": "other-api", "expiration": 99999999999}"#.to_string(),
    ] {
        std::fs::write(&cache, &other).unwrap();
        let auth = login(&fake, &creds, &cache).unwrap();
        let token = auth.get_access_token().unwrap();
        assert!(token.starts_with(support::jwt::PREFIX), "used a foreign token {token}");
        assert_eq!(support::read_json(&cache)["client_id"], M2M_ID, "the cache now belongs to this client");
    }
    assert_eq!(fake.requests("/oauth/token").len(), 2);
}

#[test]
fn an_expired_cache_is_renewed_and_rewritten() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Expires in 30 s: inside the 60 s margin, so already expired for us.
    std::fs::write(
        &cache,
        format!(
            r#"{{"api_base_url": "{}", "access_token": "old", "expiration": {}}}"#,
            fake.api_base_url(),
            now + 30
        ),
    )
    .unwrap();
    let auth = login(&fake, &creds, &cache).unwrap();
    assert_ne!(auth.get_access_token().unwrap(), "old");
    assert_eq!(
        support::read_json(&cache)["access_token"],
        auth.get_access_token().unwrap().as_str()
    );
}

#[test]
fn get_access_token_renews_an_expired_token_and_updates_the_cache() {
    let fake = FakeCarto::start();
    fake.set_expires_in(30); // dead on arrival by the 60 s margin
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    let auth = login(&fake, &creds, &cache).unwrap();
    assert_eq!(fake.requests("/oauth/token").len(), 1);
    fake.set_expires_in(3600);
    let renewed = auth.get_access_token().unwrap();
    assert_eq!(fake.requests("/oauth/token").len(), 2);
    assert_eq!(fake.issued_tokens()[1], renewed);
    assert_eq!(support::read_json(&cache)["access_token"], renewed.as_str());
    // Now good: no third request.
    assert_eq!(auth.get_access_token().unwrap(), renewed);
    assert_eq!(fake.requests("/oauth/token").len(), 2);
}

#[test]
fn with_caching_off_the_file_is_neither_read_nor_written() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    fake.write_python_cache(&cache, "cached");
    let before = std::fs::read_to_string(&cache).unwrap();
    let auth = CartoAuth::m2m(&creds)
        .cache_filepath(&cache)
        .use_cache(false)
        .endpoints(fake.endpoints())
        .login()
        .unwrap();
    assert_ne!(auth.get_access_token().unwrap(), "cached");
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), before);
    assert_eq!(auth.cache_filepath(), None);
}

#[test]
fn a_corrupt_cache_counts_as_none_and_is_replaced_after_login() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    for junk in [
        "",
        "{\"api_base_url\": \"x\", \"acc",
        "[]",
        "\u{0}\u{1}binary",
    ] {
        std::fs::write(&cache, junk).unwrap();
        let auth = login(&fake, &creds, &cache).unwrap();
        assert_eq!(
            support::read_json(&cache)["access_token"],
            auth.get_access_token().unwrap().as_str()
        );
    }
}

#[test]
fn wrong_credentials_are_a_status_error_with_the_servers_words() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    std::fs::write(&creds, format!(r#"{{"api_base_url": "{}", "client_id": "{M2M_ID}", "client_secret": "wrong-secret-123"}}"#, fake.api_base_url())).unwrap();
    let cache = dir.path().join("token_m2m.json");
    let err = login(&fake, &creds, &cache).unwrap_err();
    match &err {
        Error::Status {
            service: Service::Token(_),
            status: 401,
            error,
            ..
        } => assert_eq!(error.as_deref(), Some("access_denied")),
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("check client_id and client_secret"), "{msg}");
    assert!(!msg.contains("wrong-secret-123"), "{msg}");
    assert!(!cache.exists(), "a failed login must not write the cache");
}

#[test]
fn credentials_file_errors_name_the_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let err = CartoAuth::from_m2m(&missing).unwrap_err();
    assert!(matches!(err, Error::CredentialsRead { .. }), "{err:?}");
    assert!(
        err.to_string().contains("nope.json")
            && err.to_string().contains("Developers > Credentials")
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"api_base_url": "https://x", "client_id": "id"}"#).unwrap();
    let err = CartoAuth::from_file(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CredentialsMissingKey {
                key: "client_secret",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("bad.json"));

    std::fs::write(
        &bad,
        r#"{"api_base_url": "https://x", "client_id": "", "client_secret": "s"}"#,
    )
    .unwrap();
    let err = CartoAuth::from_m2m(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CredentialsEmptyValue {
                key: "client_id",
                ..
            }
        ),
        "{err:?}"
    );

    std::fs::write(&bad, "not json").unwrap();
    assert!(matches!(
        CartoAuth::from_m2m(&bad).unwrap_err(),
        Error::CredentialsFormat { .. }
    ));
}

#[test]
fn carto_dw_and_layer_credentials() {
    let fake = FakeCarto::start();
    let (_dir, auth) = support::m2m_session(&fake);
    assert_eq!(
        auth.get_carto_dw_credentials().unwrap(),
        ("carto-dw-ac-fake".to_string(), fake.dw_tokens()[0].clone())
    );
    let dw = fake.requests("/api/v3/connections/carto-dw/token");
    assert_eq!(dw.len(), 1);
    assert_eq!(
        dw[0].authorization.as_deref(),
        Some(format!("Bearer {}", auth.get_access_token().unwrap()).as_str())
    );

    let layer = auth.get_layer_credentials().unwrap();
    let json: serde_json::Value = serde_json::from_str(&layer.to_json()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"apiVersion": "v3", "apiBaseUrl": fake.api_base_url(), "accessToken": auth.get_access_token().unwrap()})
    );
}

#[test]
fn carto_dw_errors_suggest_checking_the_api_base_url() {
    let fake = FakeCarto::start();
    let (_dir, auth) = support::m2m_session(&fake);
    for fault in [
        support::Fault::Html,
        support::Fault::Json(r#"{"projectId": "p"}"#.into()),
        support::Fault::Status(404, r#"{"error":"not_found"}"#.into()),
    ] {
        fake.fault("/api/v3/connections/carto-dw/token", fault.clone());
        let err = auth.get_carto_dw_credentials().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("API base URL"), "{fault:?}: {msg}");
        assert!(msg.contains("CARTO Data Warehouse"), "{fault:?}: {msg}");
    }
}

#[test]
fn a_slow_token_endpoint_times_out_with_a_clear_error() {
    let fake = FakeCarto::start();
    fake.fault("/oauth/token", support::Fault::Slow(Duration::from_secs(3)));
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let err = CartoAuth::m2m(&creds)
        .use_cache(false)
        .endpoints(fake.endpoints())
        .timeout(Duration::from_millis(500))
        .login()
        .unwrap_err();
    match err {
        Error::Network {
            service: Service::Token(_),
            ref message,
            ..
        } => assert!(message.contains("no answer within"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// The blocking calls need no runtime, so they work inside any: a
/// multi-thread tokio runtime, and a current-thread one too (where the
/// crate used to refuse with an error naming the `_async` twin).
#[test]
fn blocking_api_works_inside_multi_thread_and_current_thread_runtimes() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let endpoints = fake.endpoints();
    let login = || {
        let auth = CartoAuth::m2m(&creds)
            .use_cache(false)
            .endpoints(endpoints.clone())
            .login()
            .unwrap();
        let (project, _) = auth.get_carto_dw_credentials().unwrap();
        (auth.get_access_token().unwrap(), project)
    };
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (token, project) = multi.block_on(async { login() });
    assert!(fake.accepts(&token));
    assert_eq!(project, "carto-dw-ac-fake");
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (token, project) = current.block_on(async { login() });
    assert!(fake.accepts(&token));
    assert_eq!(project, "carto-dw-ac-fake");
}

/// The async twins on three executors: tokio's two runtimes and a plain
/// `block_on` (pollster), which has no reactor, no timer and no thread pool.
#[test]
fn async_twins_run_on_any_executor() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let endpoints = fake.endpoints();
    let session = || async {
        let auth = CartoAuth::m2m(&creds)
            .use_cache(false)
            .endpoints(endpoints.clone())
            .login_async()
            .await
            .unwrap();
        let (project, _) = auth.get_carto_dw_credentials_async().await.unwrap();
        (auth.get_access_token_async().await.unwrap(), project)
    };
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let on_multi = multi.block_on(session());
    let on_current = current.block_on(session());
    let on_pollster = pollster::block_on(session());
    for (token, project) in [on_multi, on_current, on_pollster] {
        assert!(fake.accepts(&token));
        assert_eq!(project, "carto-dw-ac-fake");
    }
}

#[tokio::test]
async fn async_api_shares_the_implementation() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    let auth = CartoAuth::m2m(&creds)
        .cache_filepath(&cache)
        .endpoints(fake.endpoints())
        .login_async()
        .await
        .unwrap();
    let token = auth.get_access_token_async().await.unwrap();
    assert_eq!(support::read_json(&cache)["access_token"], token.as_str());
    let (project, _) = auth.get_carto_dw_credentials_async().await.unwrap();
    assert_eq!(project, "carto-dw-ac-fake");
    assert_eq!(
        auth.get_layer_credentials_async()
            .await
            .unwrap()
            .access_token(),
        token
    );
}

#[test]
fn debug_and_display_never_show_the_token() {
    let fake = FakeCarto::start();
    let (_dir, auth) = support::m2m_session(&fake);
    let token = auth.get_access_token().unwrap();
    let shown = format!(
        "{auth:?} {auth} {:?}",
        auth.get_layer_credentials().unwrap()
    );
    assert!(!shown.contains(&token), "{shown}");
    assert!(!shown.contains(M2M_SECRET), "{shown}");
    assert!(
        shown.contains("M2M session") && shown.contains(&auth.masked_token()),
        "{shown}"
    );
}

/// A credentials file whose `api_base_url` is not https is refused before
/// the secret is sent anywhere, naming the file, the key and the fix.
#[test]
fn an_api_base_url_that_is_not_https_is_refused_before_any_request() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    for url in [
        "gcp-us-east1.api.carto.com",
        "http://gcp-us-east1.api.carto.com",
    ] {
        std::fs::write(
            &creds,
            format!(
                r#"{{"api_base_url": "{url}", "client_id": "{M2M_ID}", "client_secret": "{M2M_SECRET}"}}"#
            ),
        )
        .unwrap();
        let err = CartoAuth::m2m(&creds)
            .use_cache(false)
            .endpoints(fake.endpoints())
            .login()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidApiBaseUrl { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{} (key \"api_base_url\")", creds.display()))
                && msg.ends_with("Write it as https://gcp-us-east1.api.carto.com"),
            "{msg}"
        );
    }
    assert!(fake.requests("/oauth/token").is_empty());
}

/// `.timeout(Duration::MAX)` means no deadline: the login, the cache lock
/// (which waits a little longer than a request) and later requests work.
#[test]
fn the_largest_timeout_means_no_deadline() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    let login = || {
        CartoAuth::m2m(&creds)
            .cache_filepath(&cache)
            .endpoints(fake.endpoints())
            .timeout(Duration::MAX)
            .login()
            .unwrap()
    };
    let first = login();
    assert_eq!(first.token_source(), TokenSource::SignIn);
    let second = login();
    assert_eq!(second.token_source(), TokenSource::Cache(cache.clone()));
    assert_eq!(
        second.get_access_token().unwrap(),
        first.get_access_token().unwrap()
    );
    assert_eq!(
        first.get_carto_dw_credentials().unwrap().0,
        "carto-dw-ac-fake"
    );
}
