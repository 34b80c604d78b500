//! Every CARTO endpoint the crate calls (token, for both grants; accounts;
//! the tenant's config.yaml; the CARTO Data Warehouse token) answering
//! badly in every way the issue lists: each gives a typed error naming the
//! service, the status and what to check (the hint of the grant that
//! failed), nothing panics, the cache file is left byte for byte as it was,
//! and the next good attempt works: for a refused code exchange, on the same
//! pending login. A discovery failure after a good exchange keeps the
//! token: the session's API base URL is unknown, and the error that says
//! so carries what went wrong. Then a cache directory that cannot be
//! written, or whose mode cannot be changed: the login works, with one
//! warning.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use carto_auth::{
    CartoAuth, Endpoints, Error, Grant, LoginInstructions, PendingLogin, Prompt, Service,
};
use support::{ChildSession, FakeCarto, Fault, child_scenario, closed_port_url};

/// Short, so that "slower than the timeout" costs half a second.
const TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    TokenM2m,
    TokenOAuth,
    Accounts,
    Config,
    Dw,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Http500,
    Http401,
    Http403,
    Html,
    MissingFields,
    Empty,
    Refused,
    Slow,
}

const KINDS: [Kind; 8] = [
    Kind::Http500,
    Kind::Http401,
    Kind::Http403,
    Kind::Html,
    Kind::MissingFields,
    Kind::Empty,
    Kind::Refused,
    Kind::Slow,
];

impl Target {
    fn path(self) -> &'static str {
        match self {
            Target::TokenM2m | Target::TokenOAuth => "/oauth/token",
            Target::Accounts => "/accounts",
            Target::Config => "/config.yaml",
            Target::Dw => "/api/v3/connections/carto-dw/token",
        }
    }

    fn service(self) -> Service {
        match self {
            Target::TokenM2m => Service::Token(Grant::ClientCredentials),
            Target::TokenOAuth => Service::Token(Grant::AuthorizationCode),
            Target::Accounts => Service::Accounts,
            Target::Config => Service::TenantConfig,
            Target::Dw => Service::CartoDw,
        }
    }

    /// A 2xx answer without what the protocol requires, and the field an
    /// error must name.
    fn missing_fields(self) -> (&'static str, &'static str) {
        match self {
            Target::TokenM2m | Target::TokenOAuth => (
                r#"{"token_type":"Bearer","expires_in":3600}"#,
                "access_token",
            ),
            Target::Accounts => (r#"{"id":"ac_1"}"#, "tenant_domain"),
            // JSON is YAML: a document with apis but no baseUrl.
            Target::Config => (
                r#"{"version": 1, "apis": {"otherUrl": "x"}}"#,
                "apis.baseUrl",
            ),
            Target::Dw => (r#"{"projectId":"p"}"#, "projectId and token"),
        }
    }

    /// What the error must tell the user to check, by kind of error.
    fn remedy(self, network: bool) -> &'static str {
        if network {
            return "Check the network connection";
        }
        match self {
            Target::TokenM2m => "check client_id and client_secret",
            Target::TokenOAuth => "sign in again",
            Target::Accounts | Target::Config => ".api_base_url(..)",
            Target::Dw => "API base URL",
        }
    }
}

fn fault(target: Target, kind: Kind) -> Option<Fault> {
    Some(match kind {
        Kind::Http500 => Fault::Status(500, "Internal Server Error".into()),
        Kind::Http401 => Fault::Status(
            401,
            r#"{"error":"access_denied","error_description":"Unauthorized"}"#.into(),
        ),
        Kind::Http403 => Fault::Status(
            403,
            r#"{"error":"forbidden","error_description":"Insufficient permissions"}"#.into(),
        ),
        Kind::Html => Fault::Html,
        Kind::MissingFields => Fault::Json(target.missing_fields().0.into()),
        Kind::Empty => Fault::Empty,
        Kind::Slow => Fault::Slow(Duration::from_secs(3)),
        Kind::Refused => return None,
    })
}

