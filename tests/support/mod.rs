//! What the integration tests share: a fake CARTO on loopback that checks
//! what it is sent the way the real service does (`fake.rs`, with Auth0's
//! JWTs in `jwt.rs` and the device grant in `device.rs`), bare HTTP
//! (`http.rs`), child processes with their own environment, stdin and
//! `$BROWSER` (`child.rs`), the evcxr kernel's build cache and environment
//! (`evcxr.rs`), the outside programs the tests drive (`tools.rs`), and
//! the Python peers: CARTO's package and oauthlib's server (`peers.rs`).

#![allow(dead_code, unused_imports)]

pub mod bigquery;
mod child;
pub mod closing_server;
mod device;
pub mod evcxr;
mod fake;
pub mod headless;
mod http;
pub mod jupyterlab;
pub mod jwt;
pub mod map_site;
pub mod maps_api;
pub mod mvt;
pub mod peers;
pub mod places;
pub mod proxy;
pub mod sql_api;
pub mod tools;

use std::sync::Arc;

use base64::Engine as _;

pub use child::*;
pub use fake::*;
pub use http::*;

/// A token as the crate masks it: an ellipsis and its last 6 characters.
pub fn masked(token: &str) -> String {
    format!("…{}", &token[token.len() - 6..])
}

/// A file's permission bits (`0o600`).
#[cfg(unix)]
pub fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Says, past libtest's capture (a passing test's `eprintln!` is never
/// shown), that `unchecked` was NOT TESTED on this machine and why, as
/// [`has_ipv6_loopback`] does; with `CARTO_AUTH_TEST_ROOT=required` (a CI
/// that runs as root and must check everything), fails instead.
pub fn not_tested_without_root(unchecked: &str, why: &str) {
    use std::io::Write as _;
    assert!(
        std::env::var("CARTO_AUTH_TEST_ROOT").as_deref() != Ok("required"),
        "{unchecked}: {why}, and CARTO_AUTH_TEST_ROOT=required"
    );
    let _ = writeln!(std::io::stderr().lock(), "\nNOT TESTED: {unchecked}: {why}");
}

/// An extra route of the fake: the request, and whether its bearer token
/// is one the fake issued and unexpired; answers status and JSON.
pub type Route = Arc<dyn Fn(&Recorded, bool) -> (u16, String) + Send + Sync>;

fn pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .into_owned()
        .collect()
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn random_word() -> String {
    let mut b = [0u8; 9];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl FakeCarto {
    /// Serves `handler` for every path starting with `prefix`, before the
    /// fake's own routes.
    pub fn add_route(&self, prefix: &str, handler: Route) {
        self.state
            .lock()
            .unwrap()
            .extra
            .push((prefix.into(), handler));
    }
}

/// An M2M session with caching off, against the fake; the directory holds
/// the credentials file and must outlive the session's use of it.
pub fn m2m_session(fake: &FakeCarto) -> (tempfile::TempDir, carto_auth::CartoAuth) {
    let (dir, builder) = m2m_builder(fake);
    (dir, builder.login().unwrap())
}

/// [`m2m_session`] for async tests.
pub async fn m2m_session_async(fake: &FakeCarto) -> (tempfile::TempDir, carto_auth::CartoAuth) {
    let (dir, builder) = m2m_builder(fake);
    (dir, builder.login_async().await.unwrap())
}

/// The builder of [`m2m_session`], for sessions with other settings.
pub fn m2m_builder(fake: &FakeCarto) -> (tempfile::TempDir, carto_auth::M2mBuilder) {
    let dir = tempfile::tempdir().unwrap();
    let builder = carto_auth::CartoAuth::m2m(fake.m2m_credentials_file(dir.path()))
        .use_cache(false)
        .endpoints(fake.endpoints());
    (dir, builder)
}
