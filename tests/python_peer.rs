//! Interop with the real Python package `carto-auth` 0.2.0 as a peer: both
//! packages against one fake CARTO, sharing their cache files, under four
//! time zones, in both directions. The Python package runs unchanged
//! through `tests/peer/carto_auth_peer.py` (which moves its hard-coded URLs
//! to the fake); the Rust side runs in child processes of this test binary,
//! each with its own `TZ`, since the zone is what the two clocks differ by.
//!
//! What "the old behaviour" means in the comments: a cache whose
//! `expiration` holds the real Unix time (which the Python package misreads
//! by the local UTC offset), and M2M/OAuth identity by API base URL only.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carto_auth::{CachedToken, CartoAuth, Error, LoginInstructions, Prompt, TokenSource};
use serde_json::{Value, json};
use support::{
    ChildTest, FakeCarto, M2M_ID, M2M_ID_B, M2M_SECRET, M2M_SECRET_B, USER_ANA, USER_BEN,
    child_scenario, finish_child,
};

/// UTC, then zones behind UTC, and ahead of it by whole and half hours.
const ZONES: [&str; 4] = ["UTC", "America/New_York", "Europe/Madrid", "Asia/Kolkata"];
const DAY: i64 = 86_400;
const TIMEOUT: Duration = Duration::from_secs(60);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claim(token: &str, key: &str) -> Value {
    support::jwt::claims(token)
        .unwrap_or_else(|| panic!("not a JWT: {token}"))
        .get(key)
        .cloned()
        .unwrap_or(Value::Null)
}

fn has_key(cache: &Path, key: &str) -> bool {
    support::read_json(cache).get(key).is_some()
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// One time zone of one test: the fake, a home directory, and runs of
/// either package under `TZ`.
struct Zone<'a> {
    test: &'a ChildTest,
    fake: &'a FakeCarto,
    tz: &'static str,
    home: tempfile::TempDir,
}

