//! Interactive (OAuth + PKCE) login against the fake CARTO: the authorize
//! URL, the code exchange, discovery, the cache, the two-step API, and, in
//! child processes, the real local flow through `$BROWSER` and the callback
//! server, and the paste flow through stdin.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use carto_auth::{CartoAuth, Error, Flow, LoginInstructions, Prompt, Service, TokenSource};
use support::{FakeCarto, Fault};

/// A user at a browser elsewhere: opens the URL shown, signs in, pastes what
/// `answer` makes of the page CARTO sent them to.
#[derive(Clone)]
struct Player {
    fake_base: String,
    answer: Arc<dyn Fn(&str) -> String + Send + Sync>,
    shown: Arc<Mutex<Vec<LoginInstructions>>>,
    notices: Arc<Mutex<Vec<String>>>,
}

impl Player {
    fn new(fake: &FakeCarto, answer: impl Fn(&str) -> String + Send + Sync + 'static) -> Player {
        Player {
            fake_base: fake.base.clone(),
            answer: Arc::new(answer),
            shown: Arc::default(),
            notices: Arc::default(),
        }
    }

    /// Pastes the whole address of the page the browser landed on.
    fn pasting_url(fake: &FakeCarto) -> Player {
        let base = fake.base.clone();
        Player::new(fake, move |landed| {
            assert!(
                landed.starts_with(&format!("{base}/auth/token?code=")),
                "{landed}"
            );
            landed.to_string()
        })
    }

    fn times_shown(&self) -> usize {
        self.shown.lock().unwrap().len()
    }
}

impl Prompt for Player {
    fn show_login(&self, login: &LoginInstructions) {
        self.shown.lock().unwrap().push(login.clone());
    }

    fn ask_code(&self, _question: &str) -> std::io::Result<String> {
        let url = self
            .shown
            .lock()
            .unwrap()
            .last()
            .expect("asked before shown")
            .authorize_url
            .clone();
        let (status, headers, _) = support::http_get(&url);
        assert!(url.starts_with(&self.fake_base));
        assert_eq!(status, 302);
        Ok((self.answer)(
            &support::header(&headers, "location").unwrap(),
        ))
    }

    fn notice(&self, message: &str) {
        self.notices.lock().unwrap().push(message.to_string());
    }
}

fn paste_login(fake: &FakeCarto, player: &Player, cache: &Path) -> carto_auth::OAuthBuilder {
    CartoAuth::oauth()
        .open_browser(false)
        .endpoints(fake.endpoints())
        .cache_filepath(cache)
        .prompt(player.clone())
}

#[test]
fn paste_flow_sends_what_carto_expects_and_discovers_the_api() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let player = Player::pasting_url(&fake);
    let auth = paste_login(&fake, &player, &cache).login().unwrap();

    let authorize = &fake.requests("/authorize")[0];
    let keys: Vec<&str> = authorize.query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "client_id",
            "response_type",
            "scope",
            "audience",
            "redirect_uri",
            "code_challenge_method",
            "code_challenge"
        ]
    );
    assert_eq!(authorize.query_value("client_id"), Some(support::CLIENT_ID));
    assert_eq!(authorize.query_value("response_type"), Some("code"));
    assert_eq!(authorize.query_value("scope"), Some("None"));
    assert_eq!(
        authorize.query_value("audience"),
        Some("carto-cloud-native-api")
    );
    let paste_uri = format!("{}/auth/token", fake.base);
    assert_eq!(
        authorize.query_value("redirect_uri"),
        Some(paste_uri.as_str())
    );
    assert_eq!(authorize.query_value("code_challenge_method"), Some("S256"));

    let token_request = &fake.requests("/oauth/token")[0];
    assert_eq!(token_request.form_keys(), support::CODE_EXCHANGE_FORM);
    assert_eq!(
        token_request.form_value("grant_type"),
        Some("authorization_code")
    );
    assert_eq!(
        token_request.form_value("redirect_uri"),
        Some(paste_uri.as_str())
    );
    // PKCE: the challenge sent to /authorize is S256 of the verifier sent to /oauth/token.
    let verifier = token_request.form_value("code_verifier").unwrap();
    assert!((43..=128).contains(&verifier.len()));
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    assert_eq!(
        authorize.query_value("code_challenge"),
        Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(digest)
                .as_str()
        )
    );

    let token = auth.get_access_token().unwrap();
    assert_eq!(fake.issued_tokens(), std::slice::from_ref(&token));
    assert_eq!(
        fake.requests("/accounts")[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(fake.requests("/config.yaml").len(), 1);
    assert_eq!(auth.get_api_base_url(), Some(fake.api_base_url().as_str()));

    // The Python package's three keys, then our true expiry (the JWT's
    // `exp`): nothing else, no organization was asked for.
    let json = support::read_json(&cache);
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "api_base_url",
            "expiration",
            "expiration_unix"
        ]
    );
    assert_eq!(json["api_base_url"], fake.api_base_url());
    assert_eq!(json["access_token"], token);
    let exp = support::jwt::claims(&token).unwrap()["exp"]
        .as_i64()
        .unwrap();
    assert_eq!(
        (json["expiration_unix"].as_i64(), auth.expiration()),
        (Some(exp), exp)
    );
    let shown = player.shown.lock().unwrap();
    assert_eq!(shown[0].flow, Flow::Paste);
    assert_eq!(shown[0].why_paste.as_deref(), Some("open_browser(false)"));
    let notices = player.notices.lock().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("Signed in to CARTO") && n.contains("token expires in 2")),
        "{notices:?}"
    );
    assert!(notices.iter().all(|n| !n.contains(&token)));
}

