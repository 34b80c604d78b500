//! A fake BigQuery REST API on loopback, for the CARTO Data Warehouse
//! client: `jobs.query` and `jobs.getQueryResults` as BigQuery serves them,
//! with BigQuery's JSON wire format and error bodies, and the CARTO DW tokens
//! of a [`FakeCarto`] as its only credentials.
//!
//! `base` stands for `https://bigquery.googleapis.com`:
//! - `POST {base}/bigquery/v2/projects/{projectId}/queries` (jobs.query)
//! - `GET {base}/bigquery/v2/projects/{projectId}/queries/{jobId}?location=..`
//!   (jobs.getQueryResults; `pageToken`, `startIndex`, `maxResults`,
//!   `timeoutMs`, `formatOptions.useInt64Timestamp`,
//!   `formatOptions.timestampOutputFormat`)
//! - `GET {base}/bigquery/v2/projects/{projectId}/datasets` (datasets.list:
//!   the one dataset, `fake`; `maxResults`, `pageToken`, `all`, `filter`)
//! - `GET {base}/bigquery/v2/projects/{projectId}/datasets/fake/tables/{tableId}`
//!   (tables.get: the schema, `numRows` and `numBytes` of the tables below;
//!   `selectedFields`, `view`)
//!
//! Every call takes Google's system parameters (`alt`, `$alt`, `fields`,
//! `prettyPrint`, `quotaUser`, `$.xgafv`) and refuses any other unknown one.
//!
//! What it checks, each failure answered as BigQuery does
//! (`{"error": {"code", "message", "errors": [{"message", "domain",
//! "reason", ...}], "status"}}`):
//! - the bearer token is a CARTO DW token not revoked (401 `authError`,
//!   `UNAUTHENTICATED`, with a `WWW-Authenticate` header; no token at all is
//!   401 `required`);
//! - the project is [`DW_PROJECT`] (403 `accessDenied`);
//! - jobs.query: `Content-Type: application/json`, a JSON object with only
//!   QueryRequest's fields (400 `invalid`, "Unknown name"), `query` (400
//!   `required`), `useLegacySql` present and `false` (the REST default is
//!   legacy SQL, which fails a standard-SQL query: 400 `invalidQuery` "[Try
//!   using standard SQL ...]"), a `location`, if given, that is the data's
//!   (404 `notFound`), well-formed `queryParameters` with `parameterMode`;
//! - getQueryResults: only the documented query parameters (400), the job
//!   exists and `location` names its location (404 `notFound`; stricter than
//!   BigQuery, which finds US and EU jobs without it), a `pageToken` of this
//!   job and not together with `startIndex` (400).
//!
//! Behaviour: jobs.query answers `"jobComplete": false` with a
//! `jobReference {projectId, jobId, location}` (unless
//! [`FakeBigQuery::complete_in_query`]); getQueryResults answers
//! `jobComplete: false` [`FakeBigQuery::set_pending_polls`] times per job,
//! then `jobComplete: true` with `schema`, `totalRows`, `totalBytesProcessed`,
//! `cacheHit` and the rows of one page (at most `maxResults` and at most
//! [`FakeBigQuery::set_page_size`] rows, default 2) with a `pageToken` while
//! more remain; a page without rows has no `rows` key, as in BigQuery.
//! Path segments and query values are read unescaped, as Google's front end
//! does; [`FakeBigQuery::set_location`] and
//! [`FakeBigQuery::set_id_prefixes`] make locations, job ids and page
//! tokens that a client must escape.
//!
//! Rows are `{"f": [{"v": ...}]}` in schema order; every scalar is a string
//! or null; a RECORD is `{"f": [...]}`; a REPEATED field an array of
//! `{"v": ...}` (never null: empty instead). TIMESTAMP is float seconds
//! since the epoch as BigQuery writes it ("1.709210096789012E9"), int64
//! microseconds with `useInt64Timestamp` or `timestampOutputFormat=INT64`,
//! or "2024-02-29T12:34:56.789012Z" with `ISO8601_STRING`; FLOAT64 as Java
//! writes doubles ("3.14159", "1.0E20", "NaN", "Infinity", "-Infinity");
//! BYTES base64; JSON as its text; NUMERIC and BIGNUMERIC as decimal
//! strings; GEOGRAPHY as WKT. Schema types are the names the REST API uses
//! in query results (INTEGER, FLOAT, BOOLEAN, RECORD; the others as in SQL).
//!
//! The queries it knows, by the table after `FROM` (`carto-dw-ac-fake.fake.x`
//! or `fake.x`, backticks optional):
//! - [`ALL_TYPES_SQL`]: every type, 5 rows ([`all_types_table`]);
//! - [`generated_sql`]`(n)`: `n` rows × 10 columns ([`generated_cells`]);
//! - [`PARAMETERS_SQL`]: the query parameters received, one row each;
//! - [`EMPTY_SQL`]: a schema and no rows;
//! - [`DIVISION_BY_ZERO_SQL`]: accepted, then the job fails: getQueryResults
//!   answers 400 `invalidQuery` "division by zero: 1 / 0";
//! - a first word other than SELECT or WITH ([`BAD_SQL`]): 400
//!   `invalidQuery` "Syntax error: ..." from jobs.query;
//! - any other table: 404 `notFound` "Not found: Table ...".

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{FakeCarto, Recorded, pairs, random_word};

/// The CARTO Data Warehouse project of the fake's account.
pub const DW_PROJECT: &str = "carto-dw-ac-fake";
/// Where its data (and so its jobs) are.
pub const LOCATION: &str = "US";

pub const ALL_TYPES_SQL: &str = "SELECT * FROM `carto-dw-ac-fake.fake.all_types`";
pub const PARAMETERS_SQL: &str = "SELECT * FROM `carto-dw-ac-fake.fake.parameters`";
pub const EMPTY_SQL: &str = "SELECT * FROM `carto-dw-ac-fake.fake.empty`";
pub const DIVISION_BY_ZERO_SQL: &str =
    "SELECT id, 1/0 AS boom FROM `carto-dw-ac-fake.fake.all_types`";
pub const BAD_SQL: &str = "SELEC id FROM `carto-dw-ac-fake.fake.all_types`";

/// The query of the generated table of `rows` rows.
pub fn generated_sql(rows: usize) -> String {
    format!("SELECT * FROM `carto-dw-ac-fake.fake.generated_{rows}`")
}

