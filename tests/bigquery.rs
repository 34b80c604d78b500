//! Google's BigQuery client (feature `bigquery`) built by the CARTO Data
//! Warehouse client, against the fake CARTO and the fake BigQuery, through
//! the SDK's own requests: the DW token as the bearer, the DW client's
//! BigQuery root as the endpoint, the token fetched again once older than
//! the max age (and shared with the DW client), and rustls's process-wide
//! provider left as the program set it.
#![cfg(feature = "bigquery")]

mod support;

use std::time::Duration;

use carto_auth::google_cloud_bigquery_v2::model::QueryRequest;
use carto_auth::{CartoAuth, CartoDwClient};
use support::FakeCarto;
use support::bigquery::{self, FakeBigQuery};

async fn client(auth: &CartoAuth, bq: &FakeBigQuery) -> CartoDwClient {
    auth.get_carto_dw_client_async()
        .await
        .unwrap()
        .bigquery_url(&bq.base)
        .unwrap()
}

/// The dataset, table and job services list the DW project's datasets, get
/// a table's metadata and run a query, each request at the fake BigQuery
/// (the endpoint) with the DW token the client was made with.
#[tokio::test(flavor = "multi_thread")]
async fn googles_services_read_datasets_tables_and_jobs_with_the_dw_token() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    let (_dir, auth) = support::m2m_session_async(&fake).await;
    let dw = client(&auth, &bq).await;

    let datasets = dw.dataset_service().await.unwrap();
    let list = datasets
        .list_datasets()
        .set_project_id(dw.project_id())
        .send()
        .await
        .unwrap();
    assert_eq!(list.datasets.len(), 1);
    assert_eq!(list.datasets[0].id, "carto-dw-ac-fake:fake");
    let reference = list.datasets[0].dataset_reference.as_ref().unwrap();
    assert_eq!(reference.dataset_id, "fake");
    assert_eq!(list.datasets[0].location, bigquery::LOCATION);

    let tables = dw.table_service().await.unwrap();
    let table = tables
        .get_table()
        .set_project_id(dw.project_id())
        .set_dataset_id("fake")
        .set_table_id("all_types")
        .send()
        .await
        .unwrap();
    assert_eq!(table.id, "carto-dw-ac-fake:fake.all_types");
    assert_eq!(table.num_rows, Some(5));
    let fields = &table.schema.as_ref().unwrap().fields;
    assert_eq!(fields.len(), 17);
    assert_eq!(
        (fields[0].name.as_str(), fields[0].r#type.as_str()),
        ("id", "INTEGER")
    );
    // BigQuery's own error, through the SDK.
    let missing = tables
        .get_table()
        .set_project_id(dw.project_id())
        .set_dataset_id("fake")
        .set_table_id("nowhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.http_status_code(), Some(404), "{missing:?}");

    let jobs = dw.job_service().await.unwrap();
    let answer = jobs
        .query()
        .set_project_id(dw.project_id())
        .set_query_request(
            QueryRequest::new()
                .set_query(bigquery::EMPTY_SQL)
                .set_use_legacy_sql(false),
        )
        .send()
        .await
        .unwrap();
    assert!(!answer.job_reference.unwrap().job_id.is_empty());

    let token = &fake.dw_tokens()[0];
    let requests = bq.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/bigquery/v2/projects/carto-dw-ac-fake/datasets",
            "/bigquery/v2/projects/carto-dw-ac-fake/datasets/fake/tables/all_types",
            "/bigquery/v2/projects/carto-dw-ac-fake/datasets/fake/tables/nowhere",
            "/bigquery/v2/projects/carto-dw-ac-fake/queries",
        ]
    );
    assert!(
        requests.iter().all(|r| r.bearer() == Some(token.as_str())),
        "{requests:#?}"
    );
    assert_eq!(fake.dw_tokens().len(), 1, "a young token is reused");
    // The credentials show no token.
    assert!(!format!("{:?}", dw.bigquery_credentials()).contains(token.as_str()));
}

