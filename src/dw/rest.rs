//! BigQuery's REST API as the CARTO Data Warehouse client speaks it: the two
//! URLs of a query (`jobs.query`, `jobs.getQueryResults`), the fields it
//! reads of their answers, and their errors made ours. Pure functions; the
//! requests are sent by `super::CartoDwClient` through `crate::http::Http`.

use std::fmt;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::error::Category;
use serde_json::{Map, Value};
use url::Url;

use crate::error::{Error, Result, Service};
use crate::http::{describe_body, describe_json};

use super::decode::Field;

/// How long BigQuery may hold one call while the query runs (server side),
/// in milliseconds: `timeoutMs` of both requests.
pub(super) const POLL_WAIT_MS: u32 = 10_000;

/// `POST {root}/bigquery/v2/projects/{project}/queries` (jobs.query).
pub(super) fn queries_url(root: &str, project: &str) -> Result<String> {
    let mut url = parse_root(root)?;
    push_segments(
        &mut url,
        &["bigquery", "v2", "projects", project, "queries"],
    )?;
    Ok(url.into())
}

/// `GET {root}/bigquery/v2/projects/{project}/queries/{job}?...`
/// (jobs.getQueryResults), polled while the job runs and then read page by
/// page: `pageToken` only for the pages after the first.
pub(super) fn results_url(
    root: &str,
    project: &str,
    job: &str,
    location: Option<&str>,
    page_token: Option<&str>,
) -> Result<String> {
    let mut url = parse_root(root)?;
    push_segments(
        &mut url,
        &["bigquery", "v2", "projects", project, "queries", job],
    )?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("timeoutMs", &POLL_WAIT_MS.to_string());
        if let Some(token) = page_token {
            query.append_pair("pageToken", token);
        }
        if let Some(location) = location {
            query.append_pair("location", location);
        }
        // Exact microseconds instead of float seconds.
        query.append_pair("formatOptions.useInt64Timestamp", "true");
    }
    Ok(url.into())
}

/// The root as checked when it was set (`check_http_url`); a root that
/// still does not parse is a setting error, not a panic.
fn parse_root(root: &str) -> Result<Url> {
    Url::parse(root).map_err(|_| Error::InvalidSetting {
        what: "the BigQuery URL".into(),
        value: root.into(),
        reason: "an http(s) URL such as https://bigquery.googleapis.com",
    })
}

/// Each value one path segment, escaped as one (`/`, `?`, `#`, `%`, spaces
/// and non-ASCII included), after whatever path the root has.
fn push_segments(url: &mut Url, segments: &[&str]) -> Result<()> {
    let root = url.to_string();
    url.path_segments_mut()
        .map_err(|()| Error::InvalidSetting {
            what: "the BigQuery URL".into(),
            value: root,
            reason: "an http(s) URL such as https://bigquery.googleapis.com",
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(())
}

/// What the client reads of a `jobs.query` or `getQueryResults` answer.
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub(super) job_id: Option<String>,
    /// The job's location (`jobReference.location`, else jobs.query's own
    /// `location`).
    pub(super) location: Option<String>,
    pub(super) complete: bool,
    pub(super) fields: Option<Vec<Field>>,
    pub(super) rows: Vec<Row>,
    pub(super) page_token: Option<String>,
    pub(super) total_rows: Option<u64>,
    pub(super) total_bytes_processed: Option<u64>,
    pub(super) cache_hit: Option<bool>,
}

impl Answer {
    /// The fields of a page as read; `Err` says what is off (for the error
    /// message): `schema.fields` not an array.
    fn from_page(page: Page) -> std::result::Result<Answer, String> {
        let Page { object, rows } = page;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let reference = object.get("jobReference");
        let fields = match object.get("schema").map(|s| s.get("fields")) {
            None | Some(None | Some(Value::Null)) => None,
            Some(Some(Value::Array(fields))) => Some(fields.iter().map(field).collect()),
            Some(Some(other)) => {
                return Err(format!("schema fields as {}", describe_json(other)));
            }
        };
        Ok(Answer {
            job_id: text(reference.and_then(|r| r.get("jobId"))),
            location: text(reference.and_then(|r| r.get("location")))
                .or_else(|| text(object.get("location"))),
            complete: object.get("jobComplete").and_then(Value::as_bool) == Some(true),
            fields,
            rows: rows.unwrap_or_default(),
            page_token: text(object.get("pageToken")),
            total_rows: int64(object.get("totalRows")),
            total_bytes_processed: int64(object.get("totalBytesProcessed")),
            cache_hit: object.get("cacheHit").and_then(Value::as_bool),
        })
    }
}

/// BigQuery's `TableFieldSchema`, what decoding needs of it.
fn field(f: &Value) -> Field {
    let text = |key: &str| f.get(key).and_then(Value::as_str).unwrap_or_default();
    Field {
        name: text("name").to_string(),
        kind: text("type").to_string(),
        repeated: text("mode").eq_ignore_ascii_case("REPEATED"),
        fields: f
            .get("fields")
            .and_then(Value::as_array)
            .map(|fields| fields.iter().map(field).collect())
            .unwrap_or_default(),
    }
}

/// BigQuery writes 64-bit integers as JSON strings (`"totalRows": "5"`);
/// a number is taken too.
fn int64(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(text) => text.parse().ok(),
        other => other.as_u64(),
    }
}

