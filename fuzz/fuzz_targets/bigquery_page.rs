//! A `getQueryResults` answer of any bytes (BigQuery's output is not ours
//! to trust): decoded or refused, never a panic; what decodes has one value
//! per schema field in every row.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = carto_auth::fuzzing::decode_bigquery_page(data) {
        let width = rows.first().map_or(0, Vec::len);
        assert!(rows.iter().all(|row| row.len() == width));
    }
});