impl<'a> Zone<'a> {
    fn new(test: &'a ChildTest, fake: &'a FakeCarto, tz: &'static str) -> Zone<'a> {
        Zone {
            test,
            fake,
            tz,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn creds(&self, client_id: &str, secret: &str) -> PathBuf {
        self.fake
            .m2m_credentials_file_for(self.home.path(), client_id, secret)
    }

    fn count(&self, path: &str) -> usize {
        self.fake.requests(path).len()
    }

    /// Token requests and authorize visits so far.
    fn counts(&self) -> (usize, usize) {
        (self.count("/oauth/token"), self.count("/authorize"))
    }

    /// The Python package once (see the harness for `args`); its JSON line,
    /// which must say it worked.
    fn python(&self, args: Value) -> Value {
        let run =
            support::peers::carto_auth_peer(&self.fake.base, self.home.path(), self.tz, &args);
        let (value, err) = (run.out, run.stderr);
        assert!(
            run.success && value["ok"] == true,
            "TZ={}: the Python package failed with {args}:\n{value:#}\n{err}",
            self.tz
        );
        assert_eq!(value["version"], "0.2.0");
        // Its clock is what TZ says: no offset in UTC only.
        let offset = python_offset(&value);
        assert_eq!(offset == 0, self.tz == "UTC", "TZ={}: {offset}", self.tz);
        value
    }

    /// The environment of a child of this test binary: the fake's
    /// endpoints, `TZ`, the cache file.
    fn env(&self, cache: &Path) -> Vec<(String, String)> {
        let mut env = self.fake.env();
        env.push(("TZ".into(), self.tz.into()));
        env.push(("CARTO_TEST_CACHE".into(), cache.display().to_string()));
        env
    }

    /// The Rust crate once, in a child process of this test binary with
    /// `TZ` and the fake's endpoints; its `RESULT` JSON.
    fn rust(&self, scenario: &str, cache: &Path, vars: &[(&str, String)]) -> Value {
        let mut env = self.env(cache);
        for (k, v) in vars {
            env.push((k.to_string(), v.clone()));
        }
        let child = self.test.spawn(scenario, self.home.path(), &env);
        let (_, out, err) = finish_child(child, TIMEOUT);
        let result = out
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .unwrap_or_else(|| panic!("TZ={}: no RESULT from {scenario}:\n{out}\n{err}", self.tz));
        serde_json::from_str(result).unwrap()
    }

    /// A Rust login that must work; `get`: with `get_access_token()`.
    fn rust_ok(&self, scenario: &str, cache: &Path, creds: Option<&Path>, get: bool) -> Value {
        let mut vars = Vec::new();
        if let Some(creds) = creds {
            vars.push(("CARTO_TEST_CREDS", creds.display().to_string()));
        }
        if !get {
            vars.push(("CARTO_TEST_NO_GET", "1".to_string()));
        }
        let value = self.rust(scenario, cache, &vars);
        assert_eq!(value["ok"], true, "TZ={}: {scenario}: {value:#}", self.tz);
        value
    }
}

/// The Python package's clock minus the real one, in seconds (minus the
/// local UTC offset): e.g. +5 h in New York in winter.
fn python_offset(out: &Value) -> i64 {
    (out["python_now"].as_f64().unwrap() - out["real_now"].as_f64().unwrap()).round() as i64
}

// ---- the Rust side, as a child process ----

/// A person at a browser: opens the authorize URL shown, is signed in by
/// the fake (as whoever its browser is signed in as), and pastes the
/// address the browser was sent to.
#[derive(Default)]
struct Browser {
    url: Mutex<Option<String>>,
}

impl Prompt for Browser {
    fn show_login(&self, login: &LoginInstructions) {
        *self.url.lock().unwrap() = Some(login.authorize_url.clone());
    }

    fn ask_code(&self, _question: &str) -> std::io::Result<String> {
        let url = self.url.lock().unwrap().clone();
        let url = url.ok_or_else(|| std::io::Error::other("asked before shown"))?;
        let (status, headers, body) = support::http_get(&url);
        if status != 302 {
            return Err(std::io::Error::other(format!(
                "authorize refused: {status} {body}"
            )));
        }
        support::header(&headers, "location")
            .ok_or_else(|| std::io::Error::other("no Location from authorize"))
    }

    fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}

fn source_name(source: &TokenSource) -> &'static str {
    match source {
        TokenSource::SignIn => "signin",
        TokenSource::Cache(_) => "cache",
        _ => "other",
    }
}

fn error_json(e: &Error) -> Value {
    let changed = match e {
        Error::AccountChanged { expected, got } => json!([expected, got]),
        _ => Value::Null,
    };
    json!({"ok": false, "error": e.to_string(), "account_changed": changed})
}

fn describe(auth: &CartoAuth, get: bool) -> Value {
    let mut out = json!({
        "ok": true,
        "login_source": source_name(&auth.token_source()),
        "login_expiration": auth.expiration(),
        "api_base_url": auth.get_api_base_url(),
    });
    if get {
        match auth.get_access_token() {
            Ok(token) => {
                out["token"] = token.into();
                out["source"] = source_name(&auth.token_source()).into();
                out["expiration"] = auth.expiration().into();
                out["subject"] = auth.subject().into();
            }
            Err(e) => return error_json(&e),
        }
    }
    out
}

fn oauth_login(cache: &Path) -> carto_auth::Result<CartoAuth> {
    CartoAuth::oauth()
        .open_browser(false)
        .cache_filepath(cache)
        .prompt(Browser::default())
        .login()
}

/// Scenarios: `m2m`, `oauth` (log in, then `get_access_token()` unless
/// `CARTO_TEST_NO_GET`), `read` (`CachedToken::read`), and `session` (an
/// OAuth session that gets a token for each `get` line on stdin).
fn child_main() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let cache = PathBuf::from(var("CARTO_TEST_CACHE"));
    let get = std::env::var_os("CARTO_TEST_NO_GET").is_none();
    let result = match child_scenario().as_deref() {
        Some("m2m") => match CartoAuth::m2m(var("CARTO_TEST_CREDS"))
            .cache_filepath(&cache)
            .login()
        {
            Ok(auth) => describe(&auth, get),
            Err(e) => error_json(&e),
        },
        Some("oauth") => match oauth_login(&cache) {
            Ok(auth) => describe(&auth, get),
            Err(e) => error_json(&e),
        },
        Some("read") => match CachedToken::read(&cache) {
            Ok(Some(t)) => json!({
                "ok": true,
                "token": t.access_token().secret(),
                "expiration": t.expiration(),
                "usable": t.is_usable(),
                "python": t.written_by_python(),
                "client_id": t.client_id(),
                "subject": t.subject(),
            }),
            Ok(None) => json!({"ok": true, "token": null}),
            Err(e) => error_json(&e),
        },
        Some("session") => session(&cache),
        other => panic!("unknown scenario {other:?}"),
    };
    // A leading newline: libtest has printed "test name ... " unterminated.
    println!("\nRESULT {result}");
}

fn session(cache: &Path) -> Value {
    let auth = match oauth_login(cache) {
        Ok(auth) => auth,
        Err(e) => return error_json(&e),
    };
    println!(
        "\nSTEP0 {}",
        json!({"ok": true, "subject": auth.subject(), "expiration": auth.expiration()})
    );
    let mut step = 0;
    for line in std::io::stdin().lines() {
        if line.unwrap().trim() != "get" {
            break;
        }
        step += 1;
        let out = match auth.get_access_token() {
            Ok(token) => json!({
                "ok": true,
                "token": token,
                "source": source_name(&auth.token_source()),
                "subject": auth.subject(),
            }),
            Err(e) => error_json(&e),
        };
        println!("\nSTEP{step} {out}");
    }
    json!({"ok": true, "steps": step})
}

// ---- 1. Rust writes a good token: Python reuses it ----

/// A token Rust cached is reused by the Python package without a request.
/// Its lifetime (2 h) is shorter than New York's offset: with the real Unix
/// time in `expiration`, Python there would call it expired and renew.
#[test]
fn python_reuses_a_good_token_rust_cached() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    fake.set_expires_in(2 * 3600);
    for tz in ZONES {
        let z = Zone::new(&test, &fake, tz);
        let creds = z.creds(M2M_ID, M2M_SECRET);
        for mode in ["m2m", "oauth"] {
            let cache = z.path(&format!("token_{mode}.json"));
            let rust = z.rust_ok(mode, &cache, Some(&creds), true);
            let token = rust["token"].as_str().unwrap().to_string();
            assert_eq!(rust["source"], "signin");
            let file = support::read_json(&cache);
            let real_exp = file["expiration_unix"].as_i64().unwrap();
            assert_eq!(real_exp, claim(&token, "exp").as_i64().unwrap());

            let before = z.counts();
            let py = z.python(json!({
                "mode": mode, "creds": creds, "cache": cache, "clock": [real_exp - 60],
            }));
            assert_eq!(py["token"], token.as_str(), "TZ={tz} {mode}: {py:#}");
            assert_eq!(z.counts(), before, "TZ={tz} {mode}: Python made a request");
            assert_eq!(py["asked"], 0);
            // What Rust wrote is the Python package's number for our
            // deadline (the expiry minus our margin), to the second.
            assert_eq!(file["expiration"], py["clock"][0], "TZ={tz} {mode}");
            assert_eq!(py["expiration"], file["expiration"]);
            // Python rewrote the file in place with its three keys only.
            let after = support::read_json(&cache);
            assert_eq!(after["access_token"], token.as_str());
            assert!(!has_key(&cache, "expiration_unix"), "TZ={tz}: {after}");
        }
    }
}