const STANDARD_SQL_HINT: &str = "[Try using standard SQL (https://cloud.google.com/bigquery/docs/reference/standard-sql/enabling-standard-sql)]";

// ---- the CARTO DW tokens ----

/// The CARTO Data Warehouse tokens (Google access tokens, in reality) the
/// fake CARTO handed out, and which of them BigQuery still accepts.
#[derive(Debug, Default)]
pub struct DwTokens {
    issued: Vec<(String, bool)>,
}

impl DwTokens {
    /// A new token, `dw-token-0001`, `dw-token-0002`, … (as long as the old
    /// fixed `dw-token-fake`).
    pub fn issue(&mut self) -> String {
        let token = format!("dw-token-{:04}", self.issued.len() + 1);
        self.issued.push((token.clone(), true));
        token
    }

    pub fn accepts(&self, token: &str) -> bool {
        self.issued.iter().any(|(t, ok)| t == token && *ok)
    }

    /// Every token issued so far stops working (as if it had expired);
    /// the next one issued works.
    pub fn revoke_all(&mut self) {
        for (_, ok) in &mut self.issued {
            *ok = false;
        }
    }

    pub fn issued(&self) -> Vec<String> {
        self.issued.iter().map(|(t, _)| t.clone()).collect()
    }
}

impl FakeCarto {
    /// The CARTO DW tokens `/v3/connections/carto-dw/token` handed out, in
    /// order.
    pub fn dw_tokens(&self) -> Vec<String> {
        self.dw_token_store().lock().unwrap().issued()
    }

    /// Every DW token issued so far is refused by the fake BigQuery from
    /// now on (401); a freshly fetched one works.
    pub fn revoke_dw_tokens(&self) {
        self.dw_token_store().lock().unwrap().revoke_all();
    }

    pub(crate) fn dw_token_store(&self) -> Arc<Mutex<DwTokens>> {
        self.state.lock().unwrap().dw.clone()
    }
}

// ---- tables ----

/// How TIMESTAMP values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Float seconds since the epoch, BigQuery's default: "1.709210096789012E9".
    Float64,
    /// Integer microseconds since the epoch: "1709210096789012".
    Int64,
    /// "2024-02-29T12:34:56.789012Z".
    Iso8601,
}

/// A table the fake can answer: BigQuery's schema `fields`, and its rows.
/// Canned rows hold every TIMESTAMP as integer microseconds (a string);
/// they are written in the requested format on the way out.
#[derive(Debug, Clone)]
pub struct Table {
    pub fields: Value,
    pub rows: Rows,
    pub total_bytes_processed: u64,
}

#[derive(Debug, Clone)]
pub enum Rows {
    /// Rows in wire format (`{"f": [...]}`), timestamps in microseconds.
    Canned(Vec<Value>),
    /// `n` rows of [`generated_cells`].
    Generated(usize),
}

