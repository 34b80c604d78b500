//! Decoding a CARTO Data Warehouse (BigQuery) answer of 100,000 rows × 10
//! columns, in pages of 10,000 rows. Goal: decoding is never the
//! bottleneck, at least 2 million cells per second.
//!
//! ```text
//! cargo bench --bench dw_decode --features carto-dw,fuzzing
//! ```
//! 1. Decoding alone: each page's JSON bytes parsed into google-bigquery2's
//!    types and every row decoded by the schema, exactly as
//!    `CartoDwClient::query` does per page (the pages are rendered first).
//! 2. The whole query over loopback, against the tests' fake BigQuery in
//!    this process: HTTP, the polls, the pages, the decoding.
//!
//! Peak memory is the process's peak resident set (VmHWM), reset before
//! each measurement (`/proc/self/clear_refs`), minus the resident set
//! before it. Linux only.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use carto_auth::CartoAuth;
use serde_json::{Value, json};
use support::bigquery::{self, FakeBigQuery, TimestampFormat};

const ROWS: usize = 100_000;
const COLUMNS: usize = 10;
const PAGE: usize = 10_000;
const RUNS: usize = 5;

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak resident set to the current one; returns the current.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:")
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn report(what: &str, times: Vec<Duration>, peak_kib: u64) {
    let cells = (ROWS * COLUMNS) as f64;
    let best = *times.iter().min().unwrap();
    let mid = median(times);
    println!(
        "| {what} | {:.0} ms | {:.0} ms | {:.0} | {:.2} M | {:.1} MiB |",
        mid.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
        ROWS as f64 / mid.as_secs_f64(),
        cells / mid.as_secs_f64() / 1e6,
        peak_kib as f64 / 1024.0,
    );
}

fn main() {
    // The pages as BigQuery sends them: every scalar a string, TIMESTAMP in
    // microseconds (the client asks for them so).
    let fields = bigquery::generated_fields();
    assert_eq!(fields.as_array().unwrap().len(), COLUMNS);
    let pages: Vec<Vec<u8>> = (0..ROWS / PAGE)
        .map(|p| {
            let rows: Vec<Value> = (p * PAGE..(p + 1) * PAGE)
                .map(|i| {
                    json!({"f": bigquery::generated_cells(i, TimestampFormat::Int64)
                        .into_iter()
                        .map(|v| json!({"v": v}))
                        .collect::<Vec<_>>()})
                })
                .collect();
            serde_json::to_vec(&json!({
                "kind": "bigquery#getQueryResultsResponse",
                "jobComplete": true,
                "schema": {"fields": fields},
                "totalRows": ROWS.to_string(),
                "rows": rows,
            }))
            .unwrap()
        })
        .collect();
    let bytes: usize = pages.iter().map(Vec::len).sum();

    println!(
        "{ROWS} rows × {COLUMNS} columns, {} pages of {PAGE} rows, {:.1} MiB of JSON; median and best of {RUNS} runs",
        pages.len(),
        bytes as f64 / 1_048_576.0
    );
    println!("| what | median | best | rows/s | cells/s | peak memory |");
    println!("| --- | --- | --- | --- | --- | --- |");

    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..RUNS {
        let before = reset_peak();
        let started = Instant::now();
        let mut decoded = Vec::with_capacity(ROWS);
        for page in &pages {
            decoded.extend(carto_auth::fuzzing::decode_bigquery_page(page).expect("a page"));
        }
        times.push(started.elapsed());
        peak = peak.max(status_kib("VmHWM:").saturating_sub(before));
        assert_eq!(decoded.len(), ROWS);
        assert!(decoded[ROWS - 1].iter().all(|v| !v.is_object()));
    }
    report("decoding only (pages parsed and decoded)", times, peak);
    drop(pages);

    let fake = support::FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    bq.set_page_size(PAGE);
    let dir = tempfile::tempdir().unwrap();
    let auth = CartoAuth::m2m(fake.m2m_credentials_file(dir.path()))
        .use_cache(false)
        .endpoints(fake.endpoints())
        .login()
        .unwrap();
    let dw = auth
        .get_carto_dw_client()
        .unwrap()
        .bigquery_url(&bq.base)
        .unwrap();
    let sql = bigquery::generated_sql(ROWS);
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..RUNS {
        let before = reset_peak();
        let started = Instant::now();
        let result = dw.query(&sql).expect("the query");
        times.push(started.elapsed());
        peak = peak.max(status_kib("VmHWM:").saturating_sub(before));
        assert_eq!((result.len(), result.columns().len()), (ROWS, COLUMNS));
    }
    report(
        "whole query over loopback (fake BigQuery in this process)",
        times,
        peak,
    );
}
