//! CARTO's Maps API v3 and API Access Tokens on a loopback server of their
//! own (the API base URL of a map's session), checking what they are sent
//! the way CARTO does, recording every request, and answering a browser's
//! CORS preflight as a cross-origin page needs.
//!
//! - `POST /v3/tokens` with a bearer the [`FakeCarto`] issued: the body must
//!   hold `grants` (each exactly `connection_name` and `source`, not
//!   empty), `referers` (an array), `allowed_apis` `["maps"]` and an
//!   `expiration_date` in ISO 8601 UTC in the future (400 otherwise);
//!   answers `{"token": "scoped-..."}`. [`FakeMaps::refuse_tokens`] turns it
//!   into a 403 as for a role without the permission.
//! - `GET /v3/maps/{connection}/{query|table|tileset}` with `v=3.4`, a
//!   `client`, `q` (query) or `name`, the source's parameters
//!   (`spatialDataType`, `aggregationExp` for H3, `queryParameters` as
//!   JSON) and `Authorization: Bearer` of a scoped token that grants that
//!   connection and source, or of a session: answers `{nrows, schema,
//!   tilejson: {url: [data url]}}`.
//! - The data URL: a TileJSON whose absolute `tiles` template carries
//!   `formatTiles=mvt` (vector) and whose `bounds` are the data's.
//! - Tiles: MVT (`application/vnd.mapbox-vector-tile`) of [`places`], or
//!   CARTO's spatial tiles of [`H3_CELLS`].
//!
//! Queries it knows: [`PLACES_SQL`] and [`POPULATED_PLACES_SQL`] (vector,
//! both [`places`]), [`H3_SQL`] (H3). Anything
//! whose first word is not SELECT or WITH is a 400 with a syntax error, as
//! is any other table (not found).

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::closing_server::{ClosingServer, Reply};
use super::mvt::{self, Feature, Geometry};
use super::{FakeCarto, Recorded, random_word};

pub const CONNECTION: &str = "carto_dw";
pub const PLACES_SQL: &str = "SELECT geom, name, kind FROM `demo.places` WHERE kind != @skip";
/// What `notebooks/map.ipynb` draws: CARTO's demo places, with a parameter.
pub const POPULATED_PLACES_SQL: &str = "SELECT geom, name, pop_max FROM `carto-demo-data.demo_tables.populated_places` WHERE pop_max > @min";
pub const H3_SQL: &str = "SELECT h3, population FROM `carto-demo-data.demo_tables.derived_spatialfeatures_esp_h3res8_v1_yearly_v2`";
pub const H3_AGGREGATION: &str = "SUM(population) AS population";
pub const BAD_SQL: &str = "SELEC name FROM `demo.places`";
/// CARTO's words for [`BAD_SQL`].
pub const SYNTAX_ERROR: &str = "Syntax error: Unexpected identifier \"SELEC\" at [1:1]";

/// Two points (Madrid, Barcelona) and a rectangle (around Valencia).
pub fn places() -> Vec<Feature> {
    vec![
        Feature {
            geometry: Geometry::Point {
                lon: -3.7038,
                lat: 40.4168,
            },
            properties: vec![("name", "Madrid".into()), ("kind", "capital".into())],
        },
        Feature {
            geometry: Geometry::Point {
                lon: 2.1734,
                lat: 41.3851,
            },
            properties: vec![("name", "Barcelona".into()), ("kind", "city".into())],
        },
        Feature {
            geometry: Geometry::Rect {
                w: -1.2,
                s: 39.1,
                e: -0.2,
                n: 39.8,
            },
            properties: vec![("name", "Valencia area".into()), ("kind", "area".into())],
        },
    ]
}

/// Seven H3 cells of resolution 4 around Madrid (h3-js 4.4.0's
/// `gridDisk(latLngToCell(40.4168, -3.7038, 4), 1)`), their centres, and
/// the bounds of their outlines.
pub const H3_CELLS: [(&str, f64, f64); 7] = [
    ("84390cbffffffff", -3.6176, 40.3725),
    ("84390c9ffffffff", -4.1426, 40.4366),
    ("84390c1ffffffff", -3.9391, 40.0425),
    ("84390c3ffffffff", -3.4180, 39.9785),
    ("84390ddffffffff", -3.0959, 40.3064),
    ("84392b7ffffffff", -3.2941, 40.7005),
    ("84392b5ffffffff", -3.8197, 40.7666),
];
const H3_BOUNDS: [f64; 4] = [-4.4254, 39.7373, -2.8150, 41.0075];