impl Table {
    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::Canned(rows) => rows.len(),
            Rows::Generated(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` as it goes on the wire.
    pub fn wire_row(&self, i: usize, ts: TimestampFormat) -> Value {
        match &self.rows {
            Rows::Canned(rows) => render_row(self.fields.as_array().unwrap(), &rows[i], ts),
            Rows::Generated(_) => json!({
                "f": generated_cells(i, ts).into_iter().map(|v| json!({"v": v})).collect::<Vec<_>>()
            }),
        }
    }
}

fn field(name: &str, type_name: &str, mode: &str) -> Value {
    json!({"name": name, "type": type_name, "mode": mode})
}

fn record(name: &str, mode: &str, fields: Vec<Value>) -> Value {
    json!({"name": name, "type": "RECORD", "mode": mode, "fields": fields})
}

fn v(value: Value) -> Value {
    json!({ "v": value })
}

fn cells(values: Vec<Value>) -> Value {
    json!({ "f": values.into_iter().map(v).collect::<Vec<_>>() })
}

/// The schema of [`ALL_TYPES_SQL`]: `id` (INTEGER, REQUIRED), then one
/// NULLABLE column per type named after it — `int64`, `float64`, `numeric`,
/// `bignumeric`, `bool`, `string`, `bytes`, `date`, `time`, `datetime`,
/// `timestamp`, `geography`, `json` — then `record` (RECORD: `label`
/// STRING, `score` FLOAT, `inner` RECORD of `depth` INTEGER and `at`
/// TIMESTAMP), `int_array` (INTEGER, REPEATED) and `record_array` (RECORD,
/// REPEATED: `key` STRING, `value` INTEGER).
pub fn all_types_fields() -> Value {
    json!([
        field("id", "INTEGER", "REQUIRED"),
        field("int64", "INTEGER", "NULLABLE"),
        field("float64", "FLOAT", "NULLABLE"),
        field("numeric", "NUMERIC", "NULLABLE"),
        field("bignumeric", "BIGNUMERIC", "NULLABLE"),
        field("bool", "BOOLEAN", "NULLABLE"),
        field("string", "STRING", "NULLABLE"),
        field("bytes", "BYTES", "NULLABLE"),
        field("date", "DATE", "NULLABLE"),
        field("time", "TIME", "NULLABLE"),
        field("datetime", "DATETIME", "NULLABLE"),
        field("timestamp", "TIMESTAMP", "NULLABLE"),
        field("geography", "GEOGRAPHY", "NULLABLE"),
        field("json", "JSON", "NULLABLE"),
        record(
            "record",
            "NULLABLE",
            vec![
                field("label", "STRING", "NULLABLE"),
                field("score", "FLOAT", "NULLABLE"),
                record(
                    "inner",
                    "NULLABLE",
                    vec![
                        field("depth", "INTEGER", "NULLABLE"),
                        field("at", "TIMESTAMP", "NULLABLE"),
                    ],
                ),
            ],
        ),
        field("int_array", "INTEGER", "REPEATED"),
        record(
            "record_array",
            "REPEATED",
            vec![
                field("key", "STRING", "NULLABLE"),
                field("value", "INTEGER", "NULLABLE"),
            ],
        ),
    ])
}

/// Microseconds of the TIMESTAMPs of [`all_types_table`]: 2024-02-29
/// 12:34:56.789012 UTC, 1966-10-31 14:13:20 UTC (before the epoch), and
/// 2001-09-09 01:46:40.5 UTC.
pub const TS_LEAP_DAY: i64 = 1_709_210_096_789_012;
pub const TS_BEFORE_EPOCH: i64 = -100_000_000_000_000;
pub const TS_BILLENNIUM: i64 = 1_000_000_000_500_000;

/// The rows of [`ALL_TYPES_SQL`] (schema [`all_types_fields`]):
/// 1. ordinary values of every type, nested RECORDs, arrays of 3 and 2;
/// 2. NULL in every nullable column, empty arrays;
/// 3. extremes: the smallest INT64, NaN, tiny negative NUMERIC and
///    BIGNUMERIC, `false`, empty STRING and BYTES, 0001-01-01, midnight,
///    9999-12-31T23:59:59.999999, a TIMESTAMP before 1970, the JSON `null`
///    (text "null", unlike SQL NULL), a RECORD with NULL fields and a NULL
///    nested RECORD, a one-element array;
/// 4. the largest INT64, Infinity, the STRING "null", a JSON array, a
///    LINESTRING, an array holding a NULL-valued RECORD field;
/// 5. -Infinity for FLOAT64 and 1.0E20 inside the RECORD, text that needs
///    escaping, bytes 0xFF 0x00, a geometry collection.
pub fn all_types_table() -> Table {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let s = |x: &str| Value::from(x);
    let null = Value::Null;
    let rows = vec![
        cells(vec![
            s("1"),
            s("42"),
            s("3.14159"),
            s("123.456789"),
            s("578960446186580977117854925043439539266.34992332820282019728792003956564819967"),
            s("true"),
            s("Madrid"),
            s(&b64(b"hello\0world")),
            s("2024-02-29"),
            s("12:34:56.789012"),
            s("2024-02-29T12:34:56.789012"),
            s(&TS_LEAP_DAY.to_string()),
            s("POINT(-3.7038 40.4168)"),
            s(r#"{"a":1,"b":[true,null],"c":{"d":"e"}}"#),
            cells(vec![
                s("first"),
                s("0.5"),
                cells(vec![s("2"), s(&TS_BILLENNIUM.to_string())]),
            ]),
            json!([v(s("1")), v(s("2")), v(s("3"))]),
            json!([
                v(cells(vec![s("a"), s("1")])),
                v(cells(vec![s("b"), s("-2")]))
            ]),
        ]),
        cells(vec![
            s("2"),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            null.clone(),
            json!([]),
            json!([]),
        ]),
        cells(vec![
            s("3"),
            s("-9223372036854775808"),
            s("NaN"),
            s("-0.000000001"),
            s("-0.00000000000000000000000000000000000001"),
            s("false"),
            s(""),
            s(""),
            s("0001-01-01"),
            s("00:00:00"),
            s("9999-12-31T23:59:59.999999"),
            s(&TS_BEFORE_EPOCH.to_string()),
            s("POLYGON((0 0, 1 0, 1 1, 0 0))"),
            s("null"),
            cells(vec![null.clone(), s("Infinity"), null.clone()]),
            json!([v(s("0"))]),
            json!([v(cells(vec![s("only"), null.clone()]))]),
        ]),
        cells(vec![
            s("4"),
            s("9223372036854775807"),
            s("Infinity"),
            s("99999999999999999999999999999.999999999"),
            s("0"),
            s("true"),
            s("null"),
            s(&b64(&[0u8])),
            s("1970-01-01"),
            s("23:59:59.999999"),
            s("1970-01-01T00:00:00"),
            s("0"),
            s("LINESTRING(0 0, 1 1, 2 1)"),
            s(r#"[1,"two",3.5]"#),
            cells(vec![
                s("fourth"),
                s("-0.25"),
                cells(vec![null.clone(), null.clone()]),
            ]),
            json!([v(s("-1")), v(s("9223372036854775807"))]),
            json!([v(cells(vec![null.clone(), null.clone()]))]),
        ]),
        cells(vec![
            s("5"),
            s("0"),
            s("-Infinity"),
            s("0.1"),
            s("1.5"),
            s("false"),
            s("Zürich \"quoted\" <b>&</b> \\ 日本 \u{1F600}"),
            s(&b64(&[0xFF, 0x00])),
            s("2000-02-29"),
            s("06:07:08"),
            s("2000-02-29T06:07:08"),
            s(&TS_BILLENNIUM.to_string()),
            s("GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1))"),
            s(r#"{"nested":{"deeper":{"deepest":[{}]}}}"#),
            cells(vec![
                s("fifth"),
                s("1.0E20"),
                cells(vec![s("-7"), s(&TS_BEFORE_EPOCH.to_string())]),
            ]),
            json!([v(s("5")), v(s("5"))]),
            json!([v(cells(vec![s("x"), s("0")]))]),
        ]),
    ];
    Table {
        fields: all_types_fields(),
        rows: Rows::Canned(rows),
        total_bytes_processed: 1234,
    }
}

/// The schema of the generated tables: `id` INTEGER, `name` STRING,
/// `value` FLOAT, `flag` BOOLEAN, `day` DATE, `at` TIMESTAMP, `amount`
/// NUMERIC, `geom` GEOGRAPHY, `category` STRING, `note` STRING.
pub fn generated_fields() -> Value {
    json!([
        field("id", "INTEGER", "NULLABLE"),
        field("name", "STRING", "NULLABLE"),
        field("value", "FLOAT", "NULLABLE"),
        field("flag", "BOOLEAN", "NULLABLE"),
        field("day", "DATE", "NULLABLE"),
        field("at", "TIMESTAMP", "NULLABLE"),
        field("amount", "NUMERIC", "NULLABLE"),
        field("geom", "GEOGRAPHY", "NULLABLE"),
        field("category", "STRING", "NULLABLE"),
        field("note", "STRING", "NULLABLE"),
    ])
}

/// The microseconds of row `i`'s `at`.
pub fn generated_micros(i: usize) -> i64 {
    1_700_000_000_000_000 + i as i64 * 1_000_123
}

/// The cells (the `v`s) of row `i` (from 0) of a generated table: `id` =
/// i + 1, `name` "name {i}", `value` i / 8, `flag` i even, `day` 2000-01-01
/// plus i % 3650 days, `at` [`generated_micros`], `amount` i / 100 with two
/// decimals, `geom` a POINT, `category` "a".."d", `note` NULL every tenth
/// row (i % 10 == 9), else "note {i}".
pub fn generated_cells(i: usize, ts: TimestampFormat) -> Vec<Value> {
    let days_2000 = 10_957; // 2000-01-01 since the epoch
    let (y, m, d) = civil_from_days(days_2000 + (i % 3650) as i64);
    vec![
        Value::from((i + 1).to_string()),
        Value::from(format!("name {i}")),
        Value::from(java_double(i as f64 / 8.0)),
        Value::from(if i.is_multiple_of(2) { "true" } else { "false" }),
        Value::from(format!("{y:04}-{m:02}-{d:02}")),
        Value::from(timestamp(generated_micros(i), ts)),
        Value::from(format!("{}.{:02}", i / 100, i % 100)),
        Value::from(format!(
            "POINT({} {})",
            (i % 360) as i64 - 180,
            (i % 180) as i64 - 90
        )),
        Value::from(["a", "b", "c", "d"][i % 4]),
        if i % 10 == 9 {
            Value::Null
        } else {
            Value::from(format!("note {i}"))
        },
    ]
}

fn parameters_fields() -> Value {
    json!([
        field("name", "STRING", "NULLABLE"),
        field("type", "STRING", "NULLABLE"),
        field("value", "STRING", "NULLABLE"),
    ])
}

/// One row per query parameter: its `name` (NULL when positional), and
/// its `parameterType` and `parameterValue` as JSON text.
fn parameters_table(params: &[Value]) -> Table {
    let rows = params
        .iter()
        .map(|p| {
            cells(vec![
                p.get("name").cloned().unwrap_or(Value::Null),
                Value::from(p["parameterType"].to_string()),
                Value::from(p["parameterValue"].to_string()),
            ])
        })
        .collect();
    Table {
        fields: parameters_fields(),
        rows: Rows::Canned(rows),
        total_bytes_processed: 0,
    }
}

fn empty_table() -> Table {
    Table {
        fields: json!([field("id", "INTEGER", "NULLABLE")]),
        rows: Rows::Canned(Vec::new()),
        total_bytes_processed: 0,
    }
}

/// Writes a canned row's TIMESTAMPs (microseconds) in `ts`, walking the
/// schema through RECORDs and REPEATED fields.
fn render_row(fields: &[Value], row: &Value, ts: TimestampFormat) -> Value {
    let values = row["f"].as_array().unwrap();
    let f: Vec<Value> = fields
        .iter()
        .zip(values)
        .map(|(field, cell)| v(render_value(field, &cell["v"], ts, true)))
        .collect();
    json!({ "f": f })
}

fn render_value(field: &Value, value: &Value, ts: TimestampFormat, whole: bool) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    if whole && field["mode"] == "REPEATED" {
        let items = value.as_array().unwrap();
        return Value::Array(
            items
                .iter()
                .map(|item| v(render_value(field, &item["v"], ts, false)))
                .collect(),
        );
    }
    match field["type"].as_str().unwrap() {
        "RECORD" => render_row(field["fields"].as_array().unwrap(), value, ts),
        "TIMESTAMP" => {
            let micros: i64 = value.as_str().unwrap().parse().unwrap();
            Value::from(timestamp(micros, ts))
        }
        _ => value.clone(),
    }
}

/// A TIMESTAMP in the requested format.
pub fn timestamp(micros: i64, ts: TimestampFormat) -> String {
    match ts {
        TimestampFormat::Int64 => micros.to_string(),
        TimestampFormat::Float64 => java_double(micros as f64 / 1e6),
        TimestampFormat::Iso8601 => {
            let secs = micros.div_euclid(1_000_000);
            let frac = micros.rem_euclid(1_000_000);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let s = secs.rem_euclid(86_400);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
                s / 3600,
                s / 60 % 60,
                s % 60
            )
        }
    }
}

/// A double as Java's `Double.toString` writes it, as BigQuery does:
/// "3.14159", "1.0E20", "1.709210096789012E9", "NaN", "Infinity".
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if (1e-3..1e7).contains(&x.abs()) {
        let s = format!("{x}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{x:E}");
    let (mantissa, exponent) = s.split_once('E').unwrap();
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ---- the server ----

struct Job {
    project: String,
    location: String,
    table: Arc<Table>,
    /// getQueryResults answers still to say `jobComplete: false`.
    pending: u32,
    /// The error the job ends with, if it fails.
    failure: Option<String>,
}

struct State {
    requests: Vec<Recorded>,
    jobs: HashMap<String, Job>,
    /// Page token → (job id, first row).
    page_tokens: HashMap<String, (String, usize)>,
    page_size: usize,
    pending_polls: u32,
    complete_in_query: bool,
    /// The next requests answered with these statuses, whatever they ask.
    faults: VecDeque<u16>,
    /// Requests (by their index among all requests) answered with a status.
    faults_at: HashMap<usize, u16>,
    /// The location of new jobs.
    location: String,
    /// How new job ids and page tokens start.
    job_id_prefix: String,
    page_token_prefix: String,
    /// The page tokens handed out, in order.
    page_tokens_issued: Vec<String>,
}

pub struct FakeBigQuery {
    /// `http://127.0.0.1:PORT`, standing for `https://bigquery.googleapis.com`.
    pub base: String,
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    dw: Arc<Mutex<DwTokens>>,
}

type Answer = (u16, Value);

impl FakeBigQuery {
    /// A fake BigQuery with tokens of its own ([`issue_dw_token`](Self::issue_dw_token)).
    pub fn start() -> FakeBigQuery {
        Self::serve(Arc::default())
    }

