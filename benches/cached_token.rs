//! Cached token in-process: `CartoAuth::from_m2m` + `get_access_token` on a
//! warm cache, per call. Goal: under 100 µs.
//!
//! ```text
//! cargo bench --bench cached_token
//! ```
//! No network: the cache is valid, so no request is made (a request would
//! fail, the token URL points at a closed port).

use std::time::{Duration, Instant};

use carto_auth::{CartoAuth, Endpoints};

fn main() {
    let dir = std::env::temp_dir().join(format!("carto-auth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let creds = dir.join("creds.json");
    let cache = dir.join("token_m2m.json");
    std::fs::write(
        &creds,
        r#"{"api_base_url":"https://api.example","client_id":"bench","client_secret":"s"}"#,
    )
    .expect("write");
    std::fs::write(
        &cache,
        r#"{"api_base_url":"https://api.example","access_token":"bench-token","expiration":99999999999,"client_id":"bench"}"#,
    )
    .expect("write");
    let mut endpoints = Endpoints::carto();
    endpoints.auth_url = "http://127.0.0.1:9".into();

    let call = || {
        let auth = CartoAuth::m2m(&creds)
            .cache_filepath(&cache)
            .endpoints(endpoints.clone())
            .login()
            .expect("login");
        auth.get_access_token().expect("token")
    };
    assert_eq!(call(), "bench-token");
    for _ in 0..200 {
        call();
    }
    let runs = 5_000;
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(call());
            start.elapsed()
        })
        .collect();
    samples.sort();
    let pct = |p: f64| samples[((runs as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / runs as f64;
    println!("cached token in-process (from_m2m + get_access_token), {runs} calls");
    println!("| median | p90 | p99 | mean | goal |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {:.1} µs | {:.1} µs | {:.1} µs | {mean:.1} µs | < 100 µs |",
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
