//! The CARTO Data Warehouse client: BigQuery with the token CARTO hands
//! out for it, kept fresh. Feature `carto-dw`.
//!
//! The Python package's `get_carto_dw_client()` builds a BigQuery client
//! from the DW token once and never renews it, so it stops working after an
//! hour. This client fetches the token when first needed, again when it is
//! 55 minutes old, and once more when BigQuery refuses it.
//!
//! The BigQuery crate is `google-bigquery2` (generated from Google's API
//! description): of the candidates measured it adds the fewest crates and
//! compile seconds to a notebook's first cell, reuses this crate's hyper
//! and rustls-with-ring stack, takes a plain bearer token and a moved
//! endpoint, and reads every column type (see the README's feature table).

mod decode;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use google_bigquery2::api::{DataFormatOptions, QueryRequest, TableRow, TableSchema};
use google_bigquery2::hyper_rustls::HttpsConnector;
use google_bigquery2::hyper_util::client::legacy::connect::HttpConnector;
use google_bigquery2::{Bigquery, common, hyper_rustls, hyper_util};
use serde_json::{Value, json};

use crate::api::carto_dw_credentials;
use crate::auth::CartoAuth;
use crate::environment::var;
use crate::error::{Error, Result, Service};
use crate::http::seconds;
use crate::query::QueryResult;
use crate::runtime::{Call, block_on};
use decode::{Field, decode_row};

/// The BigQuery API root, unless `CARTO_BIGQUERY_URL` moves it.
const BIGQUERY_ROOT: &str = "https://bigquery.googleapis.com";
/// Google access tokens last an hour; renew with a margin.
const DW_TOKEN_MAX_AGE: Duration = Duration::from_secs(55 * 60);
/// How long BigQuery may hold one `getQueryResults` call while the query
/// runs (server side).
const POLL_WAIT_MS: u32 = 10_000;
/// How long a whole query may take, polls and pages included.
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The BigQuery client `CartoDwClient::bigquery` returns: google-bigquery2's
/// hub over HTTPS with this crate's rustls set-up.
pub type BigQueryHub = Bigquery<HttpsConnector<HttpConnector>>;

/// The DW token and when it was fetched.
struct DwToken {
    token: String,
    fetched: Instant,
}

/// A client for the CARTO Data Warehouse (BigQuery). Made by
/// [`CartoAuth::get_carto_dw_client`]. Feature `carto-dw`.
///
/// Cheap to clone; holds plain data only, so that it can live in a notebook
/// variable (each call builds its HTTP client: evcxr links each cell with its
/// own copy of the runtime).
///
/// ```no_run
/// let auth = carto_auth::CartoAuth::from_oauth()?;
/// let dw = auth.get_carto_dw_client()?;
/// let result = dw.query("SELECT COUNT(*) AS n FROM `carto-demo-data.demo_tables.populated_places`")?;
/// println!("{} in {}", result.rows()[0]["n"], dw.project_id());
/// # Ok::<(), carto_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct CartoDwClient {
    auth: CartoAuth,
    project_id: String,
    token: Arc<Mutex<DwToken>>,
    root: String,
    query_timeout: Duration,
    token_max_age: Duration,
}

impl std::fmt::Debug for CartoDwClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CartoDwClient")
            .field("project_id", &self.project_id)
            .field("bigquery", &self.root)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl CartoAuth {
    /// A client for the CARTO Data Warehouse, with a DW token fetched now
    /// from `/v3/connections/carto-dw/token`. Feature `carto-dw`.
    ///
    /// # Errors
    /// [`Error::NoApiBaseUrl`]; the DW endpoint's errors;
    /// [`Error::InvalidSetting`] for a bad `CARTO_BIGQUERY_URL`.
    pub fn get_carto_dw_client(&self) -> Result<CartoDwClient> {
        block_on(
            Call {
                name: "CartoAuth::get_carto_dw_client",
                twin: "get_carto_dw_client_async",
            },
            self.get_carto_dw_client_async(),
        )?
    }

    /// [`get_carto_dw_client`](Self::get_carto_dw_client) for async programs.
    pub async fn get_carto_dw_client_async(&self) -> Result<CartoDwClient> {
        let root = match var("CARTO_BIGQUERY_URL") {
            Some(url) => {
                crate::endpoints::check_http_url("CARTO_BIGQUERY_URL", &url)?;
                url.trim_end_matches('/').to_string()
            }
            None => BIGQUERY_ROOT.to_string(),
        };
        let (project_id, token) = fetch_dw_token(self).await?;
        Ok(CartoDwClient {
            auth: self.clone(),
            project_id,
            token: Arc::new(Mutex::new(DwToken {
                token,
                fetched: Instant::now(),
            })),
            root,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            token_max_age: DW_TOKEN_MAX_AGE,
        })
    }
}