    /// A fake BigQuery that accepts the DW tokens `fake` hands out (and
    /// not revoked).
    pub fn start_for(fake: &FakeCarto) -> FakeBigQuery {
        Self::serve(fake.dw_token_store())
    }

    fn serve(dw: Arc<Mutex<DwTokens>>) -> FakeBigQuery {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind fake BigQuery"));
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            jobs: HashMap::new(),
            page_tokens: HashMap::new(),
            page_size: 2,
            pending_polls: 0,
            complete_in_query: false,
            faults: VecDeque::new(),
            faults_at: HashMap::new(),
            location: LOCATION.into(),
            job_id_prefix: "job_".into(),
            page_token_prefix: "BH".into(),
            page_tokens_issued: Vec::new(),
        }));
        let bq = FakeBigQuery {
            base: format!("http://127.0.0.1:{port}"),
            server: server.clone(),
            state: state.clone(),
            dw: dw.clone(),
        };
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let (state, dw) = (state.clone(), dw.clone());
                std::thread::spawn(move || handle(request, &state, &dw));
            }
        });
        bq
    }

    /// A DW token this fake accepts (for a fake started without CARTO).
    pub fn issue_dw_token(&self) -> String {
        self.dw.lock().unwrap().issue()
    }

    /// At most this many rows per page, whatever `maxResults` asks (BigQuery's
    /// 10 MB limit). Default 2.
    pub fn set_page_size(&self, rows: usize) {
        assert!(rows > 0);
        self.state.lock().unwrap().page_size = rows;
    }

    /// getQueryResults answers `jobComplete: false` this many times for each
    /// new job before the results. Default 0.
    pub fn set_pending_polls(&self, polls: u32) {
        self.state.lock().unwrap().pending_polls = polls;
    }

    /// jobs.query itself answers complete, with the first page (when no
    /// pending polls are set), as BigQuery does for quick queries.
    pub fn complete_in_query(&self, complete: bool) {
        self.state.lock().unwrap().complete_in_query = complete;
    }

    /// The next `count` requests are answered `status` as BigQuery writes
    /// it (500 and 503 `backendError`, 429 and 403 `rateLimitExceeded`).
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut s = self.state.lock().unwrap();
        s.faults.extend(std::iter::repeat_n(status, count));
    }

    /// Request number `index` (from 0, counting every request this fake
    /// received) is answered `status` as [`fail_next`](Self::fail_next)
    /// writes it (401 as an expired token).
    pub fn fail_request(&self, index: usize, status: u16) {
        self.state.lock().unwrap().faults_at.insert(index, status);
    }

    /// New jobs run in `location` instead of [`LOCATION`]; getQueryResults
    /// must name it.
    pub fn set_location(&self, location: &str) {
        self.state.lock().unwrap().location = location.into();
    }

    /// New job ids start with `prefix` instead of `job_`, page tokens with
    /// `page_token_prefix` instead of `BH` (characters that a URL must
    /// escape included: the fake reads its path segments and query values
    /// unescaped).
    pub fn set_id_prefixes(&self, job_prefix: &str, page_token_prefix: &str) {
        let mut s = self.state.lock().unwrap();
        s.job_id_prefix = job_prefix.into();
        s.page_token_prefix = page_token_prefix.into();
    }

    /// The page tokens handed out so far, in order.
    pub fn page_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().page_tokens_issued.clone()
    }

    /// Every request, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The jobs.query requests.
    pub fn query_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/queries"))
            .collect()
    }

    /// The getQueryResults requests.
    pub fn results_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains("/queries/"))
            .collect()
    }
}

