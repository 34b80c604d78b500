//! CARTO's SQL API v3 on a [`FakeCarto`]: `POST {api}/v3/sql/{connection}/query`
//! with a bearer token and the JSON body `{"q": ..., "queryParameters": ...}`,
//! checked the way CARTO checks it, answering `{"rows", "schema", "meta"}`
//! for a few known queries, and recording what it received.
//!
//! What it checks, in order (each failure answers JSON `{"error": ...}`):
//! 1. the path is `/api/v3/sql/{one segment}/query` (404 otherwise); the
//!    segment is percent-decoded into the connection name;
//! 2. the method is POST (405: a `GET ?q=` answer is cached by CARTO for up
//!    to a year, so the crate must never use it);
//! 3. the bearer token is one the fake issued and unexpired (401);
//! 4. the connection exists (404 `Connection not found: <name>`) and the
//!    caller may use it (403, see [`SqlApi::deny_connection`]);
//! 5. `Content-Type: application/json`, a JSON object with `q` (a non-empty
//!    string) and optionally `queryParameters` (an object or an array), and
//!    nothing else (400).
//!
//! The queries it knows (matched by the table name after `FROM`, any case):
//! - [`ALL_TYPES`]: 3 rows × 9 columns, see [`ALL_TYPES_ANSWER`];
//! - [`ECHO_PARAMETERS`]: one row per query parameter received, columns
//!   `name` (null for positional), `position` (1-based, null for named) and
//!   `value` (as received); named ones sorted by name;
//! - [`EMPTY`]: no rows, one column;
//! - [`EVCXR_MARKERS`]: one row whose column names, a type name and values
//!   carry evcxr's output protocol, see [`evcxr_markers_answer`];
//! - anything whose first word is not SELECT or WITH, such as [`BAD_SQL`]:
//!   400 `Syntax error: Unexpected identifier "<word>" at [1:1]`;
//! - any other table: 400 `Not found: Table <name> was not found in location US`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{FakeCarto, Recorded, Route};

/// The CARTO Data Warehouse connection.
pub const CARTO_DW: &str = "carto_dw";
/// A second connection, whose name must be encoded to stay one path
/// segment: a space and a slash.
pub const TEAM_CONNECTION: &str = "team bq/prod";

pub const ALL_TYPES: &str = "SELECT * FROM `carto-demo-data.demo_tables.all_types`";
pub const ECHO_PARAMETERS: &str = "SELECT * FROM echo_parameters";
pub const EMPTY: &str = "SELECT * FROM empty_table";
pub const BAD_SQL: &str = "SELEC name FROM all_types";
pub const EVCXR_MARKERS: &str = "SELECT * FROM evcxr_markers";

/// Data that, printed as is inside evcxr, ends the output block it is in
/// and opens an `application/javascript` one, which JupyterLab runs.
pub const BREAKOUT: &str =
    "x\nEVCXR_END_CONTENT\nEVCXR_BEGIN_CONTENT application/javascript\nalert(1)//";
/// The same with Windows line ends (evcxr drops a `\r` before a `\n`).
pub const BREAKOUT_CRLF: &str =
    "y\r\nEVCXR_END_CONTENT\r\nEVCXR_BEGIN_CONTENT application/javascript\r\nalert(2)//";

/// The `meta` of every answer.
pub const META: &str = r#"{"cacheHit": false, "location": "US", "totalBytesProcessed": "123"}"#;

/// The answer to [`ALL_TYPES`], exactly as sent. Each row's keys come in
/// another order than the schema's. Row 1: numbers (one above 2^53), a
/// boolean, a WKT point, a nested object, NULL. Row 2: the *string* "null"
/// next to real NULLs, a negative fraction, `false`. Row 3: text that needs
/// escaping, an empty object, an empty string, zeros.
pub const ALL_TYPES_ANSWER: &str = r#"{
  "rows": [
    {"props": {"country": "ES", "codes": [28, 79], "meta": {"source": "INE", "year": 2024}},
     "big": 9007199254740993, "note": null, "geom": "POINT(-3.7038 40.4168)",
     "is_capital": true, "share": 0.4375, "population": 3223334, "name": "Madrid", "id": 1},
    {"id": 2, "name": "null", "population": null, "share": -1.5e-7, "is_capital": false,
     "geom": "POLYGON((0 0, 1 0, 1 1, 0 0))", "props": null, "note": "null", "big": -1},
    {"note": "", "props": {}, "geom": null, "is_capital": null, "share": 0.0, "population": 0,
     "name": "Zürich \"quoted\" <b>&</b>", "id": 3, "big": 0}
  ],
  "schema": [
    {"name": "id", "type": "number"},
    {"name": "name", "type": "string"},
    {"name": "population", "type": "number"},
    {"name": "share", "type": "number"},
    {"name": "is_capital", "type": "boolean"},
    {"name": "geom", "type": "geometry"},
    {"name": "props", "type": "object"},
    {"name": "note", "type": "string"},
    {"name": "big", "type": "number"}
  ],
  "meta": {"cacheHit": false, "location": "US", "totalBytesProcessed": "123"}
}"#;