/// Checks the error's variant and message; returns the message.
fn check_error(target: Target, kind: Kind, err: &Error) -> String {
    let msg = err.to_string();
    let service = target.service();
    let ctx = format!("{target:?} {kind:?}: {msg}\n{err:?}");
    match (kind, err) {
        (
            Kind::Http500 | Kind::Http401 | Kind::Http403,
            Error::Status {
                service: s, status, ..
            },
        ) => {
            assert_eq!(*s, service, "{ctx}");
            let want = match kind {
                Kind::Http500 => 500,
                Kind::Http401 => 401,
                _ => 403,
            };
            assert_eq!(*status, want, "{ctx}");
        }
        (
            Kind::Html | Kind::MissingFields | Kind::Empty,
            Error::InvalidResponse { service: s, .. },
        ) => assert_eq!(*s, service, "{ctx}"),
        (Kind::Refused | Kind::Slow, Error::Network { service: s, .. }) => {
            assert_eq!(*s, service, "{ctx}")
        }
        _ => panic!("unexpected variant for {ctx}"),
    }
    check_message(target, kind, &msg);
    if target == Target::TokenOAuth {
        assert!(!msg.contains("credentials file"), "{ctx}");
    }
    if target == Target::TokenM2m {
        assert!(!msg.contains("sign in again"), "{ctx}");
    }
    msg
}

/// Checks what the message of a failure names: the service, the status or
/// the network problem, and what to do.
fn check_message(target: Target, kind: Kind, msg: &str) {
    let service = target.service();
    let network = matches!(kind, Kind::Refused | Kind::Slow);
    let ctx = format!("{target:?} {kind:?}: {msg}");
    let names = [
        format!("the {service} at "),
        match kind {
            Kind::Http500 => "HTTP 500".into(),
            Kind::Http401 => "HTTP 401 (access_denied: Unauthorized)".into(),
            Kind::Http403 => "HTTP 403 (forbidden: Insufficient permissions)".into(),
            Kind::Html => "HTTP 200 and HTML".into(),
            Kind::Empty => "HTTP 200 and an empty body".into(),
            Kind::MissingFields => target.missing_fields().1.into(),
            Kind::Refused => "Connection refused".into(),
            Kind::Slow => "no answer within 0.5 s".into(),
        },
        target.remedy(network).into(),
    ];
    let names = if network {
        [
            format!("could not reach the {service} at "),
            names[1].clone(),
            names[2].clone(),
        ]
    } else {
        names
    };
    for want in &names {
        assert!(msg.contains(want.as_str()), "missing {want:?} in {ctx}");
    }
}

/// A prompt that says nothing: the two-step login needs none.
struct Quiet;

impl Prompt for Quiet {
    fn show_login(&self, _: &LoginInstructions) {}
    fn ask_code(&self, _: &str) -> std::io::Result<String> {
        Ok(String::new())
    }
    fn notice(&self, _: &str) {}
}

/// A browser login through the two-step API: begin, sign in at the fake,
/// complete with the address CARTO sent the browser to.
fn oauth_login(fake: &FakeCarto, endpoints: Endpoints, cache: &Path) -> Result<CartoAuth, Error> {
    let login = begin(endpoints.clone(), cache);
    sign_in_and_complete(fake, &endpoints, &login)
}

fn begin(endpoints: Endpoints, cache: &Path) -> PendingLogin {
    CartoAuth::oauth()
        .open_browser(false)
        .endpoints(endpoints)
        .cache_filepath(cache)
        .timeout(TIMEOUT)
        .prompt(Quiet)
        .begin()
        .unwrap()
}

fn sign_in_and_complete(
    fake: &FakeCarto,
    endpoints: &Endpoints,
    login: &PendingLogin,
) -> Result<CartoAuth, Error> {
    // When the token endpoint is moved to a closed port, so is /authorize:
    // the browser still signs in at the fake.
    let at_fake = login
        .authorize_url()
        .replacen(&endpoints.auth_url, &fake.base, 1);
    let landed = fake.authorize(&at_fake);
    login.complete(&landed)
}

