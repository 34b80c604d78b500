//! The same bytes on the wire: the crate's requests compared with the ones
//! of CARTO's own Python package `carto-auth` 0.2.0 (the same fake CARTO
//! records both), and sent to a real OAuth server implementation,
//! oauthlib's, set up as CARTO's Auth0 tenant (`tests/peer/oauth_server.py`).
//!
//! 1. Against the Python package: the M2M token request byte for byte (with
//!    CARTO-like credentials and with every printable ASCII character and
//!    some beyond in them); the paste-flow login request by request
//!    (authorize, code exchange, accounts, config.yaml), each with its
//!    method, Content-Type, keys in order, and values (those made fresh for
//!    each login aside).
//! 2. Against oauthlib: an M2M login, a paste-flow login and a device login,
//!    each accepted by oauthlib's own validation, with a refused variant
//!    beside each to show that the acceptance means something.

mod support;

use std::sync::{Arc, Mutex};

use carto_auth::{CartoAuth, Error, LoginInstructions, Prompt};
use serde_json::{Value, json};
use support::peers::{OauthServer, awkward_m2m, carto_auth_peer};
use support::{FakeCarto, M2M_ID, M2M_SECRET, Recorded};

/// What `f` made the crate send to the fake.
fn sent_during<T>(fake: &FakeCarto, f: impl FnOnce() -> T) -> (T, Vec<Recorded>) {
    let before = fake.all_requests().len();
    let out = f();
    (out, fake.all_requests()[before..].to_vec())
}

/// What the Python package sent to the fake in one run of the harness, and
/// its JSON answer (which must say it worked).
fn python_sent(fake: &FakeCarto, home: &std::path::Path, args: Value) -> (Value, Vec<Recorded>) {
    let (run, sent) = sent_during(fake, || carto_auth_peer(&fake.base, home, "UTC", &args));
    assert!(
        run.success && run.out["ok"] == true,
        "the Python package failed with {args}:\n{:#}\n{}",
        run.out,
        run.stderr
    );
    assert_eq!(run.out["version"], "0.2.0");
    (run.out, sent)
}

fn paths(requests: &[Recorded]) -> Vec<&str> {
    requests.iter().map(|r| r.path.as_str()).collect()
}

fn keys(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(k, _)| k.as_str()).collect()
}

fn header_names(r: &Recorded) -> Vec<&str> {
    r.headers.iter().map(|(k, _)| k.as_str()).collect()
}

