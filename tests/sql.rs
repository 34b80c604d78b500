//! CARTO's SQL API through the library, against the fake SQL API
//! (`support/sql_api.rs`): the request (a JSON POST with the bearer token,
//! the connection one encoded path segment), the result (columns in schema
//! order with their types, rows in that order, NULL apart from "null",
//! `meta`), query parameters reaching CARTO intact, rows as the user's
//! types, CARTO's errors quoted with the connection and what to do, renewal
//! of an expired token before the query, a session without an API base URL,
//! the async twins, and no secret in any error. Then the fake BigQuery
//! (`support/bigquery.rs`) and the CARTO DW tokens that feed it, checked over
//! bare HTTP, for the CARTO Data Warehouse client to rely on.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use carto_auth::{CartoAuth, Error, json};
use serde_json::Value;
use support::bigquery::{self, FakeBigQuery, TimestampFormat};
use support::jwt::Subject;
use support::sql_api::{self, ALL_TYPES, BAD_SQL, CARTO_DW, SqlApi, TEAM_CONNECTION};
use support::{FakeCarto, USER_ANA};

const WAIT: Duration = Duration::from_secs(10);

/// A fake CARTO with the SQL API, and an M2M session on it (no cache).
fn setup() -> (FakeCarto, SqlApi, tempfile::TempDir, CartoAuth) {
    let fake = FakeCarto::start();
    let sql = sql_api::install(&fake);
    let (dir, auth) = support::m2m_session(&fake);
    (fake, sql, dir, auth)
}

// ---- the request ----

#[test]
fn a_query_is_a_json_post_with_the_bearer_token_and_nothing_in_the_url() {
    let (_fake, sql, _dir, auth) = setup();
    let result = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    assert_eq!(result.len(), 3);

    let received = sql.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.request.method, "POST");
    assert_eq!(r.request.path, "/api/v3/sql/carto_dw/query");
    assert!(r.request.query.is_empty(), "{:?}", r.request.query);
    assert_eq!(
        r.request.bearer(),
        Some(auth.get_access_token().unwrap().as_str())
    );
    let content_type = r.request.content_type().unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    // Exactly {"q": ...}: no queryParameters without parameters.
    assert_eq!(r.json, Some(json!({ "q": ALL_TYPES })));
}

#[test]
fn the_connection_name_is_one_encoded_path_segment() {
    let (_fake, sql, _dir, auth) = setup();
    let odd = ["a?b#c/../d", "100% sure", "ünïcode+plus@x"];
    for name in odd {
        sql.add_connection(name);
    }
    for name in [TEAM_CONNECTION].into_iter().chain(odd) {
        let result = auth.sql_query(name, ALL_TYPES);
        assert!(result.is_ok(), "{name}: {result:?}");
    }
    let received = sql.received();
    let names: Vec<Option<&str>> = received.iter().map(|r| r.connection.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some(TEAM_CONNECTION),
            Some(odd[0]),
            Some(odd[1]),
            Some(odd[2])
        ]
    );
    assert_eq!(
        received[0].request.path,
        "/api/v3/sql/team%20bq%2Fprod/query"
    );
    for r in &received {
        let segments: Vec<&str> = r.request.path.split('/').collect();
        assert_eq!(segments.len(), 6, "{}", r.request.path);
        assert!(r.request.query.is_empty(), "{:?}", r.request.query);
    }
}

// ---- the result ----