// A page holds up to 10 MB of rows, `{"f": [{"v": ...}, ...]}` each: read
// as `Value`s, every cell would be a JSON object of its own (a map and its
// key), four times the time and memory of reading just the cells' values.
// The visitors below do that, without serde_derive (which no build of this
// crate needs otherwise).

/// A page as it comes: its top-level fields as JSON, its rows read cell by
/// cell.
struct Page {
    object: Map<String, Value>,
    rows: Option<Vec<Row>>,
}

/// One row's cell values, each `f[i].v` (`None`: null or missing).
#[derive(Debug, Default)]
pub(super) struct Row(Vec<Option<Value>>);

impl Row {
    /// The cells, for `decode_row`.
    pub(super) fn cells(&self) -> impl Iterator<Item = Option<&Value>> {
        self.0.iter().map(Option::as_ref)
    }
}

/// A cell `{"v": ...}`, as its value.
struct Cell(Option<Value>);

/// A row's `f`, as its cells' values.
struct Cells(Vec<Option<Value>>);

impl<'de> Deserialize<'de> for Page {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Page;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Page, A::Error> {
                let mut page = Page {
                    object: Map::new(),
                    rows: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "rows" {
                        page.rows = map.next_value()?;
                    } else {
                        page.object.insert(key, map.next_value()?);
                    }
                }
                Ok(page)
            }
        }
        d.deserialize_map(Object)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a row, {"f": [...]}"#)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Row, A::Error> {
                let mut row = Row::default();
                while let Some(is_f) = map.next_key_seed(KeyIs("f"))? {
                    if is_f {
                        row.0 = map
                            .next_value::<Option<Cells>>()?
                            .map_or_else(Vec::new, |c| c.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(row)
            }
        }
        d.deserialize_map(Object)
    }
}

impl<'de> Deserialize<'de> for Cells {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Cells;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a row's cells, [{"v": ...}, ...]"#)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Cells, A::Error> {
                let mut cells = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(Cell(value)) = seq.next_element()? {
                    cells.push(value);
                }
                Ok(Cells(cells))
            }
        }
        d.deserialize_seq(List)
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a cell, {"v": ...}"#)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Cell, A::Error> {
                let mut cell = Cell(None);
                while let Some(is_v) = map.next_key_seed(KeyIs("v"))? {
                    if is_v {
                        cell.0 = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(cell)
            }
        }
        d.deserialize_map(Object)
    }
}

/// Whether an object's key is the one named, read without allocating it.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> std::result::Result<bool, E> {
        Ok(key == self.0)
    }
}

/// A BigQuery answer as ours: a 2xx its JSON, anything else BigQuery's own
/// error (`{"error": {"code", "message", "errors": [{"reason"}]}}`) quoted.
pub(super) fn answer(root: &str, status: u16, body: &[u8]) -> Result<Answer> {
    if !(200..300).contains(&status) {
        return Err(bigquery_error(status, body));
    }
    parse_answer(body).map_err(|got| Error::InvalidResponse {
        service: Service::BigQuery,
        url: root.to_string(),
        expected: "BigQuery's JSON",
        got: format!("HTTP {status} and {got}"),
    })
}

/// An answer's bytes, or what they are instead (for the error message).
pub(super) fn parse_answer(body: &[u8]) -> std::result::Result<Answer, String> {
    let page: Page = serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => format!("JSON it cannot read ({e})"),
        Category::Syntax | Category::Eof | Category::Io => describe_body(body),
    })?;
    Answer::from_page(page).map_err(|got| format!("JSON it cannot read ({got})"))
}

