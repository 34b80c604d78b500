//! The CARTO Data Warehouse client (feature `carto-dw`) against the fake
//! CARTO and the fake BigQuery: standard SQL, a job that is not complete at
//! once, every page, every type decoded by the schema, BigQuery's errors,
//! and the DW token fetched when first needed, again when BigQuery refuses
//! it (one retry), and when it is too old.
#![cfg(feature = "carto-dw")]

mod support;

use std::time::Duration;

use carto_auth::{CartoAuth, CartoDwClient, Error};
use serde_json::{Value, json};
use support::FakeCarto;
use support::bigquery::{self, FakeBigQuery};

fn client(auth: &CartoAuth, bq: &FakeBigQuery) -> CartoDwClient {
    auth.get_carto_dw_client()
        .unwrap()
        .bigquery_url(&bq.base)
        .unwrap()
}

#[test]
fn a_query_is_standard_sql_polled_until_done_and_read_to_the_last_page() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    bq.set_pending_polls(2);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq);
    assert_eq!(dw.project_id(), bigquery::DW_PROJECT);
    let result = dw.query(bigquery::ALL_TYPES_SQL).unwrap();

    let query = &bq.query_requests()[0];
    let body: Value = serde_json::from_str(&query.body).unwrap();
    assert_eq!(body["useLegacySql"], false);
    assert_eq!(body["query"], bigquery::ALL_TYPES_SQL);
    assert_eq!(body["formatOptions"]["useInt64Timestamp"], true);
    assert_eq!(query.bearer(), Some(fake.dw_tokens()[0].as_str()));
    // Two polls while the job runs, then pages of 2 rows: 5 rows in 3.
    let results = bq.results_requests();
    assert_eq!(results.len(), 2 + 3, "{results:#?}");
    assert!(
        results
            .iter()
            .all(|r| r.query_value("location") == Some(bigquery::LOCATION))
    );
    assert_eq!(result.len(), 5);

    let names: Vec<(&str, &str)> = result
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_name()))
        .collect();
    assert_eq!(names[0], ("id", "INTEGER"));
    assert_eq!(names[14], ("record", "RECORD"));
    assert_eq!(names[15], ("int_array", "ARRAY<INTEGER>"));
    assert_eq!(names[16], ("record_array", "ARRAY<RECORD>"));

    let first = &result.rows()[0];
    assert_eq!(first["id"], 1);
    assert_eq!(first["int64"], 42);
    // The fake's FLOAT64 "3.14159", not π.
    assert_eq!(first["float64"].as_f64(), "3.14159".parse().ok());
    assert_eq!(
        first["numeric"], "123.456789",
        "NUMERIC stays exact, as text"
    );
    assert!(
        first["bignumeric"]
            .as_str()
            .unwrap()
            .starts_with("578960446186580977117854925043439539266.")
    );
    assert_eq!(first["bool"], true);
    assert_eq!(first["string"], "Madrid");
    assert_eq!(first["date"], "2024-02-29");
    assert_eq!(first["timestamp"], "2024-02-29T12:34:56.789012Z");
    assert!(first["geography"].as_str().unwrap().starts_with("POINT"));
    assert!(
        first["json"].is_object() || first["json"].is_array(),
        "{}",
        first["json"]
    );
    assert!(
        first["record"]["inner"]["at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        first["int_array"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_i64)
    );
    assert!(first["record_array"][0].is_object());

    let nulls = &result.rows()[1];
    assert_eq!(nulls["int64"], Value::Null);
    assert_eq!(nulls["string"], Value::Null);
    assert_eq!(nulls["int_array"], json!([]));
    let extremes = &result.rows()[2];
    assert_eq!(extremes["int64"], i64::MIN);
    assert_eq!(extremes["float64"], "NaN", "JSON has no NaN number");
    assert_eq!(extremes["timestamp"], "1966-10-31T14:13:20Z");
    assert_eq!(result.rows()[3]["int64"], i64::MAX);
    assert_eq!(result.rows()[3]["string"], "null", "the text, not NULL");
    assert_eq!(result.rows()[3]["float64"], "Infinity");

    assert_eq!(result.meta()["totalRows"], 5);
    assert_eq!(result.meta()["location"], bigquery::LOCATION);
    // One DW token, fetched when the client was made.
    assert_eq!(fake.dw_tokens().len(), 1);
}

#[test]
fn a_refused_dw_token_is_fetched_again_and_the_query_retried_once() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq);
    assert_eq!(dw.query(bigquery::EMPTY_SQL).unwrap().len(), 0);
    fake.revoke_dw_tokens();
    let result = dw.query(bigquery::ALL_TYPES_SQL).unwrap();
    assert_eq!(result.len(), 5);
    let tokens = fake.dw_tokens();
    assert_eq!(tokens.len(), 2, "one new DW token");
    let queries = bq.query_requests();
    assert_eq!(queries[1].bearer(), Some(tokens[0].as_str()), "refused");
    assert_eq!(queries[2].bearer(), Some(tokens[1].as_str()), "retried");

    // Refused again right after a new token: one retry only, then the error.
    fake.revoke_dw_tokens();
    bq.fail_next(2, 401);
    let err = dw.query(bigquery::EMPTY_SQL).unwrap_err();
    assert!(
        matches!(err, Error::BigQuery { status: 401, .. }),
        "{err:?}"
    );
}