#[test]
fn the_organization_is_sent_last() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::pasting_url(&fake);
    let auth = paste_login(&fake, &player, &dir.path().join("t.json"))
        .org("acme corp")
        .login()
        .unwrap();
    let authorize = &fake.requests("/authorize")[0];
    assert_eq!(
        authorize.query.last().unwrap(),
        &("organization".to_string(), "acme corp".to_string())
    );
    assert_eq!(auth.org(), Some("acme corp"));
    assert_eq!(
        player.shown.lock().unwrap()[0].org.as_deref(),
        Some("acme corp")
    );
}

#[test]
fn a_bare_code_can_be_pasted() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::new(&fake, |landed| {
        let url = url::Url::parse(landed).unwrap();
        format!(
            "  {}  ",
            url.query_pairs().find(|(k, _)| k == "code").unwrap().1
        )
    });
    let auth = paste_login(&fake, &player, &dir.path().join("t.json"))
        .login()
        .unwrap();
    assert!(
        fake.issued_tokens()
            .contains(&auth.get_access_token().unwrap())
    );
}

#[test]
fn an_error_in_the_pasted_address_is_an_authorization_error() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::new(&fake, |landed| landed.to_string());
    let err = paste_login(&fake, &player, &dir.path().join("t.json"))
        .org("denied-org")
        .login()
        .unwrap_err();
    match &err {
        Error::Authorization { error, description } => {
            assert_eq!(error, "access_denied");
            assert_eq!(description.as_deref(), Some("Org denied"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("organization name"), "{err}");
    assert!(fake.requests("/oauth/token").is_empty());
}

#[test]
fn an_empty_answer_is_a_clear_error_not_a_loop() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("t.json");
    let player = Player::new(&fake, |_| "\n".into());
    let err = paste_login(&fake, &player, &cache).login().unwrap_err();
    assert!(matches!(err, Error::NoAnswer { .. }), "{err:?}");
    assert!(err.to_string().contains("no answer was given"), "{err}");
    assert_eq!(player.times_shown(), 1);
    assert!(!cache.exists());
}

#[test]
fn a_given_api_base_url_skips_discovery() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::pasting_url(&fake);
    let auth = paste_login(&fake, &player, &dir.path().join("t.json"))
        .api_base_url("https://gcp-eu.api.example/")
        .login()
        .unwrap();
    assert_eq!(auth.get_api_base_url(), Some("https://gcp-eu.api.example"));
    assert!(fake.requests("/accounts").is_empty());
    assert!(fake.requests("/config.yaml").is_empty());
}