async fn fetch_dw_token(auth: &CartoAuth) -> Result<(String, String)> {
    let base = auth.api_base_url_or_error()?;
    let token = auth.token_async().await?;
    let http = crate::http::Http::new(auth.request_timeout())?;
    let fetched = carto_dw_credentials(&http, base, &token).await?;
    log::info!("fetched a CARTO Data Warehouse token");
    Ok(fetched)
}

impl CartoDwClient {
    /// The CARTO Data Warehouse's BigQuery project.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// Another BigQuery API root than `https://bigquery.googleapis.com` (or
    /// `CARTO_BIGQUERY_URL`): a proxy, a test server.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] when it is not an `http(s)` URL.
    pub fn bigquery_url(mut self, url: impl Into<String>) -> Result<Self> {
        let url = url.into();
        crate::endpoints::check_http_url("the BigQuery URL", &url)?;
        self.root = url.trim_end_matches('/').to_string();
        Ok(self)
    }

    /// How long a whole [`query`](Self::query) may take (default 10 minutes).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// How long a DW token is used before it is fetched again (default 55
    /// minutes: Google's access tokens last an hour).
    pub fn token_max_age(mut self, age: Duration) -> Self {
        self.token_max_age = age;
        self
    }

    fn current(&self) -> std::sync::MutexGuard<'_, DwToken> {
        self.token.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The DW token, fetched again when it is 55 minutes old (or `force`).
    async fn fresh_token(&self, force: bool) -> Result<String> {
        {
            let current = self.current();
            if !force && current.fetched.elapsed() < self.token_max_age {
                return Ok(current.token.clone());
            }
        }
        let (_, token) = fetch_dw_token(&self.auth).await?;
        *self.current() = DwToken {
            token: token.clone(),
            fetched: Instant::now(),
        };
        Ok(token)
    }

    /// google-bigquery2's client for everything else BigQuery does (tables,
    /// datasets, inserts, jobs), authorized with the DW token and renewing
    /// it as [`query`](Self::query) does. Use it in the cell (or task) that
    /// makes it: it drives its connections on the runtime it runs on.
    ///
    /// ```no_run
    /// # async fn tables(auth: carto_auth::CartoAuth) -> Result<(), Box<dyn std::error::Error>> {
    /// let dw = auth.get_carto_dw_client_async().await?;
    /// let hub = dw.bigquery()?;
    /// let (_, datasets) = hub.datasets().list(dw.project_id()).doit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Setup`] when TLS cannot be set up.
    pub fn bigquery(&self) -> Result<BigQueryHub> {
        let tls = crate::http::tls_config()?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                // Each call may run on a runtime of its own.
                .pool_max_idle_per_host(0)
                .build(connector);
        let mut hub = Bigquery::new(client, TokenSource(self.clone()));
        hub.base_url(format!("{}/bigquery/v2/", self.root));
        hub.root_url(format!("{}/", self.root));
        Ok(hub)
    }