#[test]
fn the_dw_token_is_fetched_again_when_it_is_too_old() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq);
    dw.query(bigquery::EMPTY_SQL).unwrap();
    dw.query(bigquery::EMPTY_SQL).unwrap();
    assert_eq!(fake.dw_tokens().len(), 1, "a young token is reused");
    let aged = dw.clone().token_max_age(Duration::ZERO);
    aged.query(bigquery::EMPTY_SQL).unwrap();
    aged.query(bigquery::EMPTY_SQL).unwrap();
    assert_eq!(fake.dw_tokens().len(), 3, "a new token before each query");
    let last = bq
        .query_requests()
        .last()
        .unwrap()
        .bearer()
        .unwrap()
        .to_string();
    assert_eq!(last, fake.dw_tokens()[2]);
}

#[test]
fn bigquery_errors_quote_its_message_and_reason() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq);
    let err = dw.query(bigquery::BAD_SQL).unwrap_err();
    assert!(
        matches!(&err, Error::BigQuery { status: 400, reason: Some(r), .. } if r == "invalidQuery"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("Syntax error") && msg.contains("invalidQuery"),
        "{msg}"
    );
    let err = dw
        .query(bigquery::DIVISION_BY_ZERO_SQL)
        .unwrap_err()
        .to_string();
    assert!(err.contains("division by zero"), "{err}");
    bq.fail_next(1, 500);
    let err = dw.query(bigquery::EMPTY_SQL).unwrap_err();
    assert!(
        matches!(err, Error::BigQuery { status: 500, .. }),
        "{err:?}"
    );
    let err = client(&auth, &bq)
        .bigquery_url("http://127.0.0.1:1")
        .unwrap()
        .query(bigquery::EMPTY_SQL)
        .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert!(matches!(
        dw.clone().bigquery_url("ftp://x"),
        Err(Error::InvalidSetting { .. })
    ));
    // No DW token in what is shown.
    let shown = format!("{msg} {err} {dw:?}");
    for token in fake.dw_tokens() {
        assert!(!shown.contains(&token), "{shown}");
    }
}

#[test]
fn a_thousand_rows_in_many_pages_decode_as_generated() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    bq.set_page_size(250);
    let (_dir, auth) = support::m2m_session(&fake);
    let result = client(&auth, &bq)
        .query(&bigquery::generated_sql(1000))
        .unwrap();
    assert_eq!(result.len(), 1000);
    assert_eq!(result.columns().len(), 10);
    for i in [0, 1, 249, 250, 999] {
        let wire = bigquery::generated_cells(i, bigquery::TimestampFormat::Int64);
        let row = &result.rows()[i];
        for (col, cell) in result.columns().iter().zip(&wire) {
            let got = &row[col.name()];
            match (col.type_name(), cell) {
                (_, Value::Null) => assert_eq!(got, &Value::Null),
                ("INTEGER", Value::String(s)) => assert_eq!(got, &json!(s.parse::<i64>().unwrap())),
                ("TIMESTAMP", _) => assert!(got.as_str().unwrap().ends_with('Z'), "{got}"),
                ("STRING" | "GEOGRAPHY" | "DATE", Value::String(s)) => assert_eq!(got, s),
                _ => {}
            }
        }
    }
}

/// The async twin sends what the blocking call sends, with the DW token,
/// and decodes alike.
#[tokio::test(flavor = "multi_thread")]
async fn the_async_twin_queries_with_the_dw_token() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    let (_dir, auth) = support::m2m_session_async(&fake).await;
    let dw = auth
        .get_carto_dw_client_async()
        .await
        .unwrap()
        .bigquery_url(&bq.base)
        .unwrap();
    let result = dw.query_async(bigquery::ALL_TYPES_SQL).await.unwrap();
    assert_eq!(result.len(), 5);
    assert_eq!(result.rows()[0]["timestamp"], "2024-02-29T12:34:56.789012Z");
    let query = &bq.query_requests()[0];
    assert_eq!(query.bearer(), Some(fake.dw_tokens()[0].as_str()));
    assert_eq!(
        query.content_type().map(|t| t.split(';').next().unwrap()),
        Some("application/json")
    );
    assert!(
        bq.results_requests()
            .iter()
            .all(|r| r.bearer() == Some(fake.dw_tokens()[0].as_str()))
    );
}