/// A credentials file as CARTO's console writes it, any characters allowed.
fn credentials(dir: &std::path::Path, api: &str, id: &str, secret: &str) -> std::path::PathBuf {
    let path = dir.join(format!("credentials-{}.json", support::random_word()));
    let json = json!({"api_base_url": api, "client_id": id, "client_secret": secret});
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// The pairs of two forms (or queries) in order: the same keys, and the
/// same values except under `fresh` (made anew for each login), which must
/// be present and differ.
fn assert_same_pairs(
    what: &str,
    python: &[(String, String)],
    rust: &[(String, String)],
    fresh: &[&str],
) {
    assert_eq!(
        keys(rust),
        keys(python),
        "{what}: the keys or their order differ"
    );
    for ((key, p), (_, r)) in python.iter().zip(rust) {
        if fresh.contains(&key.as_str()) {
            assert!(
                !p.is_empty() && !r.is_empty() && p != r,
                "{what}: {key}: {p:?} / {r:?}"
            );
        } else {
            assert_eq!(r, p, "{what}: the value of {key} differs");
        }
    }
}

// ---- 1. the Python package and the crate, against the same fake ----

/// The client-credentials request, byte for byte: same credentials, same
/// body. The second application's id and secret hold every printable ASCII
/// character and some beyond, where two form encoders can part ways: the
/// WHATWG serializer of `url` (the crate's until this test) writes `~` as
/// `%7E` and leaves `*` alone, Python's `urlencode`, which requests uses,
/// does the reverse.
#[test]
fn the_m2m_token_request_is_the_python_packages_byte_for_byte() {
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let (awkward_id, awkward_secret) = awkward_m2m();
    let apps = [
        (M2M_ID, M2M_SECRET),
        (awkward_id.as_str(), awkward_secret.as_str()),
    ];
    for (n, (id, secret)) in apps.into_iter().enumerate() {
        fake.add_m2m_app(id, secret);
        let creds = credentials(home.path(), &fake.api_base_url(), id, secret);
        let cache = home.path().join(format!("token_m2m_{n}.json"));
        let args = json!({"mode": "m2m", "creds": creds, "cache": cache});
        let (py, python) = python_sent(&fake, home.path(), args);
        let (auth, rust) = sent_during(&fake, || {
            CartoAuth::m2m(&creds)
                .use_cache(false)
                .endpoints(fake.endpoints())
                .login()
        });
        let auth = auth.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(fake.accepts(py["token"].as_str().unwrap()));
        assert!(fake.accepts(&auth.get_access_token().unwrap()));

        // One request each, and no discovery: the file names the API.
        assert_eq!(paths(&python), ["/oauth/token"]);
        assert_eq!(paths(&rust), ["/oauth/token"]);
        let (p, r) = (&python[0], &rust[0]);
        assert_eq!((r.method.as_str(), p.method.as_str()), ("POST", "POST"));
        assert_eq!(r.query, p.query);
        assert_eq!(p.content_type(), Some("application/x-www-form-urlencoded"));
        assert_eq!(r.content_type(), p.content_type(), "{id}");
        assert_eq!(r.body, p.body, "{id}: the bodies differ");
        assert_eq!(
            keys(&r.form),
            ["grant_type", "audience", "client_id", "client_secret"]
        );
        assert_eq!(r.form_value("client_secret"), Some(secret));
        eprintln!(
            "headers: Python {:?}\n         Rust   {:?}",
            header_names(p),
            header_names(r)
        );
    }
}

/// The paste-flow login, request by request: the browser's visit to the
/// authorize URL, the code exchange, and the discovery of the API base URL
/// (accounts with the new token, then the tenant's config.yaml). Both use
/// the fake's paste redirect URI (the harness moves the package's
/// `REDIRECT_URI_CLI` there, as `Endpoints` does for the crate), so
/// `redirect_uri` is compared like any other value; only the PKCE values
/// and the code are each login's own.
#[test]
fn the_paste_login_sends_what_the_python_package_sends() {
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("token_oauth.json");
    let args = json!({"mode": "oauth", "cache": cache});
    let (py, python) = python_sent(&fake, home.path(), args);
    let (auth, rust) = sent_during(&fake, || {
        let login = CartoAuth::oauth()
            .open_browser(false)
            .use_cache(false)
            .endpoints(fake.endpoints())
            .begin()
            .unwrap();
        let landed = fake.authorize(login.authorize_url());
        login.complete(&landed).unwrap()
    });
    let conversation = ["/authorize", "/oauth/token", "/accounts", "/config.yaml"];
    assert_eq!(paths(&python), conversation);
    assert_eq!(paths(&rust), conversation);
    assert_eq!(auth.get_api_base_url(), py["api_base_url"].as_str());
    for (p, r) in python.iter().zip(&rust) {
        assert_eq!(r.method, p.method, "{}", p.path);
    }

    // The authorize URL (what the browser sent on).
    let (p, r) = (&python[0], &rust[0]);
    assert_same_pairs("authorize", &p.query, &r.query, &["code_challenge"]);

    // The code exchange.
    let (p, r) = (&python[1], &rust[1]);
    assert_eq!(p.content_type(), Some("application/x-www-form-urlencoded"));
    assert_eq!(r.content_type(), p.content_type());
    assert!(p.query.is_empty() && r.query.is_empty());
    assert_same_pairs("token", &p.form, &r.form, &["code", "code_verifier"]);
    // And the bytes, each login's code and verifier (URL-safe words, the
    // same encoded or not) put in the other's place.
    let fresh = |r: &Recorded, key| r.form_value(key).unwrap().to_string();
    let swapped = ["code_verifier", "code"]
        .iter()
        .fold(p.body.clone(), |body, key| {
            body.replace(
                &format!("{key}={}", fresh(p, key)),
                &format!("{key}={}", fresh(r, key)),
            )
        });
    assert_eq!(r.body, swapped, "the code exchange's bytes differ");
    assert_eq!(keys(&r.form), support::CODE_EXCHANGE_FORM);
    assert_eq!(
        r.form_value("redirect_uri"),
        Some(fake.endpoints().paste_redirect_uri.as_str())
    );

    // Accounts, with each side's own new token.
    let (p, r) = (&python[2], &rust[2]);
    let py_token = py["token"].as_str().unwrap();
    assert_eq!(
        p.authorization.as_deref(),
        Some(format!("Bearer {py_token}").as_str())
    );
    let token = auth.get_access_token().unwrap();
    assert_eq!(
        r.authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(p.query.is_empty() && r.query.is_empty() && p.body.is_empty() && r.body.is_empty());
    // The one difference: the package sends `Content-Type:
    // application/json` on this GET, which has no body (its `api_headers()`
    // serves the Data Warehouse request too); the crate sends none. A
    // Content-Type without content describes nothing (RFC 9110, 8.3).
    assert_eq!(p.content_type(), Some("application/json"));
    assert_eq!(r.content_type(), None);

    // config.yaml: no token, no body, no Content-Type, on either side.
    let (p, r) = (&python[3], &rust[3]);
    assert_eq!(
        (p.authorization.as_deref(), r.authorization.as_deref()),
        (None, None)
    );
    assert_eq!((p.content_type(), r.content_type()), (None, None));
    assert_eq!((p.query.is_empty(), r.query.is_empty()), (true, true));
    for (p, r) in python.iter().zip(&rust).skip(1) {
        eprintln!(
            "{} headers: Python {:?}\n{:w$} Rust   {:?}",
            p.path,
            header_names(p),
            "",
            header_names(r),
            w = p.path.len() + 9
        );
    }
}

// ---- 2. the crate against oauthlib's server ----

/// The client-credentials grant as oauthlib validates it: the crate's M2M
/// login gets a token, and the server says which grant it validated for
/// which client; so does the awkward application, whose id and secret
/// oauthlib decodes from the crate's form. A wrong secret is refused
/// (`invalid_client`), so the acceptance is oauthlib's judgement, not a
/// server saying yes.
#[test]
fn oauthlib_accepts_the_m2m_token_request() {
    let mut server = OauthServer::start();
    assert_eq!(server.oauthlib_version, "4.0.1");
    let home = tempfile::tempdir().unwrap();
    let api = format!("{}/api", server.base);
    let endpoints = server.endpoints();
    let login = |id: &str, secret: &str| {
        CartoAuth::m2m(credentials(home.path(), &api, id, secret))
            .use_cache(false)
            .endpoints(endpoints.clone())
            .login()
    };

    let (awkward_id, awkward_secret) = awkward_m2m();
    for (id, secret) in [
        (M2M_ID, M2M_SECRET),
        (awkward_id.as_str(), awkward_secret.as_str()),
    ] {
        let auth = login(id, secret).unwrap_or_else(|e| panic!("{id}: {e}"));
        let entry = server.accepted("token");
        assert_eq!(entry["grant_type"], "client_credentials");
        assert_eq!(entry["client_id"], id);
        assert_eq!(entry["content_type"], "application/x-www-form-urlencoded");
        assert_eq!(
            entry["access_token"],
            auth.get_access_token().unwrap().as_str()
        );
        assert_eq!(auth.get_api_base_url(), Some(api.as_str()));
    }

    let err = login(M2M_ID, "not-the-secret").unwrap_err();
    let entry = server.next_entry("token");
    assert_eq!(
        (&entry["valid"], &entry["error"]),
        (&json!(false), &json!("invalid_client"))
    );
    assert!(
        matches!(&err, Error::Status { status: 401, error: Some(e), .. } if e == "invalid_client"),
        "{err:?}"
    );
}

/// The paste flow as oauthlib validates it: its authorization endpoint
/// takes the crate's authorize URL (client, registered redirect URI,
/// response type, PKCE S256, audience, `scope=None`) and answers with a
/// code; its token endpoint takes the exchange (the code, the redirect URI
/// it was issued for, the verifier of its challenge); its bearer validation
/// takes the new token at the accounts service. Completing one login with
/// the code of another (whose challenge is not this verifier's) is refused
/// (`invalid_grant`), and the right code then completes it.
#[test]
fn oauthlib_accepts_the_paste_login() {
    let mut server = OauthServer::start();
    let endpoints = server.endpoints();
    let begin = || {
        CartoAuth::oauth()
            .open_browser(false)
            .use_cache(false)
            .endpoints(endpoints.clone())
            .begin()
            .unwrap()
    };
    let browse = |url: &str| {
        let (status, headers, body) = support::http_get(url);
        assert_eq!(status, 302, "oauthlib refused the authorize URL: {body}");
        support::header(&headers, "location").unwrap()
    };
    let (login, other) = (begin(), begin());
    let landed = browse(login.authorize_url());
    let entry = server.next_entry("authorize");
    assert_eq!(entry["valid"], true, "{entry:#}");
    assert_eq!(entry["code_challenge_method"], "S256");
    assert_eq!(entry["redirect_uri"], "https://app.carto.com/auth/token");
    assert_eq!(entry["scopes"], json!(["None"]));
    assert!(
        landed.starts_with("https://app.carto.com/auth/token?code="),
        "{landed}"
    );

    let wrong = browse(other.authorize_url());
    let err = login.complete(&wrong).unwrap_err();
    let entry = server.next_entry("token");
    assert_eq!(
        (&entry["valid"], &entry["error"]),
        (&json!(false), &json!("invalid_grant")),
        "{err}"
    );
    assert!(login.is_pending());

    let auth = login.complete(&landed).unwrap();
    let entry = server.accepted("token");
    assert_eq!(entry["grant_type"], "authorization_code");
    assert_eq!(entry["client_id"], support::CLIENT_ID);
    let token = auth.get_access_token().unwrap();
    assert_eq!(entry["access_token"], token.as_str());
    let accounts = server.next_entry("accounts");
    assert_eq!(accounts["valid"], true, "{accounts:#}");
    assert_eq!(accounts["client_id"], support::CLIENT_ID);
    assert_eq!(
        auth.get_api_base_url(),
        Some(format!("{}/api", server.base).as_str())
    );
}

/// Shows nothing and is never asked: the device flow needs neither.
#[derive(Clone, Default)]
struct Phone(Arc<Mutex<Vec<LoginInstructions>>>);

impl Prompt for Phone {
    fn show_login(&self, login: &LoginInstructions) {
        self.0.lock().unwrap().push(login.clone());
    }
    fn ask_code(&self, _: &str) -> std::io::Result<String> {
        Err(std::io::Error::other("the device flow asked for a code"))
    }
    fn notice(&self, _: &str) {}
}

/// The device grant (RFC 8628) as oauthlib 4 validates it: the device
/// authorization request, polls answered `authorization_pending` until the
/// user approves, then the token.
#[test]
fn oauthlib_accepts_the_device_login() {
    let mut server = OauthServer::start();
    let phone = Phone::default();
    let builder = CartoAuth::oauth()
        .device_flow(true)
        .open_browser(false)
        .use_cache(false)
        .endpoints(server.endpoints())
        .prompt(phone.clone());
    let login = std::thread::spawn(move || builder.login());

    let entry = server.accepted("device_code");
    assert_eq!(entry["keys"], json!(["client_id", "audience"]));
    let user_code = entry["user_code"].as_str().unwrap().to_string();
    let pending = server.next_entry("token");
    assert_eq!(pending["error"], "authorization_pending", "{pending:#}");
    assert_eq!(
        pending["keys"],
        json!(["grant_type", "device_code", "client_id"])
    );
    assert_eq!(
        pending["grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );

    let (status, _, _) =
        support::http_get(&format!("{}/activate?user_code={user_code}", server.base));
    assert_eq!(status, 200);
    let auth = login.join().unwrap().unwrap();
    let token = auth.get_access_token().unwrap();
    let entry = loop {
        let entry = server.next_entry("token");
        if entry["error"] != "authorization_pending" {
            break entry;
        }
    };
    assert_eq!(entry["valid"], true, "oauthlib refused: {entry:#}");
    assert_eq!(entry["access_token"], token.as_str());
    assert_eq!(server.next_entry("accounts")["valid"], true);
    assert_eq!(
        phone.0.lock().unwrap()[0].user_code.as_deref(),
        Some(user_code.as_str())
    );
}
