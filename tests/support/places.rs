//! `carto-demo-data.demo_tables.populated_places`, CARTO's public demo
//! table that `notebooks/data.ipynb` queries, as both fakes serve it: 40
//! made-up cities, answering the notebook's two query shapes (its select
//! list, a `pop_max > @min` filter, the order by `pop_max` descending, a
//! `LIMIT`).

use serde_json::{Value, json};

/// The table's last name, as the fakes see it after FROM.
pub const TABLE: &str = "populated_places";

/// (name, country, pop_max, longitude, latitude), pop_max descending.
pub fn cities() -> Vec<(String, String, i64, f64, f64)> {
    (0..40)
        .map(|i| {
            let pop = 38_000_000 - i64::from(i) * 900_000;
            (
                format!("City {:02}", i + 1),
                ["Japan", "India", "Brazil", "Spain", "Kenya"][i as usize % 5].to_string(),
                pop,
                -170.0 + f64::from(i) * 8.5,
                -60.0 + f64::from(i) * 3.0,
            )
        })
        .collect()
}

/// Whether the query asks for the geometry as WKT (the wide shape).
fn wide(q: &str) -> bool {
    q.to_ascii_uppercase().contains("ST_ASTEXT")
}

/// The rows a query selects: filtered by `@min` (named parameter `min`)
/// when it says `pop_max > @min`, cut at its `LIMIT`.
fn selected(q: &str, min: Option<i64>) -> Vec<(String, String, i64, f64, f64)> {
    let upper = q.to_ascii_uppercase();
    let limit = upper
        .split_whitespace()
        .skip_while(|w| *w != "LIMIT")
        .nth(1)
        .and_then(|n| n.trim_end_matches(';').parse::<usize>().ok());
    cities()
        .into_iter()
        .filter(|c| !upper.contains("POP_MAX > @MIN") || min.is_none_or(|m| c.2 > m))
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}

fn wkt(lon: f64, lat: f64) -> String {
    format!("POINT({lon} {lat})")
}

/// The SQL API's answer: `{"rows", "schema"}` (the caller adds `meta`).
pub fn sql_api_answer(q: &str, params: Option<&Value>) -> (Vec<Value>, Value) {
    let min = params.and_then(|p| p.get("min")).and_then(Value::as_i64);
    let rows = selected(q, min)
        .into_iter()
        .map(|(name, country, pop, lon, lat)| {
            if wide(q) {
                json!({"name": name, "country": country, "pop_max": pop, "wkt": wkt(lon, lat)})
            } else {
                json!({"name": name, "pop_max": pop})
            }
        })
        .collect();
    let schema = if wide(q) {
        json!([
            {"name": "name", "type": "string"},
            {"name": "country", "type": "string"},
            {"name": "pop_max", "type": "number"},
            {"name": "wkt", "type": "string"},
        ])
    } else {
        json!([{"name": "name", "type": "string"}, {"name": "pop_max", "type": "number"}])
    };
    (rows, schema)
}

/// BigQuery's schema fields and wire rows (`{"f": [{"v": ...}]}`, every
/// scalar a string).
pub fn bigquery_table(q: &str) -> (Value, Vec<Value>) {
    let v = |x: String| json!({ "v": x });
    let rows = selected(q, None)
        .into_iter()
        .map(|(name, _, pop, lon, lat)| {
            json!({"f": [v(name), v(pop.to_string()), v(wkt(lon, lat))]})
        })
        .collect();
    let fields = json!([
        {"name": "name", "type": "STRING", "mode": "NULLABLE"},
        {"name": "pop_max", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "wkt", "type": "STRING", "mode": "NULLABLE"},
    ]);
    (fields, rows)
}