/// A scoped token the fake made.
#[derive(Debug, Clone)]
pub struct Scoped {
    pub token: String,
    /// `(connection_name, source)`.
    pub grants: Vec<(String, String)>,
    pub expires: i64,
    /// The request's body as sent.
    pub body: Value,
}

struct Dataset {
    connection: String,
    source: String,
    h3: bool,
}

struct State {
    requests: Vec<Recorded>,
    scoped: Vec<Scoped>,
    datasets: Vec<Dataset>,
    refusal: Option<(u16, String)>,
}

/// The fake Maps API: its base URL is the session's API base URL.
pub struct FakeMaps {
    pub base: String,
    state: Arc<Mutex<State>>,
    recorded: Arc<Condvar>,
    _server: ClosingServer,
}

type Answer = (u16, Vec<u8>, &'static str);

impl FakeMaps {
    /// Serves on a free loopback port (a [`ClosingServer`]); session
    /// bearers are checked with `carto`'s tokens.
    pub fn start(carto: &FakeCarto) -> FakeMaps {
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            scoped: Vec::new(),
            datasets: Vec::new(),
            refusal: None,
        }));
        let recorded = Arc::new(Condvar::new());
        let accepts = carto.acceptor();
        let base: Arc<OnceLock<String>> = Arc::default();
        let (s, cv, b) = (state.clone(), recorded.clone(), base.clone());
        let server = ClosingServer::start(Arc::new(move |r: &Recorded| {
            s.lock().unwrap().requests.push(r.clone());
            cv.notify_all();
            let (status, body, content_type) =
                route(r, &s, b.get().map_or("", String::as_str), &*accepts);
            let headers = vec![
                ("Content-Type", content_type.to_string()),
                ("Access-Control-Allow-Origin", "*".into()),
                (
                    "Access-Control-Allow-Headers",
                    "authorization, content-type".into(),
                ),
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS".into()),
                ("Access-Control-Max-Age", "600".into()),
            ];
            Reply {
                status,
                body,
                headers,
            }
        }));
        let _ = base.set(server.base.clone());
        FakeMaps {
            base: server.base.clone(),
            state,
            recorded,
            _server: server,
        }
    }

    /// Token requests are answered `status` with CARTO's `error` text.
    pub fn refuse_tokens(&self, status: u16, error: &str) {
        self.state.lock().unwrap().refusal = Some((status, error.into()));
    }

    /// Every scoped token made so far expires now, as a saved map's does
    /// a day later.
    pub fn expire_scoped_tokens(&self) {
        for t in &mut self.state.lock().unwrap().scoped {
            t.expires = now_unix() - 1;
        }
    }

    pub fn scoped_tokens(&self) -> Vec<Scoped> {
        self.state.lock().unwrap().scoped.clone()
    }

    /// Every request, in order (preflights included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until a request satisfies `done`, or fails after `timeout`.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&Recorded) -> bool) -> Recorded {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        loop {
            if let Some(r) = s.requests.iter().find(|r| done(r)) {
                return r.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the awaited request did not come within {timeout:?}"
            );
            s = self.recorded.wait_timeout(s, left).unwrap().0;
        }
    }
}

fn json_answer(status: u16, value: Value) -> Answer {
    (status, value.to_string().into_bytes(), "application/json")
}