    /// Runs a query in standard SQL (never legacy), waits until it is done
    /// and reads every page of the answer, decoding each value by its
    /// column's type: INT64 an integer, FLOAT64 a number, NUMERIC and
    /// BIGNUMERIC exact decimal strings, BOOL a boolean, STRING, GEOGRAPHY
    /// (WKT), DATE, TIME and DATETIME strings, TIMESTAMP an RFC 3339 UTC
    /// string, BYTES base64, JSON the parsed value, RECORD an object,
    /// REPEATED an array, NULL null.
    ///
    /// # Errors
    /// [`Error::BigQuery`] quoting BigQuery's message and reason (a refused
    /// DW token is fetched again and the query tried once more);
    /// [`Error::Network`]; the DW token endpoint's errors.
    pub fn query(&self, sql: &str) -> Result<QueryResult> {
        block_on(
            Call {
                name: "CartoDwClient::query",
                twin: "query_async",
            },
            self.query_async(sql),
        )?
    }

    /// [`query`](Self::query) for async programs.
    pub async fn query_async(&self, sql: &str) -> Result<QueryResult> {
        let token = self.fresh_token(false).await?;
        match self.run_query(sql, token).await {
            Err(Error::BigQuery { status: 401, .. }) => {
                log::info!("BigQuery refused the CARTO DW token; fetching a new one");
                let token = self.fresh_token(true).await?;
                self.run_query(sql, token).await
            }
            other => other,
        }
    }

    async fn run_query(&self, sql: &str, token: String) -> Result<QueryResult> {
        let hub = self.hub_with(token)?;
        // `None` past what `Instant` holds (`Duration::MAX`): no deadline.
        let deadline = Instant::now().checked_add(self.query_timeout);
        let request = QueryRequest {
            query: Some(sql.to_string()),
            use_legacy_sql: Some(false),
            // Exact microseconds instead of float seconds.
            format_options: Some(DataFormatOptions {
                use_int64_timestamp: Some(true),
                ..Default::default()
            }),
            timeout_ms: Some(POLL_WAIT_MS),
            ..Default::default()
        };
        let project = self.project_id.as_str();
        let (_, first) = self
            .call(deadline, hub.jobs().query(request, project).doit())
            .await?;
        let job = first.job_reference.clone().unwrap_or_default();
        let job_id = job.job_id.clone().unwrap_or_default();
        let location = job.location.clone().or(first.location.clone());
        let mut page = Page {
            complete: first.job_complete.unwrap_or(false),
            schema: first.schema,
            rows: first.rows,
            token: first.page_token,
            total_rows: first.total_rows,
            bytes: first.total_bytes_processed,
            cache_hit: first.cache_hit,
        };
        let mut pause = Duration::from_millis(100);
        let mut fields = None;
        let mut rows = Vec::new();
        loop {
            if page.complete {
                let fields = fields.get_or_insert_with(|| schema_fields(page.schema.as_ref()));
                // Decoded page by page, each page's raw rows dropped as it goes.
                rows.extend(decode_rows(fields, page.rows.take()));
                if page.token.is_none() {
                    break;
                }
            } else {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            let mut call = hub
                .jobs()
                .get_query_results(project, &job_id)
                .timeout_ms(POLL_WAIT_MS)
                .format_options_use_int64_timestamp(true);
            if let Some(location) = &location {
                call = call.location(location);
            }
            if let Some(token) = page.token.as_deref().filter(|_| page.complete) {
                call = call.page_token(token);
            }
            let (_, next) = self.call(deadline, call.doit()).await?;
            page = Page {
                complete: next.job_complete.unwrap_or(false),
                schema: next.schema.or(page.schema),
                rows: next.rows,
                token: next.page_token,
                total_rows: next.total_rows.or(page.total_rows),
                bytes: next.total_bytes_processed.or(page.bytes),
                cache_hit: next.cache_hit.or(page.cache_hit),
            };
        }
        let fields = fields.unwrap_or_default();
        Ok(QueryResult::new(
            fields.iter().map(Field::column).collect(),
            rows,
            json!({
                "jobId": job_id,
                "location": location,
                "totalRows": page.total_rows,
                "totalBytesProcessed": page.bytes,
                "cacheHit": page.cache_hit,
            }),
        ))
    }

    fn hub_with(&self, token: String) -> Result<BigQueryHub> {
        let mut hub = self.bigquery()?;
        // This query's token as is: refreshing is done around it.
        hub.auth = Box::new(token);
        Ok(hub)
    }

    /// One API call, within the query's deadline, its errors made ours.
    async fn call<T>(
        &self,
        deadline: Option<Instant>,
        call: impl Future<Output = common::Result<T>>,
    ) -> Result<T> {
        let answer = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::timeout(left, call).await
            }
            None => Ok(call.await),
        };
        match answer {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(bigquery_error(&self.root, e)),
            Err(_) => Err(Error::Network {
                service: Service::BigQuery,
                url: self.root.clone(),
                message: format!(
                    "the query did not finish within {} s (.query_timeout(..) allows more)",
                    seconds(self.query_timeout)
                ),
                source: None,
            }),
        }
    }
}