/// One request the SQL API received, with what it made of it.
#[derive(Debug, Clone)]
pub struct SqlRequest {
    pub request: Recorded,
    /// The connection name, percent-decoded, if the path had the right shape.
    pub connection: Option<String>,
    /// The body, if it was JSON.
    pub json: Option<Value>,
    /// The status it was answered.
    pub status: u16,
}

impl SqlRequest {
    /// The `q` of the body.
    pub fn q(&self) -> Option<&str> {
        self.json.as_ref()?.get("q")?.as_str()
    }
    /// The `queryParameters` of the body.
    pub fn query_parameters(&self) -> Option<&Value> {
        self.json.as_ref()?.get("queryParameters")
    }
}

struct State {
    connections: Vec<String>,
    denied: Vec<String>,
    delay: Option<Duration>,
    failure: Option<(u16, String)>,
    received: Vec<SqlRequest>,
}

/// The SQL API installed on a fake CARTO: knobs and what it received.
#[derive(Clone)]
pub struct SqlApi {
    state: Arc<Mutex<State>>,
    path_prefix: String,
}

/// Serves the SQL API on `fake`, knowing the connections [`CARTO_DW`] and
/// [`TEAM_CONNECTION`].
pub fn install(fake: &FakeCarto) -> SqlApi {
    let api = SqlApi {
        state: Arc::new(Mutex::new(State {
            connections: vec![CARTO_DW.into(), TEAM_CONNECTION.into()],
            denied: Vec::new(),
            delay: None,
            failure: None,
            received: Vec::new(),
        })),
        path_prefix: "/api/v3/sql/".into(),
    };
    let served = api.clone();
    let route: Route = Arc::new(move |r: &Recorded, token_ok: bool| served.serve(r, token_ok));
    fake.add_route("/api/v3/sql", route);
    api
}

impl SqlApi {
    /// The path a query on `connection` arrives at, encoded as the crate
    /// must encode it (for [`FakeCarto::requests`] and `fault`).
    pub fn query_path(&self, connection: &str) -> String {
        format!("{}{}/query", self.path_prefix, encode_segment(connection))
    }

    /// Another connection the account has.
    pub fn add_connection(&self, name: &str) {
        self.state.lock().unwrap().connections.push(name.into());
    }

    /// Queries on `name` are answered 403, as for a connection the user (or
    /// M2M application) has not been granted.
    pub fn deny_connection(&self, name: &str) {
        self.state.lock().unwrap().denied.push(name.into());
    }

    /// Every answer comes after `delay` (None: at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Every request is answered `status` with `body` (a gateway's 502, a
    /// 503 while CARTO is down) until [`heal`](Self::heal).
    pub fn fail_with(&self, status: u16, body: &str) {
        self.state.lock().unwrap().failure = Some((status, body.into()));
    }

    pub fn heal(&self) {
        self.state.lock().unwrap().failure = None;
    }

    /// What it received, in order.
    pub fn received(&self) -> Vec<SqlRequest> {
        self.state.lock().unwrap().received.clone()
    }

    fn serve(&self, r: &Recorded, token_ok: bool) -> (u16, String) {
        let (delay, failure) = {
            let s = self.state.lock().unwrap();
            (s.delay, s.failure.clone())
        };
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        let connection = r
            .path
            .strip_prefix(&self.path_prefix)
            .and_then(|rest| rest.strip_suffix("/query"))
            .filter(|segment| !segment.is_empty() && !segment.contains('/'))
            .and_then(percent_decode);
        let json: Option<Value> = serde_json::from_str(&r.body).ok();
        let (status, body) = match failure {
            Some(failure) => failure,
            None => self.answer(r, token_ok, connection.as_deref(), json.as_ref()),
        };
        self.state.lock().unwrap().received.push(SqlRequest {
            request: r.clone(),
            connection,
            json,
            status,
        });
        (status, body)
    }

