//! Cached token in-process: `CartoAuth::from_m2m` + `get_access_token` on a
//! warm cache, per call. Goal: under 100 µs.
//!
//! ```text
//! cargo bench --bench cached_token
//! ```
//! Two caches: a JWT access token, as CARTO issues (its `exp` and `azp`
//! decide reuse), and an opaque token (the cache's own keys decide). No
//! network: the cache is valid, so no request is made (a request would fail,
//! the token URL points at a closed port).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carto_auth::{CartoAuth, Endpoints};

const RUNS: usize = 5_000;

fn main() {
    let dir = std::env::temp_dir().join(format!("carto-auth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let creds = dir.join("creds.json");
    std::fs::write(
        &creds,
        r#"{"api_base_url":"https://api.example","client_id":"bench","client_secret":"s"}"#,
    )
    .expect("write");

    let part = |json: &str| URL_SAFE_NO_PAD.encode(json);
    let jwt = format!(
        "{}.{}.{}",
        part(r#"{"alg":"RS256","typ":"JWT"}"#),
        part(
            r#"{"iss":"https://auth.carto.com/","sub":"bench@clients","aud":"carto-cloud-native-api","exp":99999999999,"azp":"bench","gty":"client-credentials"}"#
        ),
        URL_SAFE_NO_PAD.encode([7u8; 256]),
    );

    println!("cached token in-process (from_m2m + get_access_token), {RUNS} calls each");
    println!("| access token | median | p90 | p99 | mean | goal |");
    println!("| --- | --- | --- | --- | --- | --- |");
    measure("JWT (as CARTO issues)", &dir, &creds, &jwt);
    measure("opaque", &dir, &creds, "bench-token");
    let _ = std::fs::remove_dir_all(&dir);
}

fn measure(label: &str, dir: &Path, creds: &Path, token: &str) {
    let cache = dir.join(format!("token_m2m_{}.json", token.len()));
    std::fs::write(
        &cache,
        format!(
            r#"{{"api_base_url":"https://api.example","access_token":"{token}","expiration":99999999999,"expiration_unix":99999999999,"client_id":"bench"}}"#
        ),
    )
    .expect("write");
    let mut endpoints = Endpoints::carto();
    endpoints.auth_url = "http://127.0.0.1:9".into();

    let call = || {
        let auth = CartoAuth::m2m(creds)
            .cache_filepath(&cache)
            .endpoints(endpoints.clone())
            .login()
            .expect("login");
        auth.get_access_token().expect("token")
    };
    assert_eq!(call(), token, "the cached token is reused");
    for _ in 0..200 {
        call();
    }
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(call());
            start.elapsed()
        })
        .collect();
    samples.sort();
    let pct = |p: f64| samples[((RUNS as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / RUNS as f64;
    println!(
        "| {label} | {:.1} µs | {:.1} µs | {:.1} µs | {mean:.1} µs | < 100 µs |",
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}