// ---- 2. Rust writes a token within its margin: Python renews ----

/// A token within our 60 s margin is written so that the Python package,
/// which has no margin, calls it expired too: it renews, and never hands
/// out the old one. With the real Unix time written (UTC, Madrid, Kolkata)
/// it would have handed it out.
#[test]
fn python_renews_a_token_rust_cached_within_the_margin() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    for tz in ZONES {
        let z = Zone::new(&test, &fake, tz);
        let creds = z.creds(M2M_ID, M2M_SECRET);
        for mode in ["m2m", "oauth"] {
            let cache = z.path(&format!("token_{mode}.json"));
            fake.set_expires_in(30);
            z.rust_ok(mode, &cache, Some(&creds), false);
            let old = support::read_json(&cache)["access_token"]
                .as_str()
                .unwrap()
                .to_string();
            fake.set_expires_in(DAY);

            let (tokens, authorizes) = z.counts();
            let py = z.python(json!({"mode": mode, "creds": creds, "cache": cache}));
            let new = py["token"].as_str().unwrap();
            assert_ne!(new, old, "TZ={tz} {mode}: Python handed out the old token");
            assert_eq!(z.count("/oauth/token"), tokens + 1, "TZ={tz} {mode}");
            if mode == "oauth" {
                assert_eq!(z.count("/authorize"), authorizes + 1);
                assert_eq!(py["asked"], 1);
                assert_eq!(claim(new, "sub"), USER_ANA);
            } else {
                assert_eq!(claim(new, "azp"), M2M_ID);
            }
            assert_eq!(support::read_json(&cache)["access_token"], new);
        }
    }
}