fn m2m_login(endpoints: Endpoints, creds: &Path, cache: &Path) -> Result<CartoAuth, Error> {
    CartoAuth::m2m(creds)
        .cache_filepath(cache)
        .endpoints(endpoints)
        .timeout(TIMEOUT)
        .login()
}

fn write_creds(path: PathBuf, api_base_url: &str) -> PathBuf {
    std::fs::write(
        &path,
        format!(
            r#"{{"api_base_url": "{api_base_url}", "client_id": "{}", "client_secret": "{}"}}"#,
            support::M2M_ID,
            support::M2M_SECRET
        ),
    )
    .unwrap();
    path
}

/// Names in the cache's directory but the lock file (made on first use, by
/// design), to see that no temporary file is left.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

/// One endpoint, one kind of fault: the failing attempt, then a good one.
fn run(target: Target, kind: Kind) {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token.json");
    let good_creds = write_creds(dir.path().join("creds.json"), &fake.api_base_url());
    let mut endpoints = fake.endpoints();
    let closed = closed_port_url();
    let mut creds = good_creds.clone();

    // An expired cache (it makes M2M ask the token endpoint), or for the DW
    // a good session's cache.
    let dw_session = if target == Target::Dw {
        if kind == Kind::Refused {
            creds = write_creds(
                dir.path().join("creds-closed.json"),
                &format!("{closed}/api"),
            );
        }
        Some(m2m_login(fake.endpoints(), &creds, &cache).unwrap())
    } else {
        std::fs::write(
            &cache,
            format!(
                r#"{{"api_base_url": "{}", "access_token": "expired-token", "expiration": 1000}}"#,
                fake.api_base_url()
            ),
        )
        .unwrap();
        None
    };
    let before = std::fs::read(&cache).unwrap();
    let files_before = listing(dir.path());

    match (kind, target) {
        (Kind::Refused, Target::TokenM2m | Target::TokenOAuth) => {
            endpoints.auth_url = closed.clone()
        }
        (Kind::Refused, Target::Accounts) => endpoints.accounts_url = closed.clone(),
        (Kind::Refused, Target::Config) => {
            let domain = closed.trim_start_matches("http://").to_string();
            fake.fault(
                "/accounts",
                Fault::Json(format!(r#"{{"id":"ac_1","tenant_domain":"{domain}"}}"#)),
            );
        }
        (Kind::Refused, Target::Dw) => {}
        _ => fake.fault(target.path(), fault(target, kind).unwrap()),
    }

    // One pending login for the code exchange: after a refused exchange it
    // must still be completable.
    let login = (target == Target::TokenOAuth).then(|| begin(endpoints.clone(), &cache));
    let attempt = catch_unwind(AssertUnwindSafe(|| match target {
        Target::TokenM2m => m2m_login(endpoints.clone(), &creds, &cache).map(|_| None),
        Target::TokenOAuth => {
            sign_in_and_complete(&fake, &endpoints, login.as_ref().unwrap()).map(|_| None)
        }
        Target::Accounts | Target::Config => {
            oauth_login(&fake, endpoints.clone(), &cache).map(Some)
        }
        Target::Dw => dw_session
            .as_ref()
            .unwrap()
            .get_carto_dw_credentials()
            .map(|_| None),
    }));
    match attempt {
        Err(_) => panic!("{target:?} {kind:?}: the crate panicked"),
        Ok(Ok(Some(auth))) => {
            // Discovery failed after a good exchange: the token is kept,
            // the URL is unknown, and the error that says so says why.
            assert_eq!(auth.get_api_base_url(), None, "{target:?} {kind:?}");
            assert!(fake.accepts(&auth.get_access_token().unwrap()));
            let err = auth.get_carto_dw_credentials().unwrap_err();
            assert!(
                matches!(err, Error::NoApiBaseUrl { why: Some(_) }),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(".api_base_url(\"https://"), "{msg}");
            if (target, kind) == (Target::Accounts, Kind::MissingFields) {
                // No tenant_domain: as the Python package, no URL and no
                // error, so no retry either.
                assert!(msg.contains("names no tenant"), "{msg}");
                assert_eq!(fake.requests(target.path()).len(), 1);
            } else {
                check_message(target, kind, &msg);
                if kind != Kind::Refused {
                    assert_eq!(
                        fake.requests(target.path()).len(),
                        2,
                        "{target:?} {kind:?}: one retry"
                    );
                }
            }
            // The token is cached without an API base URL: a plain login
            // does not take it, one given the URL does.
            let cached = support::read_json(&cache);
            assert!(cached["api_base_url"].is_null(), "{cached}");
            let reuse = CartoAuth::oauth()
                .endpoints(fake.endpoints())
                .cache_filepath(&cache)
                .api_base_url(fake.api_base_url())
                .prompt(Quiet)
                .login()
                .unwrap();
            assert_eq!(
                reuse.get_access_token().unwrap(),
                auth.get_access_token().unwrap()
            );
            std::fs::write(&cache, &before).unwrap();
        }
        Ok(Ok(None)) => panic!("{target:?} {kind:?}: the faulty attempt succeeded"),
        Ok(Err(err)) => {
            assert!(
                !matches!(target, Target::Accounts | Target::Config),
                "{target:?} {kind:?}: discovery failures keep the sign-in, yet: {err}"
            );
            check_error(target, kind, &err);
            if kind != Kind::Refused {
                assert!(
                    !fake.requests(target.path()).is_empty(),
                    "{target:?} {kind:?}: the faulty endpoint was not called"
                );
            }
        }
    }
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        before,
        "{target:?} {kind:?}: the cache file changed"
    );
    assert_eq!(
        listing(dir.path()),
        files_before,
        "{target:?} {kind:?}: files appeared or vanished"
    );

    // The next good attempt works, and only then is the cache written.
    fake.clear_faults();
    match target {
        Target::TokenM2m => {
            let auth = m2m_login(fake.endpoints(), &good_creds, &cache).unwrap();
            assert_eq!(
                read_token(&cache),
                auth.get_access_token().unwrap(),
                "{target:?} {kind:?}"
            );
        }
        Target::TokenOAuth | Target::Accounts | Target::Config => {
            // The same pending login, where it was not pointed at a closed
            // port: the verifier survived the refused exchange.
            let auth = match login.as_ref().filter(|_| kind != Kind::Refused) {
                Some(login) => sign_in_and_complete(&fake, &fake.endpoints(), login).unwrap(),
                None => oauth_login(&fake, fake.endpoints(), &cache).unwrap(),
            };
            assert_eq!(auth.get_api_base_url(), Some(fake.api_base_url().as_str()));
            assert_eq!(
                read_token(&cache),
                auth.get_access_token().unwrap(),
                "{target:?} {kind:?}"
            );
        }
        Target::Dw => {
            let session = if kind == Kind::Refused {
                m2m_login(
                    fake.endpoints(),
                    &good_creds,
                    &dir.path().join("other.json"),
                )
                .unwrap()
            } else {
                dw_session.unwrap()
            };
            assert_eq!(
                session.get_carto_dw_credentials().unwrap().0,
                "carto-dw-ac-fake",
                "{target:?} {kind:?}"
            );
        }
    }
    assert!(
        fake.issued_tokens()
            .iter()
            .any(|t| *t == read_token(&cache) || target == Target::Dw)
    );
}

fn read_token(cache: &Path) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cache).unwrap()).unwrap();
    json["access_token"].as_str().unwrap().to_string()
}