fn error(status: u16, message: &str) -> Answer {
    json_answer(status, json!({ "error": message }))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn route(r: &Recorded, state: &Mutex<State>, base: &str, accepts: &dyn Fn(&str) -> bool) -> Answer {
    if r.method == "OPTIONS" {
        return (204, Vec::new(), "text/plain");
    }
    let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    match (r.method.as_str(), parts.as_slice()) {
        ("POST", ["v3", "tokens"]) => create_token(r, state, accepts),
        ("GET", ["v3", "maps", "data", id]) => tilejson(r, state, base, id, accepts),
        ("GET", ["v3", "maps", "tiles", id, rest @ ..]) => tile(r, state, id, rest, accepts),
        ("GET", ["v3", "maps", connection, kind]) => {
            instantiate(r, state, base, connection, kind, accepts)
        }
        _ => error(404, &format!("Not found: {} {}", r.method, r.path)),
    }
}

/// `2026-12-04T12:00:00Z` (a fraction of seconds allowed) as Unix seconds.
pub fn parse_utc(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let time = time.split('.').next()?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if *m <= 2 { (y - 1, m + 9) } else { (*y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn create_token(r: &Recorded, state: &Mutex<State>, accepts: &dyn Fn(&str) -> bool) -> Answer {
    if !r.bearer().is_some_and(accepts) {
        return error(401, "Unauthorized: a valid bearer token is required");
    }
    if let Some((status, message)) = state.lock().unwrap().refusal.clone() {
        return error(status, &message);
    }
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&r.body) else {
        return error(400, "the body must be a JSON object");
    };
    if let Some(key) = body
        .keys()
        .find(|k| !["grants", "referers", "allowed_apis", "expiration_date"].contains(&k.as_str()))
    {
        return error(400, &format!("unexpected field {key}"));
    }
    let grants: Option<Vec<(String, String)>> = body
        .get("grants")
        .and_then(Value::as_array)
        .filter(|g| !g.is_empty())
        .and_then(|g| {
            g.iter()
                .map(|grant| {
                    let o = grant.as_object().filter(|o| o.len() == 2)?;
                    let c = o
                        .get("connection_name")?
                        .as_str()
                        .filter(|s| !s.is_empty())?;
                    let s = o.get("source")?.as_str().filter(|s| !s.is_empty())?;
                    Some((c.to_string(), s.to_string()))
                })
                .collect()
        });
    let Some(grants) = grants else {
        return error(
            400,
            "grants must be a non-empty array of {connection_name, source}",
        );
    };
    if !body.get("referers").is_some_and(Value::is_array) {
        return error(400, "referers must be an array");
    }
    if body.get("allowed_apis") != Some(&json!(["maps"])) {
        return error(400, "allowed_apis must be [\"maps\"] for a map's token");
    }
    let Some(expires) = body
        .get("expiration_date")
        .and_then(Value::as_str)
        .and_then(parse_utc)
    else {
        return error(400, "expiration_date must be an ISO 8601 UTC date");
    };
    if expires <= now_unix() {
        return error(400, "expiration_date is in the past");
    }
    let token = format!("scoped-{}{}", random_word(), random_word());
    state.lock().unwrap().scoped.push(Scoped {
        token: token.clone(),
        grants,
        expires,
        body: Value::Object(body.clone()),
    });
    let mut answer = body;
    answer.insert("token".into(), json!(token));
    json_answer(200, Value::Object(answer))
}

/// Whether the request's bearer may read `source` on `connection`: a
/// scoped token granting it, unexpired, or a session's token.
fn may_read(
    r: &Recorded,
    state: &Mutex<State>,
    connection: &str,
    source: &str,
    accepts: &dyn Fn(&str) -> bool,
) -> Result<(), Answer> {
    let Some(bearer) = r.bearer() else {
        return Err(error(401, "Unauthorized: no bearer token"));
    };
    if accepts(bearer) {
        return Ok(());
    }
    let s = state.lock().unwrap();
    let Some(scoped) = s.scoped.iter().find(|t| t.token == bearer) else {
        return Err(error(401, "Unauthorized: the token is invalid"));
    };
    if scoped.expires <= now_unix() {
        return Err(error(401, "Unauthorized: the token has expired"));
    }
    if !scoped
        .grants
        .iter()
        .any(|(c, src)| c == connection && src == source)
    {
        return Err(error(
            403,
            "Forbidden: the token has no grant for this source",
        ));
    }
    Ok(())
}

fn instantiate(
    r: &Recorded,
    state: &Mutex<State>,
    base: &str,
    connection: &str,
    kind: &str,
    accepts: &dyn Fn(&str) -> bool,
) -> Answer {
    if r.query_value("v") != Some("3.4") {
        return error(400, "v=3.4 is required");
    }
    if r.query_value("client").is_none_or(str::is_empty) {
        return error(400, "client is required");
    }
    let key = if kind == "query" { "q" } else { "name" };
    if !["query", "table", "tileset"].contains(&kind) {
        return error(404, &format!("Not found: {kind}"));
    }
    let Some(source) = r.query_value(key).filter(|s| !s.is_empty()) else {
        return error(400, &format!("{key} is required"));
    };
    if let Err(answer) = may_read(r, state, connection, source, accepts) {
        return answer;
    }
    if let Some(p) = r.query_value("queryParameters")
        && serde_json::from_str::<Value>(p).is_err()
    {
        return error(400, "queryParameters must be JSON");
    }
    let first = source.split_whitespace().next().unwrap_or("");
    if kind == "query"
        && !first.eq_ignore_ascii_case("SELECT")
        && !first.eq_ignore_ascii_case("WITH")
    {
        return error(400, SYNTAX_ERROR);
    }
    let spatial = r.query_value("spatialDataType");
    let h3 = match source {
        PLACES_SQL if spatial == Some("geo") => {
            if r.query_value("queryParameters") != Some(r#"{"skip":"none"}"#) {
                return error(400, "Query parameter not found: skip");
            }
            false
        }
        POPULATED_PLACES_SQL if spatial == Some("geo") => {
            let params: Option<Value> = r
                .query_value("queryParameters")
                .and_then(|p| serde_json::from_str(p).ok());
            if !params.is_some_and(|p| p["min"].is_number()) {
                return error(400, "Query parameter not found: min");
            }
            false
        }
        H3_SQL if spatial == Some("h3") => {
            if r.query_value("aggregationExp") != Some(H3_AGGREGATION) {
                return error(400, "aggregationExp is required for H3 sources");
            }
            true
        }
        _ => {
            return error(
                400,
                &format!("Not found: Table {source} was not found in location US"),
            );
        }
    };
    let id = {
        let mut s = state.lock().unwrap();
        s.datasets.push(Dataset {
            connection: connection.into(),
            source: source.into(),
            h3,
        });
        s.datasets.len() - 1
    };
    let schema = if h3 {
        json!([{"name": "h3", "type": "string"}, {"name": "population", "type": "number"}])
    } else {
        json!([{"name": "geom", "type": "geometry"}, {"name": "name", "type": "string"}, {"name": "kind", "type": "string"}])
    };
    json_answer(
        200,
        json!({
            "nrows": if h3 { H3_CELLS.len() } else { places().len() },
            "schema": schema,
            "tilejson": {"url": [format!("{base}/v3/maps/data/{id}?cache=1")]},
        }),
    )
}

fn dataset(state: &Mutex<State>, id: &str) -> Option<(String, String, bool)> {
    let s = state.lock().unwrap();
    let d = s.datasets.get(id.parse::<usize>().ok()?)?;
    Some((d.connection.clone(), d.source.clone(), d.h3))
}

fn tilejson(
    r: &Recorded,
    state: &Mutex<State>,
    base: &str,
    id: &str,
    accepts: &dyn Fn(&str) -> bool,
) -> Answer {
    let Some((connection, source, h3)) = dataset(state, id) else {
        return error(404, "Not found: no such map data");
    };
    if let Err(answer) = may_read(r, state, &connection, &source, accepts) {
        return answer;
    }
    if r.query_value("client").is_none_or(str::is_empty) {
        return error(400, "client is required");
    }
    let answer = if h3 {
        json!({
            "tilejson": "3.0.0", "scheme": "xyz",
            "tiles": [format!("{base}/v3/maps/tiles/{id}/{{i}}?formatTiles=binary&spatialIndex=h3")],
            "bounds": H3_BOUNDS, "minresolution": 0, "maxresolution": 10,
            "minzoom": 0, "maxzoom": 14,
        })
    } else {
        let bounds = places().iter().map(Feature::bounds).fold(
            [180.0, 90.0, -180.0, -90.0],
            |a: [f64; 4], b| {
                [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[2].max(b[2]),
                    a[3].max(b[3]),
                ]
            },
        );
        json!({
            "tilejson": "3.0.0", "scheme": "xyz",
            "tiles": [format!("{base}/v3/maps/tiles/{id}/{{z}}/{{x}}/{{y}}?formatTiles=mvt")],
            "bounds": bounds, "minzoom": 0, "maxzoom": 14,
            "vector_layers": [{"id": "default", "fields": {"name": "String", "kind": "String"}}],
            "tilestats": {"layerCount": 1, "layers": [{"layer": "default", "count": places().len()}]},
        })
    };
    json_answer(200, answer)
}

fn tile(
    r: &Recorded,
    state: &Mutex<State>,
    id: &str,
    rest: &[&str],
    accepts: &dyn Fn(&str) -> bool,
) -> Answer {
    let Some((connection, source, h3)) = dataset(state, id) else {
        return error(404, "Not found: no such map data");
    };
    if let Err(answer) = may_read(r, state, &connection, &source, accepts) {
        return answer;
    }
    if h3 {
        // Every tile holds all the cells: drawn twice, they look the same.
        let cells: Vec<(&str, f64)> = H3_CELLS.iter().map(|(c, _, _)| (*c, 1000.0)).collect();
        return (
            200,
            mvt::h3_tile(&cells, "population"),
            "application/vnd.carto-spatial-tile",
        );
    }
    let n: Option<Vec<u32>> = rest.iter().map(|p| p.parse().ok()).collect();
    match n.as_deref() {
        Some([z, x, y]) if *z < 25 => (
            200,
            mvt::vector_tile(&places(), *z, *x, *y),
            "application/vnd.mapbox-vector-tile",
        ),
        _ => error(400, "a tile is /{z}/{x}/{y}"),
    }
}