// ---- 3. Python writes a good token: Rust reuses it ----

/// Python-written tokens are reused by Rust without a request: an M2M JWT
/// because its `azp` is these credentials' client, an OAuth JWT, and an
/// opaque OAuth token whose expiration Rust reads back from the Python
/// clock to the real one (5 h off in New York when read as Unix time).
#[test]
fn rust_reuses_a_good_token_python_cached() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    for tz in ZONES {
        let z = Zone::new(&test, &fake, tz);
        let creds = z.creds(M2M_ID, M2M_SECRET);
        for (mode, opaque) in [("m2m", false), ("oauth", false), ("oauth", true)] {
            let cache = z.path(&format!("token_{mode}_{opaque}.json"));
            fake.set_opaque_tokens(opaque);
            let t0 = now();
            let py = z.python(json!({"mode": mode, "creds": creds, "cache": cache}));
            let t1 = now();
            fake.set_opaque_tokens(false);
            let token = py["token"].as_str().unwrap().to_string();
            assert!(!has_key(&cache, "expiration_unix"));

            let before = z.counts();
            let read = z.rust("read", &cache, &[]);
            assert_eq!(read["python"], true, "TZ={tz}: {read:#}");
            assert_eq!(read["usable"], true, "TZ={tz}: {read:#}");
            let rust = z.rust_ok(mode, &cache, Some(&creds), true);
            assert_eq!(
                rust["token"],
                token.as_str(),
                "TZ={tz} {mode} opaque={opaque}: {rust:#}"
            );
            assert_eq!(rust["login_source"], "cache");
            assert_eq!(rust["source"], "cache");
            assert_eq!(z.counts(), before, "TZ={tz} {mode}: Rust made a request");
            let exp = rust["expiration"].as_i64().unwrap();
            assert_eq!(read["expiration"], exp);
            if opaque {
                // The fake's real expiry is the request's time plus a day;
                // Python's number, read back from its clock, is within a
                // second of it.
                assert!(
                    (t0 + DAY - 1..=t1 + DAY).contains(&exp),
                    "TZ={tz}: Rust reads {exp}, the real expiry is {}..={}",
                    t0 + DAY,
                    t1 + DAY
                );
            } else {
                assert_eq!(exp, claim(&token, "exp").as_i64().unwrap());
            }
            if mode == "m2m" {
                assert_eq!(read["client_id"], M2M_ID);
            }
        }
    }
}