/// A DW token older than the max age is fetched again before the SDK's
/// request, and the new one serves the DW client it was cloned from too; a
/// younger one that BigQuery refuses is the SDK's 401.
#[tokio::test(flavor = "multi_thread")]
async fn a_dw_token_older_than_the_max_age_is_fetched_again_for_googles_clients() {
    let fake = FakeCarto::start();
    let bq = FakeBigQuery::start_for(&fake);
    let (_dir, auth) = support::m2m_session_async(&fake).await;
    let dw = client(&auth, &bq).await;
    let young = dw.table_service().await.unwrap();
    let get_table = |tables: &carto_auth::google_cloud_bigquery_v2::client::TableService| {
        tables
            .get_table()
            .set_project_id(bigquery::DW_PROJECT)
            .set_dataset_id("fake")
            .set_table_id("empty")
            .send()
    };

    // Revoked: the young token is still sent, and refused.
    fake.revoke_dw_tokens();
    let refused = get_table(&young).await.unwrap_err();
    assert_eq!(refused.http_status_code(), Some(401), "{refused:?}");
    assert_eq!(fake.dw_tokens().len(), 1);

    // Too old: a new token before each request.
    let aged = dw.clone().token_max_age(Duration::ZERO);
    let tables = aged.table_service().await.unwrap();
    get_table(&tables).await.unwrap();
    get_table(&tables).await.unwrap();
    let tokens = fake.dw_tokens();
    assert_eq!(tokens.len(), 3, "one new token per request");
    let bearers: Vec<String> = bq.requests()[1..]
        .iter()
        .map(|r| r.bearer().unwrap().to_string())
        .collect();
    assert_eq!(bearers, [tokens[1].clone(), tokens[2].clone()]);

    // The young client now sends the renewed token, without a fetch of its own.
    get_table(&young).await.unwrap();
    assert_eq!(
        bq.requests().last().unwrap().bearer(),
        Some(tokens[2].as_str())
    );
    assert_eq!(fake.dw_tokens().len(), 3);
    // And `query` uses it as well.
    dw.query_async(bigquery::EMPTY_SQL).await.unwrap();
    assert_eq!(fake.dw_tokens().len(), 3);
}

/// Google's clients need rustls's process-wide provider: one the program
/// installed is kept, and *ring* is installed only when there is none.
/// Each case runs in a child process of its own (the default can be set
/// once per process).
#[test]
fn the_programs_rustls_provider_is_kept_and_ring_installed_when_there_is_none() {
    let test = support::child_test!(provider_child);
    let home = tempfile::tempdir().unwrap();
    for case in ["program", "none"] {
        let mut child = test.session(case, home.path(), &[]);
        let (result, stderr) = child.result(std::time::Duration::from_secs(60));
        assert_eq!(result, format!("{case} ok"), "{stderr}");
    }
}

/// In the child: a provider installed by "the program" or none, then a
/// BigQuery client built and used; which provider is the default after.
fn provider_child() {
    use rustls::crypto::{CryptoProvider, ring};
    let case = support::child_scenario().unwrap();
    assert!(CryptoProvider::get_default().is_none());
    let all_suites = ring::default_provider().cipher_suites.len();
    if case == "program" {
        // Recognizable: one cipher suite only.
        let mut own = ring::default_provider();
        own.cipher_suites.truncate(1);
        own.install_default().unwrap();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let fake = FakeCarto::start();
            let bq = FakeBigQuery::start_for(&fake);
            let (_dir, auth) = support::m2m_session_async(&fake).await;
            let dw = client(&auth, &bq).await;
            let datasets = dw.dataset_service().await.unwrap();
            datasets
                .list_datasets()
                .set_project_id(dw.project_id())
                .send()
                .await
                .unwrap();
        });
    let installed = CryptoProvider::get_default().expect("a process-wide provider");
    let expected = if case == "program" { 1 } else { all_suites };
    assert_eq!(installed.cipher_suites.len(), expected, "{case}");
    println!("\nRESULT {case} ok");
}