fn every_fault(target: Target) {
    for kind in KINDS {
        run(target, kind);
    }
}

#[test]
fn token_endpoint_faults_m2m() {
    every_fault(Target::TokenM2m);
}

#[test]
fn token_endpoint_faults_code_exchange() {
    every_fault(Target::TokenOAuth);
}

#[test]
fn accounts_faults() {
    every_fault(Target::Accounts);
}

#[test]
fn tenant_config_faults() {
    every_fault(Target::Config);
}

#[test]
fn carto_dw_faults() {
    every_fault(Target::Dw);
}

// ---- a cache directory that cannot be written ----

fn child_main() {
    let result = match child_scenario().as_deref() {
        Some("m2m") => CartoAuth::from_m2m(std::env::var("CARTO_TEST_CREDS").unwrap()),
        Some("oauth") => CartoAuth::from_oauth(),
        other => panic!("unknown scenario {other:?}"),
    };
    // A leading newline: libtest has printed "test name ... " unterminated.
    match result.and_then(|auth| auth.get_access_token().map(|t| (auth, t))) {
        Ok((auth, token)) => println!(
            "\nRESULT ok {} {}",
            auth.get_api_base_url().unwrap_or("-"),
            token.len()
        ),
        Err(e) => println!("\nRESULT err {e}"),
    }
}