impl Drop for FakeBigQuery {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn handle(mut request: tiny_http::Request, state: &Mutex<State>, dw: &Mutex<DwTokens>) {
    let r = Recorded {
        // A JSON API: its body is no form.
        form: Vec::new(),
        ..Recorded::from_request(&mut request)
    };
    let fault = {
        let mut s = state.lock().unwrap();
        let index = s.requests.len();
        s.requests.push(r.clone());
        s.faults_at.remove(&index).or_else(|| s.faults.pop_front())
    };
    let (status, body) = match fault {
        Some(status) => fault_answer(status),
        None => route(&r, state, dw),
    };
    let mut response = tiny_http::Response::from_string(body.to_string()).with_status_code(status);
    response.add_header(
        tiny_http::Header::from_bytes("Content-Type", "application/json; charset=UTF-8").unwrap(),
    );
    if status == 401 {
        response.add_header(
            tiny_http::Header::from_bytes(
                "WWW-Authenticate",
                r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#,
            )
            .unwrap(),
        );
    }
    let _ = request.respond(response);
}

/// BigQuery's error body.
pub fn error_body(code: u16, status: &str, reason: &str, message: &str, extra: Value) -> Value {
    let mut detail = json!({"message": message, "domain": "global", "reason": reason});
    if let (Value::Object(detail), Value::Object(extra)) = (&mut detail, extra) {
        detail.extend(extra);
    }
    json!({"error": {"code": code, "message": message, "errors": [detail], "status": status}})
}

fn err(code: u16, status: &str, reason: &str, message: &str) -> Answer {
    (code, error_body(code, status, reason, message, json!({})))
}

fn invalid_query(message: &str) -> Answer {
    (
        400,
        error_body(
            400,
            "INVALID_ARGUMENT",
            "invalidQuery",
            message,
            json!({"location": "q", "locationType": "parameter"}),
        ),
    )
}

fn invalid(message: &str) -> Answer {
    err(400, "INVALID_ARGUMENT", "invalid", message)
}

fn fault_answer(status: u16) -> Answer {
    match status {
        401 => err(
            401,
            "UNAUTHENTICATED",
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        ),
        500 => err(
            500,
            "INTERNAL",
            "backendError",
            "Error encountered during execution. Retrying may solve the problem.",
        ),
        503 => err(
            503,
            "UNAVAILABLE",
            "backendError",
            "The service is currently unavailable.",
        ),
        429 => err(
            429,
            "RESOURCE_EXHAUSTED",
            "rateLimitExceeded",
            "Exceeded rate limits: too many api requests per user per method for this user_method.",
        ),
        403 => err(
            403,
            "PERMISSION_DENIED",
            "rateLimitExceeded",
            "Exceeded rate limits: too many concurrent queries for this project_and_region.",
        ),
        other => err(other, "UNKNOWN", "internalError", "Internal error."),
    }
}

/// A path segment unescaped (`%2F` is a `/` inside the segment).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(r: &Recorded, state: &Mutex<State>, dw: &Mutex<DwTokens>) -> Answer {
    let decoded: Vec<String> = r
        .path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let (project, call) = match (r.method.as_str(), segments.as_slice()) {
        ("POST", ["bigquery", "v2", "projects", project, "queries"]) => (*project, Call::Query),
        ("GET", ["bigquery", "v2", "projects", project, "queries", job]) => {
            (*project, Call::Results(job))
        }
        ("GET", ["bigquery", "v2", "projects", project, "datasets"]) => {
            (*project, Call::ListDatasets)
        }
        (
            "GET",
            [
                "bigquery",
                "v2",
                "projects",
                project,
                "datasets",
                dataset,
                "tables",
                table,
            ],
        ) => (*project, Call::GetTable(dataset, table)),
        _ => {
            return err(
                404,
                "NOT_FOUND",
                "notFound",
                &format!("The requested URL {} was not found on this server.", r.path),
            );
        }
    };
    match r.bearer() {
        None => {
            return (
                401,
                error_body(
                    401,
                    "UNAUTHENTICATED",
                    "required",
                    "Request is missing required authentication credential. Expected OAuth 2 \
                     access token, login cookie or other valid authentication credential. See \
                     https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    json!({"location": "Authorization", "locationType": "header"}),
                ),
            );
        }
        Some(token) if !dw.lock().unwrap().accepts(token) => {
            return (
                401,
                error_body(
                    401,
                    "UNAUTHENTICATED",
                    "authError",
                    "Request had invalid authentication credentials. Expected OAuth 2 access \
                     token, login cookie or other valid authentication credential. See \
                     https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    json!({"location": "Authorization", "locationType": "header"}),
                ),
            );
        }
        Some(_) => {}
    }
    if project != DW_PROJECT {
        return err(
            403,
            "PERMISSION_DENIED",
            "accessDenied",
            &format!(
                "Access Denied: Project {project}: User does not have {} permission in \
                 project {project}.",
                call.permission()
            ),
        );
    }
    match call {
        Call::Query => jobs_query(r, state),
        Call::Results(job_id) => get_query_results(r, state, job_id),
        Call::ListDatasets => list_datasets(r, state),
        Call::GetTable(dataset, table) => get_table(r, state, dataset, table),
    }
}