#[test]
/// A discovery failure after a good exchange keeps the sign-in: one retry,
/// then a session whose API base URL is unknown, a warning, and an error
/// that says what failed and how to pass the URL where one is needed.
fn discovery_errors_keep_the_token_and_say_what_failed() {
    let cases: Vec<(&str, Fault, &str)> = vec![
        (
            "/accounts",
            Fault::Json(r#"{"error":"Account not found"}"#.into()),
            "Account not found",
        ),
        (
            "/accounts",
            Fault::Status(
                401,
                r#"{"error":"Unauthorized","error_description":"bad token"}"#.into(),
            ),
            "HTTP 401 (Unauthorized: bad token)",
        ),
        (
            "/accounts",
            Fault::Json(r#"{"id":"ac_1"}"#.into()),
            "names no tenant",
        ),
        ("/accounts", Fault::Html, "HTML"),
        (
            "/config.yaml",
            Fault::Json("apis: [".into()),
            "malformed YAML",
        ),
        (
            "/config.yaml",
            Fault::Json("version: 1\n".into()),
            "without apis",
        ),
        (
            "/config.yaml",
            Fault::Status(500, String::new()),
            "HTTP 500",
        ),
        // A token is never sent in clear to what discovery names.
        (
            "/config.yaml",
            Fault::Json("apis:\n  baseUrl: http://gcp.example/\n".into()),
            "(apis.baseUrl) is not usable (\"http://gcp.example/\"): http:// would send the \
             access token unencrypted",
        ),
    ];
    for (path, fault, expect) in cases {
        let fake = FakeCarto::start();
        fake.fault(path, fault.clone());
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("t.json");
        let player = Player::pasting_url(&fake);
        let auth = paste_login(&fake, &player, &cache).login().unwrap();
        assert_eq!(auth.get_api_base_url(), None);
        let token = auth.get_access_token().unwrap();
        assert!(fake.accepts(&token));
        let err = auth.get_layer_credentials().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(expect), "{path} {fault:?}: {msg}");
        assert!(
            msg.contains(".api_base_url(") && msg.contains("CARTO_API_BASE_URL"),
            "{path} {fault:?}: the remedy is missing: {msg}"
        );
        let retried = if expect == "names no tenant" { 1 } else { 2 };
        assert_eq!(fake.requests(path).len(), retried, "{path} {fault:?}");
        // Said at once, too, not only when the URL is needed.
        let notices = player.notices.lock().unwrap();
        assert!(
            notices
                .iter()
                .any(|n| n.contains("warning: the API base URL could not be found")),
            "{notices:?}"
        );
        let cached = support::read_json(&cache);
        assert!(cached["api_base_url"].is_null() && cached["access_token"] == token.as_str());
    }
}

#[test]
fn a_good_cache_logs_in_without_asking() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    std::fs::write(&cache, r#"{"api_base_url": "https://api.example", "access_token": "cached-token", "expiration": 99999999999}"#).unwrap();
    let player = Player::new(&fake, |_| panic!("must not ask"));
    let auth = paste_login(&fake, &player, &cache).login().unwrap();
    assert_eq!(auth.get_access_token().unwrap(), "cached-token");
    assert_eq!(auth.get_api_base_url(), Some("https://api.example"));
    assert_eq!(player.times_shown(), 0);
    assert!(fake.requests("/authorize").is_empty() && fake.requests("/oauth/token").is_empty());
}

#[test]
fn a_cache_without_api_base_url_or_expired_means_a_new_login() {
    for content in [
        r#"{"api_base_url": null, "access_token": "t", "expiration": 99999999999}"#,
        r#"{"api_base_url": "https://api.example", "access_token": "t", "expiration": 1000}"#,
        r#"{"access_token": "t", "expiration": 99999999999}"#,
    ] {
        let fake = FakeCarto::start();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("token_oauth.json");
        std::fs::write(&cache, content).unwrap();
        let player = Player::pasting_url(&fake);
        let auth = paste_login(&fake, &player, &cache).login().unwrap();
        assert_eq!(player.times_shown(), 1, "{content}");
        assert_eq!(
            support::read_json(&cache)["access_token"],
            auth.get_access_token().unwrap().as_str()
        );
    }
}

/// A cache file whose API base URL is not https (no scheme, or plain http
/// to another machine) counts as no cache, with the reason said: its token
/// is never sent there.
#[test]
fn a_cache_whose_api_base_url_is_not_https_counts_as_no_cache() {
    for url in [
        "gcp-us-east1.api.carto.com",
        "http://gcp-us-east1.api.carto.com",
    ] {
        let fake = FakeCarto::start();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("token_oauth.json");
        std::fs::write(
            &cache,
            format!(
                r#"{{"api_base_url": "{url}", "access_token": "cached-token", "expiration": 99999999999}}"#
            ),
        )
        .unwrap();
        let player = Player::pasting_url(&fake);
        let auth = paste_login(&fake, &player, &cache).login().unwrap();
        assert_eq!(player.times_shown(), 1, "{url}");
        assert_ne!(auth.get_access_token().unwrap(), "cached-token");
        assert_eq!(auth.get_api_base_url(), Some(fake.api_base_url().as_str()));
        let notices = player.notices.lock().unwrap();
        assert!(
            notices
                .iter()
                .any(|n| n.contains("ignoring the token cache")
                    && n.contains("its api_base_url is not an https:// URL")),
            "{url}: {notices:?}"
        );
        assert_eq!(
            support::read_json(&cache)["api_base_url"],
            fake.api_base_url()
        );
    }
}

/// `.api_base_url(..)` that is not https is refused before anything is
/// asked or sent, by every verb, saying how to write it.
#[test]
fn an_api_base_url_option_that_is_not_https_is_refused_before_signing_in() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let player = Player::new(&fake, |_| panic!("must not ask"));
    for (url, fix) in [
        (
            "gcp-us-east1.api.carto.com",
            "https://gcp-us-east1.api.carto.com",
        ),
        (
            "http://gcp-us-east1.api.carto.com/",
            "https://gcp-us-east1.api.carto.com",
        ),
    ] {
        let builder = || paste_login(&fake, &player, &cache).api_base_url(url);
        let errors = [
            builder().existing_session().map(|_| ()).unwrap_err(),
            builder().begin().map(|_| ()).unwrap_err(),
            builder().login().map(|_| ()).unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, Error::InvalidApiBaseUrl { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with("the API base URL given to .api_base_url(..)")
                    && msg.ends_with(&format!("Write it as {fix}")),
                "{msg}"
            );
        }
    }
    assert_eq!(player.times_shown(), 0);
    assert!(fake.requests("/oauth/token").is_empty() && !cache.exists());
}