/// BigQuery's error body: its `message` (at most 500 characters) and the
/// first error's `reason`. A body that is not BigQuery's JSON says only
/// the status.
fn bigquery_error(status: u16, body: &[u8]) -> Error {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = &json["error"];
    Error::BigQuery {
        status,
        reason: e["errors"][0]["reason"].as_str().map(str::to_string),
        message: e["message"].as_str().map(|m| m.chars().take(500).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_value_is_one_escaped_segment() {
        let url = queries_url("https://bigquery.googleapis.com", "carto-dw-ac-x").unwrap();
        assert_eq!(
            url,
            "https://bigquery.googleapis.com/bigquery/v2/projects/carto-dw-ac-x/queries"
        );
        let url = results_url(
            "http://127.0.0.1:9/proxy/",
            "p/../q",
            "job ?#%/é",
            Some("EU & more+"),
            Some("BH+/=a&b"),
        )
        .unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9/proxy/bigquery/v2/projects/p%2F..%2Fq/queries/job%20%3F%23%25%2F%C3%A9\
             ?timeoutMs=10000&pageToken=BH%2B%2F%3Da%26b&location=EU+%26+more%2B\
             &formatOptions.useInt64Timestamp=true"
        );
        let parsed = Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs[1], ("pageToken".into(), "BH+/=a&b".into()));
        assert_eq!(pairs[2], ("location".into(), "EU & more+".into()));
        let first_page = results_url("http://h", "p", "j", None, None).unwrap();
        assert_eq!(
            first_page,
            "http://h/bigquery/v2/projects/p/queries/j?timeoutMs=10000&formatOptions.useInt64Timestamp=true"
        );
    }

    #[test]
    fn errors_quote_bigquerys_message_and_first_reason() {
        let body = br#"{"error":{"code":400,"message":"Syntax error: x","errors":[{"reason":"invalidQuery","message":"Syntax error: x"},{"reason":"other"}],"status":"INVALID_ARGUMENT"}}"#;
        match answer("r", 400, body).unwrap_err() {
            Error::BigQuery {
                status,
                reason,
                message,
            } => {
                assert_eq!(status, 400);
                assert_eq!(reason.as_deref(), Some("invalidQuery"));
                assert_eq!(message.as_deref(), Some("Syntax error: x"));
            }
            other => panic!("{other:?}"),
        }
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(900));
        match answer("r", 500, long.as_bytes()).unwrap_err() {
            Error::BigQuery {
                status: 500,
                reason: None,
                message: Some(m),
            } => assert_eq!(m.len(), 500),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer("r", 502, b"<html>Bad Gateway</html>").unwrap_err(),
            Error::BigQuery {
                status: 502,
                reason: None,
                message: None
            }
        ));
    }

    #[test]
    fn answers_read_int64_strings_and_say_what_they_could_not_read() {
        let a = answer(
            "r",
            200,
            br#"{"jobReference":{"jobId":"j","location":"US"},"jobComplete":true,"totalRows":"5","totalBytesProcessed":12,"schema":{"fields":[{"name":"a","type":"INTEGER","mode":"REPEATED"}]},"rows":[{"f":[{"v":[{"v":"1"}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(a.total_rows, Some(5));
        assert_eq!(a.total_bytes_processed, Some(12));
        assert_eq!(a.job_id.as_deref(), Some("j"));
        assert_eq!(a.location.as_deref(), Some("US"));
        let fields = a.fields.unwrap();
        assert!(fields[0].repeated && fields[0].kind == "INTEGER");
        assert_eq!(a.rows[0].cells().count(), 1);
        // An odd count is meta data only: not worth refusing the rows for.
        let a = answer("r", 200, br#"{"totalRows":"many","location":"EU"}"#).unwrap();
        assert_eq!((a.total_rows, a.location.as_deref()), (None, Some("EU")));
        for (body, got) in [
            (&b"<html>"[..], "HTTP 200 and HTML (6 bytes)"),
            (
                b"[1]",
                "HTTP 200 and JSON it cannot read (invalid type: sequence, expected a JSON object at line 1 column 0)",
            ),
            (
                br#"{"rows":5}"#,
                "HTTP 200 and JSON it cannot read (invalid type: integer `5`, expected a sequence at line 1 column 9)",
            ),
            (
                br#"{"rows":[{"f":[{"v":"1"},7]}]}"#,
                r#"HTTP 200 and JSON it cannot read (invalid type: integer `7`, expected a cell, {"v": ...} at line 1 column 26)"#,
            ),
            (
                br#"{"schema":{"fields":{}}}"#,
                "HTTP 200 and JSON it cannot read (schema fields as an empty JSON object)",
            ),
        ] {
            let err = answer("r", 200, body).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidResponse { got: g, .. } if g == got),
                "{err:?}"
            );
        }
    }
}