// ---- 4. Python writes an expired or nearly expired token: Rust renews ----

/// An opaque OAuth token Python cached after it had already expired in
/// real time (the package does not check `expires_in`): in New York its
/// number is hours in the future, yet Rust must not hand it out. And one
/// that expires within our margin: Rust signs in again.
#[test]
fn rust_does_not_hand_out_a_dead_token_python_cached() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    fake.set_opaque_tokens(true);
    for tz in ZONES {
        let z = Zone::new(&test, &fake, tz);
        for (case, expires_in) in [("expired", -3600), ("margin", 30)] {
            let cache = z.path(&format!("token_oauth_{case}.json"));
            fake.set_expires_in(expires_in);
            let t0 = now();
            // An expired token cannot discover the API base URL: pass it.
            let py = z.python(json!({
                "mode": "oauth", "cache": cache, "get": false,
                "api_base_url": fake.api_base_url(),
            }));
            fake.set_expires_in(DAY);
            let t1 = now();
            // The fake's real expiry: the request's time plus expires_in.
            let real_expiry = t0 + expires_in - 1..=t1 + expires_in;
            let old = py["held_token"].as_str().unwrap().to_string();
            let file = support::read_json(&cache);
            assert_eq!(file["access_token"], old.as_str());
            let number = file["expiration"].as_i64().unwrap();
            let offset = python_offset(&py);
            assert!(
                real_expiry.contains(&(number - offset)),
                "TZ={tz}: {number} is not the Python clock of {real_expiry:?}"
            );
            if tz == "America/New_York" {
                // The trap: read as Unix time it looks good for hours.
                assert!(number > t0 + 3 * 3600, "{number}");
            }

            let read = z.rust("read", &cache, &[]);
            assert_eq!(read["python"], true);
            assert_eq!(read["usable"], false, "TZ={tz} {case}: {read:#}");
            let real = read["expiration"].as_i64().unwrap();
            assert!(
                real_expiry.contains(&real),
                "TZ={tz} {case}: Rust reads {real}, the real expiry is {real_expiry:?}"
            );

            let (tokens, authorizes) = z.counts();
            let rust = z.rust_ok("oauth", &cache, None, true);
            let new = rust["token"].as_str().unwrap();
            assert_ne!(new, old, "TZ={tz} {case}: Rust handed out the dead token");
            assert_eq!(rust["login_source"], "signin");
            assert_eq!(z.counts(), (tokens + 1, authorizes + 1), "TZ={tz}");
            assert!(fake.accepts(new));
            assert_eq!(support::read_json(&cache)["access_token"], new);
        }
    }
}

// ---- 5. Two M2M applications, the Python package in between ----

/// Two M2M applications of one API base URL share `token_m2m.json` with the
/// Python package, which reuses whatever token is there for any
/// credentials and drops our `client_id`. Rust gives each application its
/// own token every time (by the token's `azp`), and reuses an
/// application's own Python-written token without a request.
#[test]
fn two_m2m_applications_each_get_their_own_token_around_python() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    for tz in ZONES {
        let z = Zone::new(&test, &fake, tz);
        let a = z.creds(M2M_ID, M2M_SECRET);
        let b = z.creds(M2M_ID_B, M2M_SECRET_B);
        let cache = z.path("token_m2m.json");
        let rust = |creds: &Path, client: &str, reuse: bool| -> String {
            let before = z.count("/oauth/token");
            let out = z.rust_ok("m2m", &cache, Some(creds), true);
            let token = out["token"].as_str().unwrap().to_string();
            assert_eq!(claim(&token, "azp"), client, "TZ={tz}: {out:#}");
            assert_eq!(claim(&token, "sub"), format!("{client}@clients"));
            let expected = (
                if reuse { "cache" } else { "signin" },
                before + usize::from(!reuse),
            );
            assert_eq!(
                (out["source"].as_str().unwrap(), z.count("/oauth/token")),
                expected,
                "TZ={tz} {client}"
            );
            token
        };
        let python = |creds: &Path| -> String {
            let out = z.python(json!({"mode": "m2m", "creds": creds, "cache": cache}));
            assert!(!has_key(&cache, "client_id") && !has_key(&cache, "expiration_unix"));
            out["token"].as_str().unwrap().to_string()
        };

        let a1 = rust(&a, M2M_ID, false);
        // The Python package's weakness: B is handed A's token.
        assert_eq!(python(&b), a1);
        let b1 = rust(&b, M2M_ID_B, false);
        assert_eq!(python(&a), b1);
        rust(&a, M2M_ID, false);

        // Python's own token, obtained for B, is B's again in Rust.
        assert!(CachedToken::remove(&cache).unwrap());
        let before = z.count("/oauth/token");
        let b2 = python(&b);
        assert_eq!(z.count("/oauth/token"), before + 1);
        assert_eq!(claim(&b2, "azp"), M2M_ID_B);
        assert_eq!(rust(&b, M2M_ID_B, true), b2);
        assert_ne!(rust(&a, M2M_ID, false), b2);
    }
}