/// The calls the fake answers.
enum Call<'a> {
    /// jobs.query
    Query,
    /// jobs.getQueryResults of a job
    Results(&'a str),
    /// datasets.list
    ListDatasets,
    /// tables.get of a dataset's table
    GetTable(&'a str, &'a str),
}

impl Call<'_> {
    /// The IAM permission BigQuery names when the project refuses it.
    fn permission(&self) -> &'static str {
        match self {
            Call::Query | Call::Results(_) => "bigquery.jobs.create",
            Call::ListDatasets => "bigquery.datasets.list",
            Call::GetTable(..) => "bigquery.tables.get",
        }
    }
}

/// Google's system parameters, which every call takes (`$alt` is how
/// Google's Rust clients write `alt`: `$alt=json;enum-encoding=int`).
const SYSTEM_PARAMETERS: &[&str] = &[
    "alt",
    "$alt",
    "fields",
    "prettyPrint",
    "quotaUser",
    "$.xgafv",
];

/// A 400 for the first query parameter that is neither one of `known` nor a
/// system parameter, as BigQuery words it.
fn unknown_parameter(r: &Recorded, known: &[&str]) -> Option<Answer> {
    let (unknown, _) = r
        .query
        .iter()
        .find(|(k, _)| !known.contains(&k.as_str()) && !SYSTEM_PARAMETERS.contains(&k.as_str()))?;
    Some(invalid(&format!(
        "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot bind query \
         parameter. Field '{unknown}' could not be found in request message."
    )))
}

/// datasets.list: the one dataset of the fake's project, `fake`, in the
/// data's location; a non-empty `pageToken` is none this fake gave.
fn list_datasets(r: &Recorded, state: &Mutex<State>) -> Answer {
    if let Some(answer) = unknown_parameter(r, &["maxResults", "pageToken", "all", "filter"]) {
        return answer;
    }
    if let Some(token) = r.query_value("pageToken").filter(|t| !t.is_empty()) {
        return invalid(&format!("Invalid page token: {token}"));
    }
    let location = state.lock().unwrap().location.clone();
    (
        200,
        json!({
            "kind": "bigquery#datasetList",
            "etag": random_word(),
            "datasets": [{
                "kind": "bigquery#dataset",
                "id": format!("{DW_PROJECT}:fake"),
                "datasetReference": {"datasetId": "fake", "projectId": DW_PROJECT},
                "location": location,
                "type": "DEFAULT",
            }],
        }),
    )
}

/// tables.get: the metadata of a table of dataset `fake` (the tables the
/// queries read, [`ALL_TYPES_SQL`]'s `all_types`, `empty`,
/// `generated_<rows>`): its schema, rows and bytes.
fn get_table(r: &Recorded, state: &Mutex<State>, dataset: &str, table_id: &str) -> Answer {
    if let Some(answer) = unknown_parameter(r, &["selectedFields", "view"]) {
        return answer;
    }
    if dataset != "fake" {
        return err(
            404,
            "NOT_FOUND",
            "notFound",
            &format!("Not found: Dataset {DW_PROJECT}:{dataset}"),
        );
    }
    let Some(table) = table_named(table_id, &[]).filter(|_| table_id != "parameters") else {
        return err(
            404,
            "NOT_FOUND",
            "notFound",
            &format!("Not found: Table {DW_PROJECT}:{dataset}.{table_id}"),
        );
    };
    let location = state.lock().unwrap().location.clone();
    (
        200,
        json!({
            "kind": "bigquery#table",
            "etag": random_word(),
            "id": format!("{DW_PROJECT}:{dataset}.{table_id}"),
            "selfLink": format!(
                "https://bigquery.googleapis.com/bigquery/v2/projects/{DW_PROJECT}/datasets/{dataset}/tables/{table_id}"
            ),
            "tableReference": {"projectId": DW_PROJECT, "datasetId": dataset, "tableId": table_id},
            "schema": {"fields": table.fields},
            "numBytes": table.total_bytes_processed.to_string(),
            "numRows": table.len().to_string(),
            "creationTime": "1709210096789",
            "lastModifiedTime": "1709210096789",
            "type": "TABLE",
            "location": location,
        }),
    )
}

const QUERY_REQUEST_FIELDS: &[&str] = &[
    "kind",
    "query",
    "maxResults",
    "defaultDataset",
    "timeoutMs",
    "destinationEncryptionConfiguration",
    "dryRun",
    "preserveNulls",
    "useQueryCache",
    "useLegacySql",
    "parameterMode",
    "queryParameters",
    "location",
    "formatOptions",
    "connectionProperties",
    "labels",
    "maximumBytesBilled",
    "requestId",
    "createSession",
    "jobCreationMode",
    "jobTimeoutMs",
    "reservation",
];