/// Runs both flows in a child whose default cache cannot be written;
/// returns each flow's stderr.
fn login_without_a_writable_cache(
    test: &str,
    fake: &FakeCarto,
    home: &Path,
    spawn: impl Fn(&str, &[(String, String)]) -> std::process::Child,
) -> Vec<String> {
    let outside = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(outside.path());
    let mut env = support::paste_flow_env(fake);
    env.push(("CARTO_TEST_CREDS".into(), creds.display().to_string()));
    let mut stderrs = Vec::new();

    let mut m2m = ChildSession::new(spawn("m2m", &env));
    let (result, stderr) = m2m.result(Duration::from_secs(30));
    assert!(
        result.starts_with(&format!("ok {}", fake.api_base_url())),
        "{test} m2m: {result}\n{stderr}"
    );
    stderrs.push(stderr);

    let mut oauth = ChildSession::new(spawn("oauth", &env));
    let url = oauth.wait_line(Duration::from_secs(30), |l| {
        l.starts_with(&format!("{}/authorize?", fake.base))
    });
    oauth.write_line(&fake.authorize(&url));
    let (result, stderr) = oauth.result(Duration::from_secs(30));
    assert!(
        result.starts_with(&format!("ok {}", fake.api_base_url())),
        "{test} oauth: {result}\n{stderr}"
    );
    stderrs.push(stderr);

    assert!(!home.join(".carto-auth").exists());
    stderrs
}

fn assert_one_warning(case: &str, stderr: &str) {
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "{case}: expected exactly one warning, got:\n{stderr}"
    );
    assert!(
        warnings[0].starts_with("carto-auth: warning: could not write the token cache"),
        "{case}: {}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("the login works but will not be remembered"),
        "{case}: {}",
        warnings[0]
    );
}

/// As root, permission bits do not stop writes, so an unwritable directory
/// is made another way: HOME is a regular file, so `~/.carto-auth` can never
/// be created (ENOTDIR), whoever runs the test.
#[test]
fn a_home_that_is_a_file_gives_a_working_login_and_one_warning() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home-is-a-file");
    std::fs::write(&home, "not a directory").unwrap();
    for stderr in login_without_a_writable_cache(test.name(), &fake, &home, |scenario, env| {
        test.spawn(scenario, &home, env)
    }) {
        assert_one_warning("HOME is a file", &stderr);
    }
    assert_eq!(std::fs::read_to_string(&home).unwrap(), "not a directory");
}