/// `existing_session` answers what `login` would do, with the login's own
/// code: the cached session when it fits every option, `None` when the
/// login would sign in. It never asks anything.
#[test]
fn existing_session_answers_as_the_login_would() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let token = fake.mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600);
    fake.write_python_cache(&cache, &token);
    let player = Player::new(&fake, |_| panic!("must not ask"));
    let builder = || paste_login(&fake, &player, &cache);

    let found = builder()
        .existing_session()
        .unwrap()
        .expect("a cached session");
    assert_eq!(found.token_source(), TokenSource::Cache(cache.clone()));
    assert_eq!(found.get_access_token().unwrap(), token);
    assert_eq!(found.get_api_base_url(), Some(fake.api_base_url().as_str()));
    let same = builder().api_base_url(format!("{}/", fake.api_base_url()));
    assert!(same.existing_session().unwrap().is_some());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let from_async = runtime.block_on(builder().existing_session_async());
    assert_eq!(
        from_async.unwrap().unwrap().get_access_token().unwrap(),
        token
    );

    // Each option the cached token does not fit: the login would sign in.
    for (why, other) in [
        ("an organization", builder().org("acme")),
        (
            "another API",
            builder().api_base_url("https://gcp-eu.api.example"),
        ),
        ("force_login", builder().force_login(true)),
        ("use_cache(false)", builder().use_cache(false)),
    ] {
        assert!(other.existing_session().unwrap().is_none(), "{why}");
    }
    std::fs::write(
        &cache,
        format!(
            r#"{{"api_base_url": "{}", "access_token": "t", "expiration": 1000}}"#,
            fake.api_base_url()
        ),
    )
    .unwrap();
    assert!(builder().existing_session().unwrap().is_none(), "expired");
    assert_eq!(player.times_shown(), 0);
    assert!(fake.requests("/oauth/token").is_empty());
}