// ---- 6. An OAuth session and another account signed in with Python ----

/// Ana's Rust session expires after Ben signed in with the Python package,
/// which rewrote the cache with his token. Renewal never adopts Ben's
/// token: signing in again as Ben is `Error::AccountChanged`; once the
/// browser is Ana's again, renewal gives Ana's token.
#[test]
fn an_oauth_session_never_takes_another_accounts_token_from_python() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    for tz in ZONES {
        let z = Zone::new(&test, &fake, tz);
        let cache = z.path("token_oauth.json");
        fake.sign_in_as(USER_ANA);
        fake.set_expires_in(30);
        let env = z.env(&cache);
        let mut ana = test.session("session", z.home.path(), &env);
        let step = |ana: &mut support::ChildSession, n: usize| -> Value {
            if n > 0 {
                ana.write_line("get");
            }
            let line = ana.wait_line(TIMEOUT, |l| l.starts_with(&format!("STEP{n} ")));
            serde_json::from_str(line.split_once(' ').unwrap().1).unwrap()
        };
        let login = step(&mut ana, 0);
        assert_eq!(login["subject"], USER_ANA, "TZ={tz}: {login:#}");

        // Ben signs in with the Python package: Ana's token, within our
        // margin, is expired in its clock too, so it signs in anew.
        fake.set_expires_in(DAY);
        fake.sign_in_as(USER_BEN);
        let py = z.python(json!({"mode": "oauth", "cache": cache}));
        assert_eq!(py["asked"], 1, "TZ={tz}: Python reused Ana's token");
        let ben = py["token"].as_str().unwrap().to_string();
        assert_eq!(claim(&ben, "sub"), USER_BEN);
        assert_eq!(support::read_json(&cache)["access_token"], ben.as_str());

        // Renewal with the browser still Ben's: a sign-in, refused.
        let authorizes = z.count("/authorize");
        let renewal = step(&mut ana, 1);
        assert_eq!(renewal["ok"], false, "TZ={tz}: {renewal:#}");
        assert_eq!(
            renewal["account_changed"],
            json!([USER_ANA, USER_BEN]),
            "TZ={tz}: {renewal:#}"
        );
        assert_eq!(z.count("/authorize"), authorizes + 1);

        // The browser is Ana's again: Ana's token, never Ben's.
        fake.sign_in_as(USER_ANA);
        let renewal = step(&mut ana, 2);
        assert_eq!(renewal["ok"], true, "TZ={tz}: {renewal:#}");
        let token = renewal["token"].as_str().unwrap();
        assert_ne!(token, ben);
        assert_eq!(claim(token, "sub"), USER_ANA);
        assert_eq!(renewal["source"], "signin");
        assert_eq!(z.count("/authorize"), authorizes + 2);
        assert_eq!(support::read_json(&cache)["access_token"], token);
        // And it stays: no more sign-ins.
        let again = step(&mut ana, 3);
        assert_eq!(again["token"], token);
        assert_eq!(z.count("/authorize"), authorizes + 2);

        ana.close_stdin();
        let (result, stderr) = ana.result(TIMEOUT);
        assert_eq!(result, r#"{"ok":true,"steps":3}"#, "{stderr}");
        assert!(!stderr.contains(&ben), "Ben's token was shown");
    }
}