fn jobs_query(r: &Recorded, state: &Mutex<State>) -> Answer {
    let content_type = r.content_type().unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return invalid(&format!(
            "Invalid JSON payload received. The body was sent as {content_type:?}, not \
             application/json."
        ));
    }
    let body: Map<String, Value> = match serde_json::from_str(&r.body) {
        Ok(Value::Object(body)) => body,
        _ => return invalid("Invalid JSON payload received. Unexpected token."),
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !QUERY_REQUEST_FIELDS.contains(&k.as_str()))
    {
        return invalid(&format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        ));
    }
    let Some(sql) = body.get("query").and_then(Value::as_str) else {
        return err(
            400,
            "INVALID_ARGUMENT",
            "required",
            "Required parameter is missing",
        );
    };
    if body.get("useLegacySql") != Some(&Value::Bool(false)) {
        return invalid_query(&legacy_sql_error(sql));
    }
    let params = match check_parameters(&body) {
        Ok(params) => params,
        Err(answer) => return answer,
    };
    let max_results = match body.get("maxResults").map(as_u64) {
        None => None,
        Some(Some(n)) => Some(n as usize),
        Some(None) => return invalid("Invalid value at 'max_results' (TYPE_UINT32)"),
    };
    let ts = match body_timestamp_format(&body) {
        Ok(ts) => ts,
        Err(answer) => return answer,
    };
    let (pending, complete_in_query, location, job_prefix) = {
        let s = state.lock().unwrap();
        (
            s.pending_polls,
            s.complete_in_query,
            s.location.clone(),
            s.job_id_prefix.clone(),
        )
    };
    if let Some(asked) = body.get("location").and_then(Value::as_str)
        && !asked.eq_ignore_ascii_case(&location)
    {
        return err(
            404,
            "NOT_FOUND",
            "notFound",
            &format!("Not found: Dataset {DW_PROJECT}:fake was not found in location {asked}"),
        );
    }
    let table = match resolve(sql, &params) {
        Ok(table) => Arc::new(table),
        Err(answer) => return answer,
    };
    let failure = sql
        .replace(' ', "")
        .contains("1/0")
        .then(|| "division by zero: 1 / 0".to_string());
    let job_id = format!(
        "{job_prefix}{}",
        format!("{}{}", random_word(), random_word()).replace('-', "_")
    );
    let reference = json!({"projectId": DW_PROJECT, "jobId": job_id, "location": location});
    let mut s = state.lock().unwrap();
    s.jobs.insert(
        job_id.clone(),
        Job {
            project: DW_PROJECT.into(),
            location: location.clone(),
            table: table.clone(),
            pending,
            failure: failure.clone(),
        },
    );
    if complete_in_query && pending == 0 {
        if let Some(failure) = failure {
            return invalid_query(&failure);
        }
        let mut answer = page(&mut s, &job_id, &table, 0, max_results, ts);
        answer["kind"] = "bigquery#queryResponse".into();
        answer["jobReference"] = reference;
        return (200, answer);
    }
    (
        200,
        json!({"kind": "bigquery#queryResponse", "jobReference": reference, "jobComplete": false}),
    )
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn parse_format(
    use_int64: Option<bool>,
    output_format: Option<&str>,
) -> Result<TimestampFormat, Answer> {
    match output_format {
        Some("INT64") => Ok(TimestampFormat::Int64),
        Some("FLOAT64") => Ok(TimestampFormat::Float64),
        Some("ISO8601_STRING") => Ok(TimestampFormat::Iso8601),
        Some("TIMESTAMP_OUTPUT_FORMAT_UNSPECIFIED") | None => Ok(if use_int64 == Some(true) {
            TimestampFormat::Int64
        } else {
            TimestampFormat::Float64
        }),
        Some(other) => Err(invalid(&format!(
            "Invalid value at 'format_options.timestamp_output_format', \"{other}\""
        ))),
    }
}

fn body_timestamp_format(body: &Map<String, Value>) -> Result<TimestampFormat, Answer> {
    let options = body.get("formatOptions");
    parse_format(
        options
            .and_then(|o| o.get("useInt64Timestamp"))
            .and_then(Value::as_bool),
        options
            .and_then(|o| o.get("timestampOutputFormat"))
            .and_then(Value::as_str),
    )
}

/// What BigQuery says when a standard-SQL query is run as legacy SQL.
fn legacy_sql_error(sql: &str) -> String {
    match sql.split('`').nth(1) {
        Some(table) => format!("Invalid table name: `{table}` {STANDARD_SQL_HINT}."),
        None => format!(
            "Encountered \"{}\" at line 1, column 1. {STANDARD_SQL_HINT}.",
            sql.split_whitespace().next().unwrap_or("")
        ),
    }
}

/// `queryParameters` as BigQuery wants them: with `parameterMode` NAMED
/// (every one named) or POSITIONAL (none named), each with a
/// `parameterType.type` and a `parameterValue`.
fn check_parameters(body: &Map<String, Value>) -> Result<Vec<Value>, Answer> {
    let params = match body.get("queryParameters") {
        None => return Ok(Vec::new()),
        Some(Value::Array(params)) => params.clone(),
        Some(_) => {
            return Err(invalid(
                "Invalid JSON payload received. Invalid value at 'query_parameters'",
            ));
        }
    };
    if params.is_empty() {
        return Ok(params);
    }
    let mode = body.get("parameterMode").and_then(Value::as_str);
    let named = match mode {
        Some(m) if m.eq_ignore_ascii_case("NAMED") => true,
        Some(m) if m.eq_ignore_ascii_case("POSITIONAL") => false,
        _ => {
            return Err(invalid_query(
                "Query parameters are given but parameterMode is not NAMED or POSITIONAL",
            ));
        }
    };
    for p in &params {
        let has_type = p
            .get("parameterType")
            .and_then(|t| t.get("type"))
            .is_some_and(Value::is_string);
        if !has_type || !p.get("parameterValue").is_some_and(Value::is_object) {
            return Err(invalid_query(&format!(
                "Invalid query parameter {p}: parameterType.type and parameterValue are required"
            )));
        }
        let has_name = p
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if named != has_name {
            return Err(invalid_query(if named {
                "Named query parameters must all have a name"
            } else {
                "Positional query parameters cannot have a name"
            }));
        }
    }
    Ok(params)
}