/// The largest durations mean no deadline: a login, its cache lock and its
/// requests work, never an overflow.
#[test]
fn the_largest_durations_mean_no_deadline() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let player = Player::pasting_url(&fake);
    let builder = || {
        paste_login(&fake, &player, &cache)
            .timeout(Duration::MAX)
            .login_timeout(Duration::MAX)
    };
    let auth = builder().login().unwrap();
    assert_eq!(auth.get_api_base_url(), Some(fake.api_base_url().as_str()));
    assert_eq!(
        auth.get_carto_dw_credentials().unwrap().0,
        "carto-dw-ac-fake"
    );
    let again = builder().login().unwrap();
    assert_eq!(again.token_source(), TokenSource::Cache(cache.clone()));
    let pending = builder().force_login(true).begin().unwrap();
    let landed = fake.authorize(pending.authorize_url());
    let renewed = pending.complete(&landed).unwrap();
    assert!(fake.accepts(&renewed.get_access_token().unwrap()));
}

#[test]
fn an_expired_session_logs_in_again_on_get_access_token() {
    let fake = FakeCarto::start();
    fake.set_expires_in(30);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let player = Player::pasting_url(&fake);
    let auth = paste_login(&fake, &player, &cache).login().unwrap();
    fake.set_expires_in(86_400);
    let renewed = auth.get_access_token().unwrap();
    assert_eq!(player.times_shown(), 2);
    assert_eq!(fake.issued_tokens().last(), Some(&renewed));
    assert_eq!(support::read_json(&cache)["access_token"], renewed.as_str());
    let notices = player.notices.lock().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("Signing in again: the CARTO token")
                && n.contains("no fresher token")),
        "{notices:?}"
    );
}

#[test]
fn another_kernels_fresh_login_of_the_same_user_is_used_instead_of_asking() {
    let fake = FakeCarto::start();
    fake.set_expires_in(30);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let player = Player::pasting_url(&fake);
    let auth = paste_login(&fake, &player, &cache).login().unwrap();
    // Another kernel of the same user signed in meanwhile.
    let fresher = fake.mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600);
    fake.write_python_cache(&cache, &fresher);
    assert_eq!(auth.get_access_token().unwrap(), fresher);
    assert_eq!(player.times_shown(), 1);
    assert!(matches!(
        auth.token_source(),
        carto_auth::TokenSource::Cache(_)
    ));
}

/// Another account signed in elsewhere (another notebook, the Python
/// package): its token in the cache is never this session's, and a renewal
/// sign-in that turns out to be that account is refused, not adopted.
#[test]
fn an_expired_session_never_returns_another_accounts_token() {
    let fake = FakeCarto::start();
    fake.set_expires_in(30);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let player = Player::pasting_url(&fake);
    let auth = paste_login(&fake, &player, &cache).login().unwrap();
    assert_eq!(auth.subject().as_deref(), Some(support::USER_ANA));
    let bens = fake.mint_token(&support::jwt::Subject::user(support::USER_BEN), 3600);
    fake.write_python_cache(&cache, &bens);
    fake.set_expires_in(86_400);
    // Ana signs in again: she gets her own new token, never Ben's.
    let renewed = auth.get_access_token().unwrap();
    assert_ne!(renewed, bens);
    assert_eq!(
        support::jwt::claims(&renewed).unwrap()["sub"],
        support::USER_ANA
    );
    assert_eq!(player.times_shown(), 2);
    assert!(
        player
            .notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.contains("another account's token")),
        "{:?}",
        player.notices.lock().unwrap()
    );

    // The browser is now Ben's: the renewal sign-in is his, and refused.
    fake.set_expires_in(30);
    let short = paste_login(&fake, &player, &dir.path().join("other.json"))
        .login()
        .unwrap();
    fake.sign_in_as(support::USER_BEN);
    fake.set_expires_in(86_400);
    let err = short.get_access_token().unwrap_err();
    assert!(
        matches!(&err, Error::AccountChanged { expected, got } if expected == support::USER_ANA && got == support::USER_BEN),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("Sign in again as auth0|ana-6123"),
        "{err}"
    );
}