/// What one answer of `jobs.query` or `getQueryResults` carries.
struct Page {
    complete: bool,
    schema: Option<TableSchema>,
    rows: Option<Vec<TableRow>>,
    token: Option<String>,
    total_rows: Option<u64>,
    bytes: Option<i64>,
    cache_hit: Option<bool>,
}

/// One `getQueryResults` page's bytes decoded as `query` decodes them (for
/// the fuzz target and the benchmark, through `carto_auth::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_page(body: &[u8]) -> std::result::Result<Vec<Vec<Value>>, String> {
    let page: google_bigquery2::api::GetQueryResultsResponse =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let fields = schema_fields(page.schema.as_ref());
    Ok(decode_rows(&fields, page.rows).collect())
}

/// One page's rows, each decoded by the schema's fields.
fn decode_rows(fields: &[Field], rows: Option<Vec<TableRow>>) -> impl Iterator<Item = Vec<Value>> {
    rows.unwrap_or_default()
        .into_iter()
        .map(move |row| decode_row(fields, row.f.iter().flatten().map(|cell| cell.v.as_ref())))
}

fn schema_fields(schema: Option<&TableSchema>) -> Vec<Field> {
    fn field(f: &google_bigquery2::api::TableFieldSchema) -> Field {
        Field {
            name: f.name.clone().unwrap_or_default(),
            kind: f.type_.clone().unwrap_or_default(),
            repeated: f
                .mode
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case("REPEATED")),
            fields: f.fields.iter().flatten().map(field).collect(),
        }
    }
    schema
        .and_then(|s| s.fields.as_ref())
        .map(|fields| fields.iter().map(field).collect())
        .unwrap_or_default()
}

/// google-bigquery2's error as ours: BigQuery's own error JSON quoted, a
/// network failure said as one.
fn bigquery_error(root: &str, error: common::Error) -> Error {
    match error {
        common::Error::BadRequest(body) => {
            let e = &body["error"];
            Error::BigQuery {
                status: e["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(400),
                reason: e["errors"][0]["reason"].as_str().map(str::to_string),
                message: e["message"].as_str().map(|m| m.chars().take(500).collect()),
            }
        }
        common::Error::Failure(response) => Error::BigQuery {
            status: response.status().as_u16(),
            reason: None,
            message: None,
        },
        common::Error::HttpError(e) => Error::Network {
            service: Service::BigQuery,
            url: root.to_string(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
        common::Error::Io(e) => Error::Network {
            service: Service::BigQuery,
            url: root.to_string(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        },
        common::Error::JsonDecodeError(_, e) => Error::InvalidResponse {
            service: Service::BigQuery,
            url: root.to_string(),
            expected: "BigQuery's JSON",
            got: format!("JSON it cannot read ({e})"),
        },
        other => Error::Setup {
            what: "the BigQuery client",
            message: other.to_string(),
            source: Some(Box::new(other)),
        },
    }
}

/// The DW token for google-bigquery2's hub, fetched again when 55 minutes
/// old.
#[derive(Clone)]
struct TokenSource(CartoDwClient);

type TokenFuture<'a> = Pin<
    Box<
        dyn Future<
                Output = std::result::Result<
                    Option<String>,
                    Box<dyn std::error::Error + Send + Sync>,
                >,
            > + Send
            + 'a,
    >,
>;

impl common::GetToken for TokenSource {
    fn get_token<'a>(&'a self, _scopes: &'a [&str]) -> TokenFuture<'a> {
        Box::pin(async move {
            self.0
                .fresh_token(false)
                .await
                .map(Some)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
    }
}
