//! Decoding a CARTO Data Warehouse (BigQuery) answer of 100,000 rows × 10
//! columns, in pages of 10,000 rows. Goal: decoding is never the
//! bottleneck, at least 2 million cells per second.
//!
//! ```text
//! cargo bench --bench dw_decode --features carto-dw,fuzzing
//! ```
//! 1. Decoding alone: each page's JSON bytes parsed and every row decoded
//!    by the schema, exactly as
//!    `CartoDwClient::query` does per page (the pages are rendered first).
//! 2. The whole query over loopback, against the tests' fake BigQuery in
//!    this process: HTTP, the polls, the pages, the decoding.
//!
//! Peak memory is counted by a global allocator that keeps, for the
//! measuring thread only (the fake server's threads are left out), the
//! bytes allocated and not yet freed, and their peak during a run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use carto_auth::CartoAuth;
use serde_json::{Value, json};
use support::bigquery::{self, FakeBigQuery, Rows, Table, TimestampFormat};

const ROWS: usize = 100_000;
const COLUMNS: usize = 10;
const PAGE: usize = 10_000;
const RUNS: usize = 5;

/// The system allocator, counting what the measuring thread holds.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is passed on unchanged to the system allocator; the
// counting only reads sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            let held =
                HELD.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            let delta = new_size as isize - layout.size() as isize;
            let held = HELD.fetch_add(delta, Ordering::Relaxed) + delta;
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work` with this thread's allocations counted; its time and the
/// peak of what it held, in KiB.
fn measure<T>(work: impl FnOnce() -> T) -> (T, Duration, u64) {
    HELD.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTED.with(|c| c.set(true));
    let started = Instant::now();
    let out = work();
    let took = started.elapsed();
    COUNTED.with(|c| c.set(false));
    (
        out,
        took,
        (PEAK.load(Ordering::Relaxed).max(0) / 1024) as u64,
    )
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
    let table = Table {
        fields: bigquery::generated_fields(),
        rows: Rows::Generated(ROWS),
        total_bytes_processed: 0,
    };
    let fields = &table.fields;
    assert_eq!(fields.as_array().unwrap().len(), COLUMNS);
    let rendering = Instant::now();
    let pages: Vec<Vec<u8>> = (0..ROWS / PAGE)
        .map(|p| {
            let rows: Vec<Value> = (p * PAGE..(p + 1) * PAGE)
                .map(|i| table.wire_row(i, TimestampFormat::Int64))
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
    let rendered_in = rendering.elapsed();

    println!(
        "{ROWS} rows × {COLUMNS} columns, {} pages of {PAGE} rows, {:.1} MiB of JSON; median and best of {RUNS} runs",
        pages.len(),
        bytes as f64 / 1_048_576.0
    );
    println!(
        "(rendering those pages, as the fake BigQuery does while serving them, took {:.0} ms)",
        rendered_in.as_secs_f64() * 1e3
    );
    println!("| what | median | best | rows/s | cells/s | peak memory held |");
    println!("| --- | --- | --- | --- | --- | --- |");

    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..RUNS {
        let (decoded, took, held) = measure(|| {
            let mut decoded = Vec::with_capacity(ROWS);
            for page in &pages {
                decoded.extend(carto_auth::fuzzing::decode_bigquery_page(page).expect("a page"));
            }
            decoded
        });
        times.push(took);
        peak = peak.max(held);
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
        let (result, took, held) = measure(|| dw.query(&sql).expect("the query"));
        times.push(took);
        peak = peak.max(held);
        assert_eq!((result.len(), result.columns().len()), (ROWS, COLUMNS));
    }
    report(
        "whole query over loopback (fake BigQuery in this process)",
        times,
        peak,
    );
}