#[test]
fn two_step_login_completes_once() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token_oauth.json");
    let login = CartoAuth::oauth()
        .open_browser(false)
        .endpoints(fake.endpoints())
        .cache_filepath(&cache)
        .prompt(Player::pasting_url(&fake))
        .begin()
        .unwrap();
    assert_eq!(login.flow(), Flow::Paste);
    assert!(
        fake.requests("/authorize").is_empty(),
        "begin() only prepares the URL"
    );
    let landed = fake.authorize(login.authorize_url());

    // A slip of the paste can be corrected: it does not use up the login.
    assert!(matches!(
        login.complete("https://app.carto.com/auth/token"),
        Err(Error::NoCode { .. })
    ));
    let auth = login.complete(&landed).unwrap();
    assert_eq!(
        support::read_json(&cache)["access_token"],
        auth.get_access_token().unwrap().as_str()
    );

    let again = login.complete(&landed).unwrap_err();
    assert!(
        matches!(again, Error::LoginFinished { state: "completed" }),
        "{again:?}"
    );
    assert!(again.to_string().contains("CartoAuth::oauth().begin()"));
    assert!(matches!(login.wait(), Err(Error::LoginFinished { .. })));
    assert_eq!(fake.requests("/oauth/token").len(), 1);
    let debug = format!("{login:?}");
    assert!(
        debug.contains("completed") && !debug.contains("code_verifier"),
        "{debug}"
    );
}

/// A refused code (copied short, say) leaves the login pending: the right
/// one completes it, with the same verifier.
#[test]
fn a_rejected_code_leaves_the_login_pending_for_the_right_one() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let login = CartoAuth::oauth()
        .open_browser(false)
        .endpoints(fake.endpoints())
        .cache_filepath(dir.path().join("t.json"))
        .begin()
        .unwrap();
    let landed = fake.authorize(login.authorize_url());
    let code = support::query_param(&landed, "code").unwrap();
    let err = login.complete(&code[..code.len() - 3]).unwrap_err();
    assert!(
        matches!(&err, Error::Status { service: Service::Token(carto_auth::Grant::AuthorizationCode), status: 403, error: Some(e), .. } if e == "invalid_grant"),
        "{err:?}"
    );
    assert!(err.to_string().contains("copied short"), "{err}");
    assert!(login.is_pending());
    let auth = login.complete(&landed).unwrap();
    assert!(fake.accepts(&auth.get_access_token().unwrap()));
    let verifiers: Vec<String> = fake
        .requests("/oauth/token")
        .iter()
        .map(|r| r.form_value("code_verifier").unwrap().to_string())
        .collect();
    assert_eq!(verifiers.len(), 2);
    assert_eq!(verifiers[0], verifiers[1], "the same verifier, kept");
}

#[test]
fn the_blocking_login_works_inside_a_tokio_runtime() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let player = Player::pasting_url(&fake);
    let builder = paste_login(&fake, &player, &dir.path().join("t.json"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let auth = rt.block_on(async move { builder.login() }).unwrap();
    assert!(
        fake.issued_tokens()
            .contains(&auth.get_access_token().unwrap())
    );
}

// ---- child processes: real environment, $BROWSER, stdin ----

fn child_login() {
    let mut builder = CartoAuth::oauth();
    match std::env::var("CARTO_TEST_LOGIN_TIMEOUT_MS").as_deref() {
        Ok("max") => builder = builder.login_timeout(Duration::MAX).timeout(Duration::MAX),
        Ok(ms) => builder = builder.login_timeout(Duration::from_millis(ms.parse().unwrap())),
        Err(_) => {}
    }
    match builder.login() {
        // A leading newline: libtest has printed "test name ... " unterminated.
        Ok(auth) => println!(
            "\nRESULT ok {} {}",
            auth.get_api_base_url().unwrap_or("-"),
            auth.cache_filepath().unwrap().display()
        ),
        Err(e) => println!("\nRESULT err {e}"),
    }
}

#[test]
fn local_flow_through_browser_and_callback_ignoring_strays() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let (home, mut child, opened) = test.local_flow(&fake, "login", &[]);
    let url = support::wait_for_file(&opened, Duration::from_secs(20));
    assert!(
        url.starts_with(&format!("{}/authorize?", fake.base)),
        "{url}"
    );
    assert_eq!(
        support::query_param(&url, "redirect_uri"),
        Some(fake.redirect_uri.clone())
    );
    let state = support::query_param(&url, "state").expect("the local flow sends a state");
    assert!(state.len() >= 22);

    // Stray requests get answers and change nothing.
    let callback = fake.redirect_uri.clone();
    let base = callback.trim_end_matches("/callback/");
    assert_eq!(support::http_get(&format!("{base}/favicon.ico")).0, 404);
    assert_eq!(
        support::http_get(&format!("{callback}?code=forged&state=wrong")).0,
        400
    );
    assert_eq!(support::http_get(&format!("{callback}?code=forged")).0, 400);
    assert_eq!(support::http_get(&callback).0, 400);
    assert_eq!(
        support::http_request("POST", &format!("{callback}?code=forged&state={state}")).0,
        405
    );

    // The browser signs in and is sent back.
    let back = fake.authorize(&url);
    assert!(
        back.starts_with(&callback) && back.contains(&format!("state={state}")),
        "{back}"
    );
    let (status, headers, body) = support::http_get(&back);
    assert_eq!(status, 302);
    // Environment variables move CARTO's endpoints, not its pages.
    assert_eq!(
        support::header(&headers, "location").as_deref(),
        Some("https://app.carto.com/auth/success")
    );
    assert!(!body.contains("code="), "the page must not echo the code");

    let (result, _) = child.result(Duration::from_secs(20));
    let cache = home.path().join(".carto-auth").join("token_oauth.json");
    assert_eq!(
        result,
        format!("ok {} {}", fake.api_base_url(), cache.display())
    );
    let token_requests = fake.requests("/oauth/token");
    assert_eq!(
        token_requests.len(),
        1,
        "the forged code must never be exchanged"
    );
    assert_eq!(
        token_requests[0].form_value("redirect_uri"),
        Some(fake.redirect_uri.as_str())
    );
    assert_ne!(token_requests[0].form_value("code"), Some("forged"));
    #[cfg(unix)]
    {
        assert_eq!(support::file_mode(&cache), 0o600);
        assert_eq!(support::file_mode(cache.parent().unwrap()), 0o700);
    }
}