// ---- 7. A symlinked cache file ----

/// The cache path is a symbolic link into another directory. Rust writes
/// through it, Python reads it and writes through it (in place), Rust
/// reads Python's write; the path stays a link and the target holds the
/// latest token. `CachedToken::remove` removes the target and keeps the
/// link and the lock file.
#[cfg(unix)]
#[test]
fn a_symlinked_cache_is_shared_through_the_link() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    for tz in ZONES {
        let z = Zone::new(&test, &fake, tz);
        let creds = z.creds(M2M_ID, M2M_SECRET);
        let dotfiles = z.path("dotfiles");
        std::fs::create_dir(&dotfiles).unwrap();
        let target = dotfiles.join("carto-token.json");
        let lock = dotfiles.join("carto-token.json.lock");
        std::fs::create_dir(z.path("cache")).unwrap();
        let link = z.path("cache/token_m2m.json");
        let relative = Path::new("../dotfiles/carto-token.json");
        std::os::unix::fs::symlink(relative, &link).unwrap();
        let still_a_link = |when: &str| {
            assert!(is_link(&link), "TZ={tz}: not a link {when}");
            assert_eq!(std::fs::read_link(&link).unwrap(), relative, "{when}");
            let names: Vec<_> = std::fs::read_dir(z.path("cache"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["token_m2m.json"], "TZ={tz} {when}");
        };

        // Rust writes through the (dangling) link.
        let rust = z.rust_ok("m2m", &link, Some(&creds), true);
        let t1 = rust["token"].as_str().unwrap().to_string();
        still_a_link("after Rust's write");
        assert_eq!(support::read_json(&target)["access_token"], t1.as_str());
        assert!(has_key(&target, "expiration_unix"));

        // Python reads it through the link, and rewrites it in place.
        let tokens = z.count("/oauth/token");
        let py = z.python(json!({"mode": "m2m", "creds": creds, "cache": link}));
        assert_eq!(py["token"], t1.as_str(), "TZ={tz}");
        assert_eq!(z.count("/oauth/token"), tokens);
        still_a_link("after Python's rewrite");
        assert!(!has_key(&target, "expiration_unix"));

        // No token: Python obtains one and writes it through the link.
        assert!(CachedToken::remove(&link).unwrap());
        assert!(!target.exists() && is_link(&link) && lock.exists());
        let py = z.python(json!({"mode": "m2m", "creds": creds, "cache": link}));
        let t2 = py["token"].as_str().unwrap().to_string();
        assert_ne!(t2, t1);
        assert_eq!(z.count("/oauth/token"), tokens + 1);
        still_a_link("after Python's write");
        assert_eq!(support::read_json(&target)["access_token"], t2.as_str());

        // Rust reads Python's write through the link.
        let rust = z.rust_ok("m2m", &link, Some(&creds), true);
        assert_eq!(rust["token"], t2.as_str(), "TZ={tz}: {rust:#}");
        assert_eq!(rust["source"], "cache");
        assert_eq!(z.count("/oauth/token"), tokens + 1);
        still_a_link("after Rust's read");

        assert!(CachedToken::remove(&link).unwrap());
        assert!(!target.exists(), "TZ={tz}");
        assert!(is_link(&link) && lock.exists(), "TZ={tz}");
        assert!(CachedToken::read(&link).unwrap().is_none());
        let names: Vec<_> = std::fs::read_dir(&dotfiles)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["carto-token.json.lock"], "TZ={tz}");
    }
}