#[test]
fn columns_keep_the_schema_order_and_types_and_rows_follow_it() {
    let (_fake, _sql, _dir, auth) = setup();
    let result = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    let answer: Value = serde_json::from_str(sql_api::ALL_TYPES_ANSWER).unwrap();
    let schema = answer["schema"].as_array().unwrap();

    let columns: Vec<(&str, &str)> = result
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_name()))
        .collect();
    let expected: Vec<(&str, &str)> = schema
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(columns, expected);
    assert_eq!(columns[0], ("id", "number"));
    assert_eq!(columns[5], ("geom", "geometry"));

    // Each row's values in schema order (the wire has them in another).
    let wire = sql_api::rows_of(sql_api::ALL_TYPES_ANSWER);
    assert_eq!((result.len(), result.is_empty()), (wire.len(), false));
    for (row, wire) in result.rows().iter().zip(&wire) {
        let in_order: Vec<Value> = expected
            .iter()
            .map(|(name, _)| wire[*name].clone())
            .collect();
        assert_eq!(row.values(), in_order.as_slice());
        let names: Vec<&str> = row.iter().map(|(name, _)| name).collect();
        assert_eq!(names, expected.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        for (i, (name, _)) in expected.iter().enumerate() {
            assert_eq!(row[*name], row[i], "{name}");
        }
    }
    // Serialized rows are objects with the columns in order.
    let text = serde_json::to_string(&result.rows()[0]).unwrap();
    assert!(
        text.starts_with(r#"{"id":1,"name":"Madrid","population":3223334,"#),
        "{text}"
    );
    let json: Value = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(
        json,
        Value::Array(wire.into_iter().map(Value::Object).collect())
    );
}

#[test]
fn null_is_not_the_string_null_and_values_keep_their_json_types() {
    let (_fake, _sql, _dir, auth) = setup();
    let result = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    let (madrid, second, third) = (&result.rows()[0], &result.rows()[1], &result.rows()[2]);
    assert_eq!(second["name"], Value::String("null".into()));
    assert_eq!(second["note"], Value::String("null".into()));
    assert_eq!(second["population"], Value::Null);
    assert_eq!(second["props"], Value::Null);
    assert_eq!(madrid["note"], Value::Null);
    assert_eq!(third["note"], Value::String(String::new()));
    // Above 2^53: exact, not through a float.
    assert_eq!(madrid["big"].as_u64(), Some(9_007_199_254_740_993));
    assert_eq!(second["share"].as_f64(), Some(-1.5e-7));
    assert_eq!(madrid["is_capital"], true);
    assert_eq!(second["is_capital"], false);
    assert_eq!(madrid["geom"], "POINT(-3.7038 40.4168)");
    assert_eq!(madrid["props"]["meta"]["source"], "INE");
    assert_eq!(madrid["props"]["codes"], json!([28, 79]));
    assert_eq!(third["props"], json!({}));
    assert_eq!(third["name"], "Zürich \"quoted\" <b>&</b>");
    assert_eq!(madrid["no such column"], Value::Null);
}

#[test]
fn meta_is_carto_s_and_an_empty_result_keeps_its_columns() {
    let (_fake, _sql, _dir, auth) = setup();
    let result = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    let meta: Value = serde_json::from_str(sql_api::META).unwrap();
    assert_eq!(result.meta(), &meta);
    assert_eq!(result.meta()["cacheHit"], false);
    assert_eq!(result.meta()["location"], "US");

    let empty = auth.sql_query(CARTO_DW, sql_api::EMPTY).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    assert_eq!(empty.columns().len(), 1);
    assert_eq!(empty.columns()[0].name(), "id");
    assert_eq!(empty.to_json(), "[]");
}

// ---- parameters ----

#[test]
fn named_and_positional_parameters_reach_carto_intact() {
    let (_fake, sql, _dir, auth) = setup();
    let named = json!({
        "min": 10_000_000,
        "name": "Zürich \"q\"",
        "list": [1, "two", null],
        "nothing": null,
        "big": 9_007_199_254_740_993u64,
        "nested": {"a": {"b": true}},
    });
    let result = auth
        .sql_query_with(CARTO_DW, sql_api::ECHO_PARAMETERS, named.clone())
        .unwrap();
    let received = sql.received();
    assert_eq!(received[0].query_parameters(), Some(&named));
    assert_eq!(
        received[0].json,
        Some(json!({"q": sql_api::ECHO_PARAMETERS, "queryParameters": named}))
    );
    let echoed: serde_json::Map<String, Value> = result
        .rows()
        .iter()
        .map(|row| {
            assert_eq!(row["position"], Value::Null);
            (
                row["name"].as_str().unwrap().to_string(),
                row["value"].clone(),
            )
        })
        .collect();
    assert_eq!(Value::Object(echoed), named);

    let positional = json!([1, "two", null, {"x": [1.5]}]);
    let result = auth
        .sql_query_with(CARTO_DW, sql_api::ECHO_PARAMETERS, positional.clone())
        .unwrap();
    assert_eq!(sql.received()[1].query_parameters(), Some(&positional));
    let values: Vec<Value> = result
        .rows()
        .iter()
        .enumerate()
        .map(|(i, row)| {
            assert_eq!(row["name"], Value::Null);
            assert_eq!(row["position"], json!(i + 1));
            row["value"].clone()
        })
        .collect();
    assert_eq!(Value::Array(values), positional);

    // No parameters: no queryParameters key at all.
    auth.sql_query_with(CARTO_DW, sql_api::ECHO_PARAMETERS, Value::Null)
        .unwrap();
    assert_eq!(
        sql.received()[2].json,
        Some(json!({"q": sql_api::ECHO_PARAMETERS}))
    );
}

// ---- rows as the user's types ----

#[test]
fn rows_deserialize_into_the_users_structs() {
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Place {
        id: i64,
        name: String,
        population: Option<u64>,
        share: f64,
        is_capital: Option<bool>,
        geom: Option<String>,
        props: Option<Value>,
        note: Option<String>,
        big: i64,
    }
    let (_fake, _sql, _dir, auth) = setup();
    let result = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    let places: Vec<Place> = result.deserialize().unwrap();
    let wire = sql_api::rows_of(sql_api::ALL_TYPES_ANSWER);
    assert_eq!(places.len(), wire.len());
    for (place, wire) in places.iter().zip(&wire) {
        let expected: Place = serde_json::from_value(Value::Object(wire.clone())).unwrap();
        assert_eq!(place, &expected);
    }
    assert_eq!(places[0].name, "Madrid");
    assert_eq!(places[1].name, "null");
    assert_eq!(places[1].population, None);
    assert_eq!(places[1].note.as_deref(), Some("null"));
    assert_eq!(places[0].big, 9_007_199_254_740_993);

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        population: u64,
    }
    let err = result.deserialize::<Wrong>().unwrap_err();
    assert!(matches!(err, Error::Deserialize { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("row 1") && msg.contains("null"), "{msg}");
}

// ---- errors ----

#[test]
fn carto_error_text_is_quoted_with_the_connection() {
    let (_fake, sql, _dir, auth) = setup();
    let err = auth.sql_query(CARTO_DW, BAD_SQL).unwrap_err();
    match &err {
        Error::Sql {
            connection,
            status,
            message,
        } => {
            assert_eq!((connection.as_str(), *status), (CARTO_DW, 400));
            assert_eq!(
                message.as_deref(),
                Some("Syntax error: Unexpected identifier \"SELEC\" at [1:1]")
            );
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("\"carto_dw\"")
            && msg.contains("HTTP 400")
            && msg.contains("Syntax error: Unexpected identifier \"SELEC\""),
        "{msg}"
    );
    assert_eq!(sql.received()[0].status, 400);
}

#[test]
fn an_unknown_connection_says_there_is_no_connection_by_that_name() {
    let (_fake, sql, _dir, auth) = setup();
    let err = auth.sql_query("nope", ALL_TYPES).unwrap_err();
    assert!(
        matches!(&err, Error::Sql { connection, status: 404, message: Some(m) }
            if connection == "nope" && m == "Connection not found: nope"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("no connection named \"nope\""), "{msg}");
    assert_eq!(sql.received()[0].connection.as_deref(), Some("nope"));
}

#[test]
fn refusals_say_to_log_in_again_or_check_the_permissions() {
    let (fake, sql, _dir, auth) = setup();
    sql.deny_connection(TEAM_CONNECTION);
    let err = auth.sql_query(TEAM_CONNECTION, ALL_TYPES).unwrap_err();
    assert!(
        matches!(&err, Error::Sql { status: 403, message: Some(m), .. } if m.contains("Forbidden")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("log in again")
            && msg.contains("permissions")
            && msg.contains("\"team bq/prod\""),
        "{msg}"
    );

    // A token CARTO does not know (revoked, another environment's).
    let stranger = CartoAuth::from_token("tok-unknown-to-carto-5f2a9", fake.api_base_url());
    let err = stranger.sql_query(CARTO_DW, ALL_TYPES).unwrap_err();
    assert!(
        matches!(&err, Error::Sql { status: 401, message: Some(m), .. } if m.contains("Unauthorized")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("log in again"), "{msg}");
    assert!(!msg.contains("tok-unknown-to-carto-5f2a9"), "{msg}");
    assert!(!format!("{err:?}").contains("tok-unknown-to-carto-5f2a9"));
}

#[test]
fn server_errors_are_reported_with_their_status() {
    let (_fake, sql, _dir, auth) = setup();
    sql.fail_with(503, "<html><body>Service Unavailable</body></html>");
    let err = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap_err();
    assert!(matches!(&err, Error::Sql { status: 503, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("HTTP 503") && msg.contains("HTML"), "{msg}");

    sql.fail_with(502, r#"{"error": "Bad gateway: upstream timed out"}"#);
    let err = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap_err();
    assert!(
        err.to_string().contains("Bad gateway: upstream timed out"),
        "{err}"
    );

    sql.heal();
    assert_eq!(auth.sql_query(CARTO_DW, ALL_TYPES).unwrap().len(), 3);
}

#[test]
fn a_json_error_without_an_error_text_is_not_called_non_json() {
    // CARTO's gateway (or an older API) can answer JSON with neither
    // `error` nor `message`: the error must not call it "non-JSON text".
    let (_fake, sql, _dir, auth) = setup();
    sql.fail_with(500, r#"{"detail": "upstream failed", "code": 13}"#);
    let err = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Sql { status: 500, .. }), "{err:?}");
    assert!(!msg.contains("non-JSON"), "{msg}");
}

#[test]
fn a_slow_answer_outlasts_a_short_request_timeout() {
    // Synchronous queries run for up to a minute at CARTO: the session's
    // timeout (half a second here) does not cut them short.
    let fake = FakeCarto::start();
    let sql = sql_api::install(&fake);
    let (_dir, builder) = support::m2m_builder(&fake);
    let auth = builder.timeout(Duration::from_millis(500)).login().unwrap();
    sql.set_delay(Some(Duration::from_millis(1500)));
    let result = auth.sql_query(CARTO_DW, ALL_TYPES);
    assert_eq!(result.unwrap().len(), 3);
}

// ---- the session ----

#[test]
fn an_expired_m2m_token_is_renewed_before_the_query() {
    let fake = FakeCarto::start();
    let sql = sql_api::install(&fake);
    fake.set_expires_in(30); // expired on arrival by the 60 s margin
    let (_dir, auth) = support::m2m_session(&fake);
    fake.set_expires_in(3600);
    assert_eq!(fake.requests("/oauth/token").len(), 1);

    auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    let tokens = fake.requests("/oauth/token");
    assert_eq!(tokens.len(), 2, "a new token was requested first");
    let issued = fake.issued_tokens();
    let query = &sql.received()[0];
    assert_eq!(query.request.bearer(), Some(issued[1].as_str()));
    assert!(tokens[1].at <= query.request.at);
    assert_eq!(auth.get_access_token().unwrap(), issued[1]);

    // The renewed token is good for a while: the next query asks for none.
    auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    assert_eq!(fake.requests("/oauth/token").len(), 2);
    assert_eq!(sql.received()[1].request.bearer(), Some(issued[1].as_str()));
}

#[test]
fn a_session_without_an_api_base_url_sends_nothing() {
    let fake = FakeCarto::start();
    let sql = sql_api::install(&fake);
    let token = fake.mint_token(&Subject::user(USER_ANA), 3600);
    let auth = CartoAuth::from_token(token.clone(), "");
    let err = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap_err();
    assert!(matches!(err, Error::NoApiBaseUrl { .. }), "{err:?}");
    let err = auth
        .sql_query_with(CARTO_DW, ALL_TYPES, json!({"a": 1}))
        .unwrap_err();
    assert!(matches!(err, Error::NoApiBaseUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains(&token));
    assert!(sql.received().is_empty());
}

#[tokio::test]
async fn the_async_twins_answer_the_same_and_the_blocking_ones_say_so_here() {
    let fake = FakeCarto::start();
    let sql = sql_api::install(&fake);
    let (_dir, auth) = support::m2m_session_async(&fake).await;
    let result = auth.sql_query_async(CARTO_DW, ALL_TYPES).await.unwrap();
    assert_eq!(result.len(), 3);
    assert_eq!(result.rows()[0]["name"], "Madrid");
    let echoed = auth
        .sql_query_with_async(CARTO_DW, sql_api::ECHO_PARAMETERS, json!([7]))
        .await
        .unwrap();
    assert_eq!(echoed.rows()[0]["value"], 7);
    let err = auth
        .sql_query_async(TEAM_CONNECTION, BAD_SQL)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Sql { status: 400, connection, .. } if connection == TEAM_CONNECTION),
        "{err:?}"
    );
    let received = sql.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.request.method == "POST"));
    assert_eq!(received[1].query_parameters(), Some(&json!([7])));

    // This test's runtime has one thread: the blocking calls need none of
    // it, so they work here too (they used to refuse, naming their twin).
    let blocking = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap();
    assert_eq!(blocking.rows(), result.rows());
    let blocking = auth
        .sql_query_with(CARTO_DW, ALL_TYPES, Value::Null)
        .unwrap();
    assert_eq!(blocking.rows(), result.rows());
    assert_eq!(sql.received().len(), 5);
}

/// One agent per session: a hundred small queries, blocking and async,
/// from clones of the session, travel over one kept-alive connection (no
/// new TCP connection, so no new TLS handshake on a real server).
#[test]
fn many_queries_reuse_the_sessions_connection() {
    let (_fake, sql, _dir, auth) = setup();
    let clone = auth.clone();
    for i in 0..100 {
        let result = if i % 2 == 0 {
            auth.sql_query(CARTO_DW, ALL_TYPES)
        } else {
            pollster::block_on(clone.sql_query_async(CARTO_DW, ALL_TYPES))
        };
        assert_eq!(result.unwrap().len(), 3);
    }
    let received = sql.received();
    assert_eq!(received.len(), 100);
    let peers: std::collections::HashSet<_> =
        received.iter().map(|r| r.request.peer.unwrap()).collect();
    assert_eq!(peers.len(), 1, "{peers:?}");
}

#[test]
fn no_error_holds_a_secret() {
    let (fake, sql, _dir, auth) = setup();
    let mut errors: Vec<Error> = Vec::new();
    errors.push(auth.sql_query(CARTO_DW, BAD_SQL).unwrap_err());
    errors.push(auth.sql_query("nope", ALL_TYPES).unwrap_err());
    sql.deny_connection(TEAM_CONNECTION);
    errors.push(auth.sql_query(TEAM_CONNECTION, ALL_TYPES).unwrap_err());
    sql.fail_with(500, r#"{"message": "internal"}"#);
    errors.push(auth.sql_query(CARTO_DW, ALL_TYPES).unwrap_err());
    sql.fail_with(502, "");
    errors.push(auth.sql_query(CARTO_DW, ALL_TYPES).unwrap_err());
    sql.heal();
    // A given JWT that has expired (the session sees it), and an opaque
    // one that has (only CARTO sees it).
    let user = Subject::user(USER_ANA);
    let expired = CartoAuth::from_token(fake.mint_token(&user, -10), fake.api_base_url());
    let err = expired.sql_query(CARTO_DW, ALL_TYPES).unwrap_err();
    assert!(matches!(err, Error::TokenExpired { .. }), "{err:?}");
    errors.push(err);
    fake.set_opaque_tokens(true);
    let stale = CartoAuth::from_token(fake.mint_token(&user, -10), fake.api_base_url());
    fake.set_opaque_tokens(false);
    let err = stale.sql_query(CARTO_DW, ALL_TYPES).unwrap_err();
    assert!(matches!(err, Error::Sql { status: 401, .. }), "{err:?}");
    errors.push(err);
    let unknown = CartoAuth::from_token("not-issued-token-Qw7Rt", fake.api_base_url());
    errors.push(unknown.sql_query(CARTO_DW, ALL_TYPES).unwrap_err());
    errors.push(
        CartoAuth::from_token(fake.issued_tokens()[0].clone(), "")
            .sql_query(CARTO_DW, ALL_TYPES)
            .unwrap_err(),
    );
    // The session after renewal, too.
    fake.set_expires_in(30);
    let (_renewing_dir, renewing) = support::m2m_session(&fake);
    fake.set_expires_in(3600);
    errors.push(renewing.sql_query(CARTO_DW, BAD_SQL).unwrap_err());

    let mut secrets = fake.secrets();
    secrets.push("not-issued-token-Qw7Rt".into());
    assert!(secrets.len() >= 5, "{}", secrets.len());
    assert_eq!(errors.len(), 10);
    for err in &errors {
        for text in [err.to_string(), format!("{err:?}")] {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret ({}…) in: {text}",
                    &secret[..4]
                );
            }
        }
    }
}

#[cfg(feature = "notebook")]
#[test]
fn a_result_renders_as_an_html_table() {
    let (_fake, _sql, _dir, auth) = setup();
    let html = auth.sql_query(CARTO_DW, ALL_TYPES).unwrap().to_html();
    assert!(html.contains("<table"), "{html}");
    assert!(html.contains("3 rows × 9 columns"), "{html}");
    for name in ["id", "is_capital", "geom", "props", "big"] {
        assert!(html.contains(&format!(">{name}<")), "{name}: {html}");
    }
    assert!(html.contains("POINT(-3.7038 40.4168)"), "{html}");
    assert!(html.contains("NULL"), "{html}");
    // The text of the third row, escaped.
    assert!(
        html.contains("&lt;b&gt;") && !html.contains("<b>&"),
        "{html}"
    );
}

// ---- the fake BigQuery and the DW tokens behind it ----

/// A bare HTTP/1.0 request (no chunked answers) with these headers and
/// body: status and JSON body (null when not JSON).
fn raw_call(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let parsed = url::Url::parse(url).unwrap();
    let mut stream =
        TcpStream::connect(("127.0.0.1", parsed.port().unwrap())).expect("connect to the fake");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut head = format!(
        "{method} {target} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A JSON request with a bearer token, as a BigQuery client sends it.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    raw_call(method, url, &headers, &body)
}

#[test]
fn the_fake_sql_api_refuses_what_carto_refuses() {
    let (fake, sql, _dir, auth) = setup();
    let token = auth.get_access_token().unwrap();
    let bearer = format!("Bearer {token}");
    let json_type = ("Content-Type", "application/json");
    let url = format!("{}{}", fake.base, sql.query_path(CARTO_DW));
    let good = json!({ "q": ALL_TYPES }).to_string();
    let error = |answer: &Value| answer["error"].as_str().unwrap_or_default().to_string();

    let (status, answer) = raw_call(
        "POST",
        &url,
        &[("Authorization", &bearer), json_type],
        &good,
    );
    assert_eq!(
        (status, answer["rows"].as_array().map(Vec::len)),
        (200, Some(3))
    );
    let get = format!("{url}?q=SELECT%201");
    assert_eq!(
        raw_call("GET", &get, &[("Authorization", &bearer)], "").0,
        405
    );
    let (status, answer) = raw_call("POST", &url, &[json_type], &good);
    assert_eq!(status, 401, "{answer}");
    assert!(error(&answer).contains("Unauthorized"));
    let (status, _) = raw_call(
        "POST",
        &url,
        &[("Authorization", "Bearer nope"), json_type],
        &good,
    );
    assert_eq!(status, 401);
    let (status, answer) = raw_call(
        "POST",
        &url,
        &[("Authorization", &bearer), ("Content-Type", "text/plain")],
        &good,
    );
    assert_eq!(status, 400, "{answer}");
    for (body, words) in [
        (
            json!({"q": ALL_TYPES, "cache": false}).to_string(),
            "Unexpected body field: cache",
        ),
        (
            json!({"sql": ALL_TYPES}).to_string(),
            "Unexpected body field: sql",
        ),
        (json!({"q": 1}).to_string(), "q is required"),
        (json!({}).to_string(), "q is required"),
        ("[1]".to_string(), "Invalid JSON"),
        (
            json!({"q": ALL_TYPES, "queryParameters": "a"}).to_string(),
            "queryParameters",
        ),
    ] {
        let (status, answer) = raw_call(
            "POST",
            &url,
            &[("Authorization", &bearer), json_type],
            &body,
        );
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(error(&answer).contains(words), "{body}: {answer}");
    }
    // A connection name sent unencoded is two segments: no such endpoint.
    let split = format!("{}/api/v3/sql/team%20bq/prod/query", fake.base);
    assert_eq!(
        raw_call(
            "POST",
            &split,
            &[("Authorization", &bearer), json_type],
            &good
        )
        .0,
        404
    );
    let (status, answer) = raw_call(
        "POST",
        &format!("{}{}", fake.base, sql.query_path("other")),
        &[("Authorization", &bearer), json_type],
        &good,
    );
    assert_eq!(
        (status, error(&answer)),
        (404, "Connection not found: other".to_string())
    );
    assert_eq!(sql.received().len(), 13);
}

fn query_url(bq: &FakeBigQuery, project: &str) -> String {
    format!("{}/bigquery/v2/projects/{project}/queries", bq.base)
}

fn results_url(bq: &FakeBigQuery, reference: &Value, extra: &str) -> String {
    format!(
        "{}/bigquery/v2/projects/{}/queries/{}?location={}{extra}",
        bq.base,
        reference["projectId"].as_str().unwrap(),
        reference["jobId"].as_str().unwrap(),
        reference["location"].as_str().unwrap()
    )
}

/// Runs `sql` to the end: jobs.query, then every page. The pages' answers.
fn run_query(bq: &FakeBigQuery, token: &str, body: Value, extra: &str) -> Vec<Value> {
    let (status, answer) = call(
        "POST",
        &query_url(bq, bigquery::DW_PROJECT),
        Some(token),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");
    let reference = answer["jobReference"].clone();
    let mut pages = Vec::new();
    let mut token_param = String::new();
    loop {
        let url = results_url(bq, &reference, &format!("{extra}{token_param}"));
        let (status, page) = call("GET", &url, Some(token), None);
        assert_eq!(status, 200, "{page}");
        if page["jobComplete"] == false {
            continue;
        }
        let next = page["pageToken"].as_str().map(str::to_string);
        pages.push(page);
        match next {
            Some(t) => token_param = format!("&pageToken={t}"),
            None => return pages,
        }
    }
}

/// Every scalar of a wire row is a string or null; RECORDs `{"f": [...]}`,
/// REPEATED arrays of `{"v": ...}`.
fn assert_wire_cells(fields: &[Value], row: &Value) {
    let cells = row["f"].as_array().unwrap();
    assert_eq!(cells.len(), fields.len());
    for (field, cell) in fields.iter().zip(cells) {
        let value = &cell["v"];
        let check = |value: &Value| match field["type"].as_str().unwrap() {
            "RECORD" => assert_wire_cells(field["fields"].as_array().unwrap(), value),
            _ => assert!(value.is_string(), "{field}: {value}"),
        };
        if field["mode"] == "REPEATED" {
            for item in value.as_array().unwrap() {
                check(&item["v"]);
            }
        } else if !value.is_null() {
            check(value);
        }
    }
}

#[test]
fn dw_tokens_are_new_on_every_call_and_revoked_ones_get_401_at_bigquery() {
    let (fake, _sql, _dir, auth) = setup();
    let bq = FakeBigQuery::start_for(&fake);
    let (project, first) = auth.get_carto_dw_credentials().unwrap();
    assert_eq!(project, bigquery::DW_PROJECT);
    let (_, second) = auth.get_carto_dw_credentials().unwrap();
    assert!(first.starts_with("dw-token-") && second.starts_with("dw-token-"));
    assert_ne!(first, second);
    assert_eq!(fake.dw_tokens(), [first.clone(), second.clone()]);

    let body = json!({"query": bigquery::ALL_TYPES_SQL, "useLegacySql": false});
    let url = query_url(&bq, &project);
    assert_eq!(call("POST", &url, Some(&first), Some(&body)).0, 200);
    fake.revoke_dw_tokens();
    let (status, answer) = call("POST", &url, Some(&second), Some(&body));
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], 401);
    assert_eq!(answer["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(answer["error"]["errors"][0]["reason"], "authError");
    let (_, third) = auth.get_carto_dw_credentials().unwrap();
    assert_eq!(call("POST", &url, Some(&third), Some(&body)).0, 200);
    let (status, answer) = call("POST", &url, None, Some(&body));
    assert_eq!(
        (status, &answer["error"]["errors"][0]["reason"]),
        (401, &json!("required"))
    );
    let (status, answer) = call(
        "POST",
        &url,
        Some("a-carto-token-not-a-dw-one"),
        Some(&body),
    );
    assert_eq!(
        (status, &answer["error"]["errors"][0]["reason"]),
        (401, &json!("authError"))
    );
    assert_eq!(bq.query_requests().len(), 5);
    assert_eq!(bq.query_requests()[2].bearer(), Some(third.as_str()));
}

#[test]
fn the_fake_bigquery_pages_every_type_in_bigquery_wire_format() {
    let bq = FakeBigQuery::start();
    let token = bq.issue_dw_token();
    bq.set_pending_polls(1);
    let body = json!({"query": bigquery::ALL_TYPES_SQL, "useLegacySql": false});
    let pages = run_query(&bq, &token, body, "");
    let table = bigquery::all_types_table();
    let fields = bigquery::all_types_fields();
    // 5 rows at 2 a page, after one "not yet".
    assert_eq!(pages.len(), 3);
    assert_eq!(bq.results_requests().len(), 4);
    let rows: Vec<Value> = pages
        .iter()
        .flat_map(|p| {
            assert_eq!(p["schema"]["fields"], fields);
            assert_eq!(p["totalRows"], "5");
            assert_eq!(p["jobComplete"], true);
            p["rows"].as_array().unwrap().clone()
        })
        .collect();
    assert_eq!(rows.len(), 5);
    for (i, row) in rows.iter().enumerate() {
        assert_wire_cells(fields.as_array().unwrap(), row);
        assert_eq!(row, &table.wire_row(i, TimestampFormat::Float64));
    }
    // TIMESTAMP as float seconds, FLOAT64 specials, JSON null vs NULL,
    // REPEATED never null.
    let cell = |row: usize, col: usize| rows[row]["f"][col]["v"].clone();
    assert_eq!(cell(0, 11), "1.709210096789012E9");
    assert_eq!(cell(2, 11), "-1.0E8");
    assert_eq!(cell(3, 11), "0.0");
    assert_eq!(cell(0, 14)["f"][2]["v"]["f"][1]["v"], "1.0000000005E9");
    assert_eq!(
        (cell(2, 2), cell(3, 2), cell(4, 2)),
        (json!("NaN"), json!("Infinity"), json!("-Infinity"))
    );
    assert_eq!((cell(2, 13), cell(1, 13)), (json!("null"), Value::Null));
    assert_eq!((cell(1, 15), cell(1, 16)), (json!([]), json!([])));

    // The same job's rows with microsecond and ISO timestamps.
    let body = json!({"query": bigquery::ALL_TYPES_SQL, "useLegacySql": false});
    let int64 = run_query(
        &bq,
        &token,
        body.clone(),
        "&formatOptions.useInt64Timestamp=true&maxResults=5",
    );
    assert_eq!(int64[0]["rows"][0]["f"][11]["v"], "1709210096789012");
    let iso = run_query(
        &bq,
        &token,
        body,
        "&formatOptions.timestampOutputFormat=ISO8601_STRING",
    );
    assert_eq!(
        iso[0]["rows"][0]["f"][11]["v"],
        "2024-02-29T12:34:56.789012Z"
    );
    assert_eq!(
        iso[1]["rows"][0]["f"][11]["v"],
        "1966-10-31T14:13:20.000000Z"
    );
}

#[test]
fn the_fake_bigquery_refuses_what_bigquery_refuses() {
    let bq = FakeBigQuery::start();
    let token = bq.issue_dw_token();
    let url = query_url(&bq, bigquery::DW_PROJECT);
    let reason = |answer: &Value| answer["error"]["errors"][0]["reason"].clone();

    // The REST default is legacy SQL.
    let (status, answer) = call(
        "POST",
        &url,
        Some(&token),
        Some(&json!({"query": bigquery::ALL_TYPES_SQL})),
    );
    assert_eq!((status, reason(&answer)), (400, json!("invalidQuery")));
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Try using standard SQL")
    );
    let (status, answer) = call(
        "POST",
        &url,
        Some(&token),
        Some(&json!({"query": bigquery::BAD_SQL, "useLegacySql": false})),
    );
    assert_eq!((status, reason(&answer)), (400, json!("invalidQuery")));
    assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(answer["error"]["errors"][0]["location"], "q");
    let (status, answer) = call(
        "POST",
        &url,
        Some(&token),
        Some(&json!({"query": bigquery::ALL_TYPES_SQL, "useLegacySql": true})),
    );
    assert_eq!((status, reason(&answer)), (400, json!("invalidQuery")));
    let (status, answer) = call(
        "POST",
        &url,
        Some(&token),
        Some(&json!({"query": "SELECT 1", "uselegacysql": false})),
    );
    assert_eq!((status, reason(&answer)), (400, json!("invalid")));
    let (status, answer) = call(
        "POST",
        &query_url(&bq, "someone-else"),
        Some(&token),
        Some(&json!({"query": bigquery::ALL_TYPES_SQL, "useLegacySql": false})),
    );
    assert_eq!((status, reason(&answer)), (403, json!("accessDenied")));
    let (status, answer) = call(
        "POST",
        &url,
        Some(&token),
        Some(&json!({"query": "SELECT * FROM fake.nothing", "useLegacySql": false})),
    );
    assert_eq!((status, reason(&answer)), (404, json!("notFound")));

    // A job that fails, and a poll without its location.
    let (status, answer) = call(
        "POST",
        &url,
        Some(&token),
        Some(&json!({"query": bigquery::DIVISION_BY_ZERO_SQL, "useLegacySql": false})),
    );
    assert_eq!((status, &answer["jobComplete"]), (200, &json!(false)));
    let reference = answer["jobReference"].clone();
    let (status, answer) = call("GET", &results_url(&bq, &reference, ""), Some(&token), None);
    assert_eq!((status, reason(&answer)), (400, json!("invalidQuery")));
    assert_eq!(answer["error"]["message"], "division by zero: 1 / 0");
    let no_location = results_url(&bq, &reference, "").replace("location=US", "timeoutMs=10");
    let (status, answer) = call("GET", &no_location, Some(&token), None);
    assert_eq!((status, reason(&answer)), (404, json!("notFound")));

    bq.fail_next(1, 503);
    let (status, answer) = call(
        "POST",
        &url,
        Some(&token),
        Some(&json!({"query": bigquery::ALL_TYPES_SQL, "useLegacySql": false})),
    );
    assert_eq!((status, reason(&answer)), (503, json!("backendError")));
}

#[test]
fn the_fake_bigquery_generates_large_tables_in_chosen_pages() {
    let bq = FakeBigQuery::start();
    let token = bq.issue_dw_token();
    bq.set_page_size(300);
    bq.complete_in_query(true);
    let body =
        json!({"query": bigquery::generated_sql(1000), "useLegacySql": false, "maxResults": 250});
    let (status, first) = call(
        "POST",
        &query_url(&bq, bigquery::DW_PROJECT),
        Some(&token),
        Some(&body),
    );
    assert_eq!(status, 200);
    assert_eq!(
        (first["jobComplete"].clone(), first["totalRows"].clone()),
        (json!(true), json!("1000"))
    );
    assert_eq!(first["rows"].as_array().unwrap().len(), 250);
    let reference = first["jobReference"].clone();
    let mut rows = first["rows"].as_array().unwrap().clone();
    let mut next = first["pageToken"].as_str().map(str::to_string);
    while let Some(page_token) = next {
        let url = results_url(&bq, &reference, &format!("&pageToken={page_token}"));
        let (status, page) = call("GET", &url, Some(&token), None);
        assert_eq!(status, 200, "{page}");
        // No maxResults: the page size caps it.
        assert!(page["rows"].as_array().unwrap().len() <= 300);
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        next = page["pageToken"].as_str().map(str::to_string);
    }
    assert_eq!(rows.len(), 1000);
    for i in [0, 9, 499, 999] {
        let cells: Vec<Value> = rows[i]["f"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["v"].clone())
            .collect();
        assert_eq!(
            cells,
            bigquery::generated_cells(i, TimestampFormat::Float64),
            "row {i}"
        );
    }
    assert_eq!(rows[9]["f"][9]["v"], Value::Null);
    assert_eq!(rows[999]["f"][0]["v"], "1000");
}