#[test]
fn an_error_on_the_callback_fails_the_login_and_shows_the_error_page() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let (_home, mut child, opened) = test.local_flow(&fake, "login", &[]);
    let url = support::wait_for_file(&opened, Duration::from_secs(20));
    let state = support::query_param(&url, "state").unwrap();
    let (status, headers, _) = support::http_get(&format!(
        "{}?error=access_denied&error_description=User+cancelled&state={state}",
        fake.redirect_uri
    ));
    assert_eq!(status, 302);
    assert_eq!(
        support::header(&headers, "location").as_deref(),
        Some("https://app.carto.com/auth/error")
    );
    let (result, _) = child.result(Duration::from_secs(20));
    assert!(
        result.starts_with("err CARTO did not authorize the login: access_denied (User cancelled)"),
        "{result}"
    );
}

#[test]
fn the_local_flow_gives_up_after_its_timeout() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let timeout = [("CARTO_TEST_LOGIN_TIMEOUT_MS".into(), "700".into())];
    let (_home, mut child, _) = test.local_flow(&fake, "login", &timeout);
    let (result, _) = child.result(Duration::from_secs(20));
    assert!(
        result.starts_with(&format!(
            "err no browser came back to {} within 0 s",
            fake.redirect_uri
        )),
        "{result}"
    );
    assert!(result.contains(".open_browser(false)"), "{result}");
}

/// The local flow with the largest login and request timeouts: no deadline,
/// and the browser's return completes it.
#[test]
fn the_local_flow_takes_the_largest_timeouts() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let max = [("CARTO_TEST_LOGIN_TIMEOUT_MS".into(), "max".into())];
    let (_home, mut child, opened) = test.local_flow(&fake, "login", &max);
    let url = support::wait_for_file(&opened, Duration::from_secs(20));
    let (status, _, _) = support::http_get(&fake.authorize(&url));
    assert_eq!(status, 302);
    let (result, stderr) = child.result(Duration::from_secs(20));
    assert!(
        result.starts_with(&format!("ok {}", fake.api_base_url())),
        "{result} {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_taken_port_falls_back_to_pasting_through_stdin() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let port: u16 = url::Url::parse(&fake.redirect_uri).unwrap().port().unwrap();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (_home, mut child, opened) = test.local_flow(&fake, "login", &[]);
    child.wait_line(Duration::from_secs(20), |l| {
        l.contains(&format!("port {port} cannot be used")) && l.contains("paste")
    });
    let url = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/authorize?", fake.base))
    });
    assert!(
        url.contains(&format!(
            "redirect_uri={}",
            url_encode(&format!("{}/auth/token", fake.base))
        )),
        "{url}"
    );
    assert!(!opened.exists(), "no browser is opened for the paste flow");
    let landed = fake.authorize(&url);
    child.write_line(&landed);
    let (result, _) = child.result(Duration::from_secs(20));
    assert!(
        result.starts_with(&format!("ok {}", fake.api_base_url())),
        "{result}"
    );
}