/// The table a query reads.
fn resolve(sql: &str, params: &[Value]) -> Result<Table, Answer> {
    let first = sql.split_whitespace().next().unwrap_or("");
    if !first.eq_ignore_ascii_case("SELECT") && !first.eq_ignore_ascii_case("WITH") {
        return Err(invalid_query(&format!(
            "Syntax error: Unexpected identifier \"{first}\" at [1:1]"
        )));
    }
    let mut words = sql.split_whitespace();
    if words.find(|w| w.eq_ignore_ascii_case("FROM")).is_none() {
        return Err(invalid_query(
            "Unrecognized name: the fake BigQuery answers only queries FROM \
             fake.all_types, fake.parameters, fake.empty or fake.generated_<rows>",
        ));
    }
    let name = words
        .next()
        .unwrap_or("")
        .trim_matches(|c| c == '`' || c == ';');
    let parts: Vec<&str> = name.split('.').collect();
    let table = match parts.as_slice() {
        [DW_PROJECT, "fake", table] | ["fake", table] => *table,
        _ => "",
    };
    let not_found = || {
        err(
            404,
            "NOT_FOUND",
            "notFound",
            &format!("Not found: Table {name} was not found in location US"),
        )
    };
    if parts.last() == Some(&super::places::TABLE) {
        let (fields, rows) = super::places::bigquery_table(sql);
        return Ok(Table {
            fields,
            rows: Rows::Canned(rows),
            total_bytes_processed: 4_096,
        });
    }
    table_named(table, params).ok_or_else(not_found)
}

/// A table of dataset `fake` by its name.
fn table_named(table: &str, params: &[Value]) -> Option<Table> {
    match table {
        "all_types" => Some(all_types_table()),
        "parameters" => Some(parameters_table(params)),
        "empty" => Some(empty_table()),
        t => match t.strip_prefix("generated_").map(str::parse::<usize>) {
            Some(Ok(rows)) => Some(Table {
                fields: generated_fields(),
                rows: Rows::Generated(rows),
                total_bytes_processed: rows as u64 * 80,
            }),
            _ => None,
        },
    }
}

const RESULTS_PARAMETERS: &[&str] = &[
    "startIndex",
    "pageToken",
    "maxResults",
    "timeoutMs",
    "location",
    "formatOptions.useInt64Timestamp",
    "formatOptions.timestampOutputFormat",
    // Google's system parameters.
    "alt",
    "fields",
    "prettyPrint",
    "quotaUser",
    "$.xgafv",
];

fn get_query_results(r: &Recorded, state: &Mutex<State>, job_id: &str) -> Answer {
    if let Some((unknown, _)) = r
        .query
        .iter()
        .find(|(k, _)| !RESULTS_PARAMETERS.contains(&k.as_str()))
    {
        return invalid(&format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot bind query \
             parameter. Field '{unknown}' could not be found in request message."
        ));
    }
    let q = |k: &str| r.query_value(k);
    let ts = match parse_format(
        q("formatOptions.useInt64Timestamp").map(|v| v == "true"),
        q("formatOptions.timestampOutputFormat"),
    ) {
        Ok(ts) => ts,
        Err(answer) => return answer,
    };
    let max_results = match q("maxResults").map(str::parse::<u32>) {
        None => None,
        Some(Ok(n)) => Some(n as usize),
        Some(Err(_)) => return invalid("Invalid value at 'max_results' (TYPE_UINT32)"),
    };
    let start_index = match q("startIndex").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return invalid("Invalid value at 'start_index' (TYPE_UINT64)"),
    };
    let mut s = state.lock().unwrap();
    let not_found = || {
        err(
            404,
            "NOT_FOUND",
            "notFound",
            &format!("Not found: Job {DW_PROJECT}:{job_id}"),
        )
    };
    let Some(job) = s.jobs.get_mut(job_id) else {
        return not_found();
    };
    if !q("location").is_some_and(|l| l.eq_ignore_ascii_case(&job.location)) {
        return not_found();
    }
    let reference = json!({"projectId": job.project, "jobId": job_id, "location": job.location});
    if job.pending > 0 {
        job.pending -= 1;
        return (
            200,
            json!({
                "kind": "bigquery#getQueryResultsResponse",
                "etag": random_word(),
                "jobReference": reference,
                "jobComplete": false,
            }),
        );
    }
    if let Some(failure) = job.failure.clone() {
        return (
            400,
            error_body(
                400,
                "INVALID_ARGUMENT",
                "invalidQuery",
                &failure,
                json!({"location": "query", "locationType": "other"}),
            ),
        );
    }
    let table = job.table.clone();
    let start = match (q("pageToken"), start_index) {
        (Some(_), Some(_)) => {
            return invalid("pageToken and startIndex cannot both be given");
        }
        (Some(token), None) => match s.page_tokens.get(token) {
            Some((job, start)) if job == job_id => *start,
            _ => return invalid(&format!("Invalid page token: {token}")),
        },
        (None, Some(i)) => i,
        (None, None) => 0,
    };
    let mut answer = page(&mut s, job_id, &table, start, max_results, ts);
    answer["kind"] = "bigquery#getQueryResultsResponse".into();
    answer["etag"] = random_word().into();
    answer["jobReference"] = reference;
    (200, answer)
}

/// A complete answer's fields with the rows from `start`.
fn page(
    s: &mut State,
    job_id: &str,
    table: &Table,
    start: usize,
    max_results: Option<usize>,
    ts: TimestampFormat,
) -> Value {
    let total = table.len();
    let count = max_results
        .unwrap_or(usize::MAX)
        .min(s.page_size)
        .min(total.saturating_sub(start));
    let fields = table.fields.clone();
    let mut answer = json!({
        "schema": {"fields": fields},
        "totalRows": total.to_string(),
        "totalBytesProcessed": table.total_bytes_processed.to_string(),
        "jobComplete": true,
        "cacheHit": false,
    });
    if count > 0 {
        answer["rows"] = Value::Array(
            (start..start + count)
                .map(|i| table.wire_row(i, ts))
                .collect(),
        );
    }
    if start + count < total {
        let token = format!("{}{}{}", s.page_token_prefix, random_word(), random_word());
        s.page_tokens
            .insert(token.clone(), (job_id.to_string(), start + count));
        s.page_tokens_issued.push(token.clone());
        answer["pageToken"] = token.into();
    }
    answer
}