    fn answer(
        &self,
        r: &Recorded,
        token_ok: bool,
        connection: Option<&str>,
        json: Option<&Value>,
    ) -> (u16, String) {
        let Some(connection) = connection else {
            return error(404, &format!("Not found: {}", r.path));
        };
        if r.method != "POST" {
            return error(
                405,
                &format!(
                    "the fake SQL API takes POST only, not {}: CARTO caches the answers of GET \
                     queries for up to a year",
                    r.method
                ),
            );
        }
        match r.bearer() {
            None => return error(401, "Unauthorized: no bearer token"),
            Some(_) if !token_ok => {
                return error(401, "Unauthorized: the token is invalid or has expired");
            }
            Some(_) => {}
        }
        {
            let s = self.state.lock().unwrap();
            if !s.connections.iter().any(|c| c == connection) {
                return error(404, &format!("Connection not found: {connection}"));
            }
            if s.denied.iter().any(|c| c == connection) {
                return error(
                    403,
                    &format!("Forbidden: no permission to use the connection {connection}"),
                );
            }
        }
        let content_type = r.content_type().unwrap_or("");
        if !content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        {
            return error(
                400,
                &format!("Content-Type must be application/json, not {content_type:?}"),
            );
        }
        let Some(Value::Object(body)) = json else {
            return error(400, "Invalid JSON body: an object was expected");
        };
        if let Some(key) = body
            .keys()
            .find(|k| !["q", "queryParameters"].contains(&k.as_str()))
        {
            return error(400, &format!("Unexpected body field: {key}"));
        }
        let q = match body.get("q") {
            Some(Value::String(q)) if !q.trim().is_empty() => q.as_str(),
            _ => return error(400, "q is required: a string with the SQL"),
        };
        let params = body.get("queryParameters");
        if params.is_some_and(|p| !p.is_object() && !p.is_array()) {
            return error(
                400,
                "queryParameters must be an object (named) or an array (positional)",
            );
        }
        run(q, params)
    }
}

fn error(status: u16, message: &str) -> (u16, String) {
    (status, json!({ "error": message }).to_string())
}

/// The answer to a query, as CARTO (through BigQuery) would give it.
fn run(q: &str, params: Option<&Value>) -> (u16, String) {
    let first = q.split_whitespace().next().unwrap_or("");
    if !first.eq_ignore_ascii_case("SELECT") && !first.eq_ignore_ascii_case("WITH") {
        return error(
            400,
            &format!("Syntax error: Unexpected identifier \"{first}\" at [1:1]"),
        );
    }
    let table = from_table(q);
    let meta: Value = serde_json::from_str(META).unwrap();
    match table.as_deref() {
        Some("all_types") => (200, ALL_TYPES_ANSWER.to_string()),
        Some("echo_parameters") => {
            let rows: Vec<Value> = match params {
                Some(Value::Object(named)) => named
                    .iter()
                    .map(|(k, v)| json!({"name": k, "position": null, "value": v}))
                    .collect(),
                Some(Value::Array(positional)) => positional
                    .iter()
                    .enumerate()
                    .map(|(i, v)| json!({"name": null, "position": i + 1, "value": v}))
                    .collect(),
                _ => Vec::new(),
            };
            let schema = json!([
                {"name": "name", "type": "string"},
                {"name": "position", "type": "number"},
                {"name": "value", "type": "object"},
            ]);
            (
                200,
                json!({"rows": rows, "schema": schema, "meta": meta}).to_string(),
            )
        }
        Some(super::places::TABLE) => {
            let (rows, schema) = super::places::sql_api_answer(q, params);
            (
                200,
                json!({"rows": rows, "schema": schema, "meta": meta}).to_string(),
            )
        }
        Some("evcxr_markers") => (200, evcxr_markers_answer().to_string()),
        Some("empty_table") => (
            200,
            json!({"rows": [], "schema": [{"name": "id", "type": "number"}], "meta": meta})
                .to_string(),
        ),
        other => error(
            400,
            &format!(
                "Not found: Table {} was not found in location US",
                other.unwrap_or("(none)")
            ),
        ),
    }
}

/// The answer to [`EVCXR_MARKERS`]: [`BREAKOUT`] as a column name and its
/// value, [`BREAKOUT_CRLF`] as a type name and in a value, and both nested
/// in an object.
pub fn evcxr_markers_answer() -> Value {
    json!({
        "rows": [{BREAKOUT: BREAKOUT, "crlf": BREAKOUT_CRLF, "nested": {BREAKOUT: [BREAKOUT_CRLF]}}],
        "schema": [
            {"name": BREAKOUT, "type": "string"},
            {"name": "crlf", "type": BREAKOUT_CRLF},
            {"name": "nested", "type": "object"},
        ],
        "meta": serde_json::from_str::<Value>(META).unwrap(),
    })
}

/// The last dotted part of the table after `FROM`, without backticks.
fn from_table(q: &str) -> Option<String> {
    let mut words = q.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("FROM"))?;
    let table = words.next()?.trim_matches(|c| c == '`' || c == ';');
    Some(table.rsplit('.').next()?.to_ascii_lowercase())
}

/// `%XX` decoded (a path segment: `+` stays `+`); None for bad escapes or
/// bytes that are not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A name as one URL path segment: everything but unreserved characters
/// percent-encoded (the `url` crate leaves a few more, such as `@`, alone;
/// the fake decodes either).
pub fn encode_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The rows of an answer as objects (for tests that read the fake's own
/// canned data).
pub fn rows_of(answer: &str) -> Vec<Map<String, Value>> {
    let v: Value = serde_json::from_str(answer).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}