#[test]
fn no_browser_to_open_falls_back_to_paste() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let mut env = support::local_flow_env(&fake, home.path(), Path::new("/nonexistent/browser"));
    // Nothing to open a browser with: not $BROWSER, not xdg-open.
    env.push(("PATH".into(), home.path().display().to_string()));
    let mut child = test.session("login", home.path(), &env);
    child.wait_line(Duration::from_secs(20), |l| {
        l.contains("no browser could be opened")
    });
    let url = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/authorize?", fake.base))
    });
    child.write_line(&fake.authorize(&url));
    let (result, _) = child.result(Duration::from_secs(20));
    assert!(result.starts_with("ok "), "{result}");
}

#[test]
fn a_remote_session_uses_paste_and_eof_on_stdin_is_a_clear_error() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let (browser, opened) = support::recording_browser(home.path());
    let mut env = fake.env();
    env.push(("BROWSER".into(), browser.display().to_string()));
    env.push(("JUPYTERHUB_USER".into(), "ana".into()));
    let mut child = test.session("login", home.path(), &env);
    child.wait_line(Duration::from_secs(20), |l| {
        l.contains("No browser can be opened here (JupyterHub)")
    });
    child.close_stdin();
    let (result, _) = child.result(Duration::from_secs(20));
    assert!(
        result.starts_with(
            "err no answer can be read here to finish signing in. Standard input is closed"
        ),
        "{result}"
    );
    assert!(!opened.exists());
    assert!(
        !home
            .path()
            .join(".carto-auth")
            .join("token_oauth.json")
            .exists()
    );
}

/// The one-line login in a terminal asks again after a slip: an empty line
/// and a code copied short are each explained in one line, and the third
/// answer, the right one, signs in with the same verifier.
#[test]
fn the_one_line_login_asks_again_after_a_slip() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let env = support::paste_flow_env(&fake);
    let mut child = test.session("login", home.path(), &env);
    let url = child.wait_line(Duration::from_secs(20), |l| {
        l.starts_with(&format!("{}/authorize?", fake.base))
    });
    let landed = fake.authorize(&url);
    child.write_line("");
    child.wait_line(Duration::from_secs(20), |l| {
        l.contains("Nothing was pasted. Paste again (attempt 2 of 3).")
    });
    child.write_line(&landed[..landed.len() - 4]);
    let refused = child.wait_line(Duration::from_secs(20), |l| l.contains("That did not work"));
    assert!(
        refused.contains("HTTP 403 (invalid_grant")
            && refused.ends_with("Paste again (attempt 3 of 3)."),
        "{refused}"
    );
    child.write_line(&landed);
    let (result, stderr) = child.result(Duration::from_secs(20));
    assert!(
        result.starts_with(&format!("ok {}", fake.api_base_url())),
        "{result}\n{stderr}"
    );
    let verifiers: Vec<String> = fake
        .requests("/oauth/token")
        .iter()
        .map(|r| r.form_value("code_verifier").unwrap().to_string())
        .collect();
    assert_eq!(verifiers.len(), 2, "the empty line is not sent");
    assert_eq!(verifiers[0], verifiers[1]);
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn a_browser_script_that_follows_the_redirect_completes_the_login() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    // A browser in a few lines of shell: sign-in (CARTO's redirect), then
    // into the callback server, whose answer redirects on to CARTO's success
    // page (not followed: this machine has no network).
    let script = home.path().join("curl-browser.sh");
    let visited = home.path().join("visited");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nback=$(curl -s -o /dev/null -w '%{{redirect_url}}' \"$1\")\n\
             curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' \"$back\" > '{}'\n",
            visited.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut child = test.session(
        "login",
        home.path(),
        &support::local_flow_env(&fake, home.path(), &script),
    );
    let (result, _) = child.result(Duration::from_secs(30));
    assert!(
        result.starts_with(&format!("ok {}", fake.api_base_url())),
        "{result}"
    );
    assert_eq!(
        std::fs::read_to_string(&visited).unwrap(),
        "302 https://app.carto.com/auth/success"
    );
    assert_eq!(fake.requests("/oauth/token").len(), 1);
}