/// A read-only file system (EROFS stops root too): a read-only tmpfs
/// mounted over HOME in a private mount namespace of the child (`unshare
/// -m`), so nothing outside the child ever sees it. Needs CAP_SYS_ADMIN,
/// which root on this project's machines has; elsewhere the test says it
/// cannot run and checks the HOME-is-a-file case instead.
#[test]
fn a_read_only_home_gives_a_working_login_and_one_warning() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    let home = tempfile::tempdir().unwrap();
    let mount = "mount -t tmpfs -o ro,mode=0755 carto-auth-ro \"$HOME\" && ! touch \"$HOME/probe\" 2>/dev/null";
    let probe = std::process::Command::new("unshare")
        .args(["-m", "/bin/sh", "-c", mount])
        .env("HOME", home.path())
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        support::not_tested_without_root(
            "a read-only HOME (one warning, a working login)",
            &format!(
                "no private read-only mount here (needs root: {probe:?}); \
                 HOME-is-a-file covers an unwritable cache"
            ),
        );
        return;
    }
    for stderr in
        login_without_a_writable_cache(test.name(), &fake, home.path(), |scenario, env| {
            test.spawn_in_sh(&["unshare", "-m"], mount, scenario, home.path(), env)
        })
    {
        assert_one_warning("read-only HOME", &stderr);
    }
}

/// A cache directory the user may write to but not chmod (a shared or
/// managed home: here `~/.carto-auth` owned by root, mode 0777, and the
/// login run as `nobody` through `setpriv`): the token is cached all the
/// same, with one warning that says the directory could not be made
/// private. Needs root to set up; elsewhere the test says it cannot run.
/// `nobody` runs a copy of this test binary in a directory it can enter,
/// wherever the build lives (a clone under `/root`, a 0700 target dir).
#[test]
fn a_cache_directory_whose_mode_cannot_change_still_caches_with_one_warning() {
    let test = support::child_test!(child_main);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        support::not_tested_without_root(
            "a cache directory whose mode cannot change (one warning, still cached)",
            "not run as root, so no directory of another owner can be set up",
        );
        return;
    }
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir_in(support::enterable_by_all_tmp()).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let test = test.copied_to(dir.path());
    let home = &dir.path().join("home");
    std::fs::create_dir(home).unwrap();
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let own = home.join(".carto-auth");
    std::fs::create_dir(&own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o777)).unwrap();
    let creds = fake.m2m_credentials_file(home);
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut env = fake.env();
    env.push(("CARTO_TEST_CREDS".into(), creds.display().to_string()));
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let child = test.spawn_in_sh(&nobody, "true", "m2m", home, &env);
    let (result, stderr) = ChildSession::new(child).result(Duration::from_secs(60));
    assert!(result.starts_with("ok "), "{result}\n{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&format!("could not make {} private", own.display()))
            && warnings[0].contains("the token cache is still used"),
        "{}",
        warnings[0]
    );
    let cache = own.join("token_m2m.json");
    let meta = std::fs::metadata(&cache).expect("the token is cached");
    assert_eq!(meta.uid(), 65534, "written by the child");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&own).unwrap().mode() & 0o777, 0o777);
}

// ---- the causes an error keeps ----

/// A cache file or a credentials file that cannot be read: the error's
/// source is the operating system's error, with its kind, not a string.
#[test]
fn file_errors_keep_the_operating_systems_error_as_their_source() {
    use std::error::Error as _;
    use std::io::ErrorKind;
    let io_kind = |err: &Error| {
        err.source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind)
    };
    let dir = tempfile::tempdir().unwrap();

    // A directory where the cache file should be.
    let err = carto_auth::CachedToken::read(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Cache { .. }), "{err:?}");
    assert_eq!(io_kind(&err), Some(ErrorKind::IsADirectory), "{err:?}");
    let err = carto_auth::CachedToken::remove(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Cache { .. }), "{err:?}");
    assert_eq!(io_kind(&err), Some(ErrorKind::IsADirectory), "{err:?}");

    let err = CartoAuth::m2m(dir.path().join("missing.json"))
        .use_cache(false)
        .login()
        .unwrap_err();
    assert!(matches!(err, Error::CredentialsRead { .. }), "{err:?}");
    assert_eq!(io_kind(&err), Some(ErrorKind::NotFound), "{err:?}");
}