/// Every page is asked for with the token of the page before it, the first
/// without one, whether jobs.query already carried the first page or not;
/// the job id, location and page tokens reach BigQuery as they were given
/// (escaped in the URL: the fake reads them unescaped).
#[test]
fn pages_follow_their_tokens_and_ids_are_escaped_in_the_url() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    bq.set_location("europe-west1 & co+/?#%");
    bq.set_id_prefixes("job/ä ?#%&+_", "BH+/=&?#%");
    bq.set_pending_polls(1);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq);
    let result = dw.query(bigquery::ALL_TYPES_SQL).unwrap();
    assert_eq!(result.len(), 5);
    assert_eq!(result.meta()["location"], "europe-west1 & co+/?#%");
    assert!(
        result.meta()["jobId"]
            .as_str()
            .unwrap()
            .starts_with("job/ä ?#%&+_")
    );
    let issued = bq.page_tokens();
    assert_eq!(issued.len(), 2, "5 rows in pages of 2");
    let sent: Vec<Option<String>> = bq
        .results_requests()
        .iter()
        .map(|r| r.query_value("pageToken").map(str::to_string))
        .collect();
    // A poll, the first page, then one request per token handed out.
    assert_eq!(
        sent,
        vec![None, None, Some(issued[0].clone()), Some(issued[1].clone())]
    );
    for r in bq.results_requests() {
        assert_eq!(r.query_value("location"), Some("europe-west1 & co+/?#%"));
        assert_eq!(
            r.query_value("formatOptions.useInt64Timestamp"),
            Some("true")
        );
        assert_eq!(r.query_value("timeoutMs"), Some("10000"));
        // One escaped segment: the job id's `/` is no path separator.
        assert_eq!(r.path.split('/').count(), 7, "{}", r.path);
        assert!(r.path.contains("/queries/job%2F"), "{}", r.path);
    }

    // jobs.query answering complete with the first page: the next request is
    // already the second page.
    bq.set_pending_polls(0);
    bq.complete_in_query(true);
    let before = bq.results_requests().len();
    let result = dw.query(&bigquery::generated_sql(5)).unwrap();
    assert_eq!(result.len(), 5);
    let issued = bq.page_tokens();
    let sent: Vec<Option<String>> = bq.results_requests()[before..]
        .iter()
        .map(|r| r.query_value("pageToken").map(str::to_string))
        .collect();
    assert_eq!(sent, vec![Some(issued[2].clone()), Some(issued[3].clone())]);
    assert_eq!(result.rows()[4]["id"], 5);
}

/// A DW token refused while the job is polled (not only by jobs.query) is
/// fetched again and the whole query run once more with the new one.
#[test]
fn a_dw_token_refused_while_polling_is_renewed_and_the_query_run_again() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    bq.set_pending_polls(1);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq);
    // Requests: 0 jobs.query, 1 a poll, 2 the first page: refused.
    bq.fail_request(2, 401);
    let result = dw.query(bigquery::ALL_TYPES_SQL).unwrap();
    assert_eq!(result.len(), 5);
    let tokens = fake.dw_tokens();
    assert_eq!(tokens.len(), 2, "one new DW token");
    let requests = bq.requests();
    assert!(
        requests[..3]
            .iter()
            .all(|r| r.bearer() == Some(tokens[0].as_str()))
    );
    assert!(requests[3].path.ends_with("/queries"), "the query again");
    assert!(
        requests[3..]
            .iter()
            .all(|r| r.bearer() == Some(tokens[1].as_str()))
    );
    // Its later calls keep the new token: no third one.
    dw.query(bigquery::EMPTY_SQL).unwrap();
    assert_eq!(fake.dw_tokens().len(), 2);
}

/// `query_timeout` bounds the whole query, polls included: a job that never
/// completes ends in a network error that says how to allow more.
#[test]
fn a_query_longer_than_its_timeout_is_a_network_error_that_says_so() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    bq.set_pending_polls(u32::MAX);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq).query_timeout(Duration::from_millis(700));
    let started = std::time::Instant::now();
    let err = dw.query(bigquery::ALL_TYPES_SQL).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, Error::Network { message, .. }
            if message == "the query did not finish within 0.7 s (.query_timeout(..) allows more)"),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(bq.results_requests().len() >= 2, "it polled");
}

/// The largest query timeout and token age mean no limit: the query runs
/// (through its polls) and the DW token is kept.
#[test]
fn the_largest_query_timeout_and_token_age_mean_no_limit() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    bq.set_pending_polls(1);
    let (_dir, auth) = support::m2m_session(&fake);
    let dw = client(&auth, &bq)
        .query_timeout(Duration::MAX)
        .token_max_age(Duration::MAX);
    assert_eq!(dw.query(bigquery::ALL_TYPES_SQL).unwrap().len(), 5);
    assert_eq!(dw.query(bigquery::ALL_TYPES_SQL).unwrap().len(), 5);
    assert_eq!(fake.dw_tokens().len(), 1);
}
