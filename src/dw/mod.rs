//! The CARTO Data Warehouse client: BigQuery with the token CARTO hands
//! out for it, kept fresh. Feature `carto-dw`.
//!
//! The Python package's `get_carto_dw_client()` builds a BigQuery client
//! from the DW token once and never renews it, so it stops working after an
//! hour. This client fetches the token when first needed, again when it is
//! 55 minutes old, and once more when BigQuery refuses it.
//!
//! A query is two BigQuery REST calls (`jobs.query`, then
//! `jobs.getQueryResults` for the polls and the pages) sent with this
//! crate's own HTTP client (`rest.rs`): no BigQuery crate is compiled for it.
//! Feature `bigquery` adds Google's client for the rest (`bigquery.rs`).

#[cfg(feature = "bigquery")]
mod bigquery;
mod decode;
mod rest;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::carto_dw_credentials;
use crate::auth::CartoAuth;
use crate::background::run;
use crate::environment::var;
use crate::error::{Error, Result, Service};
use crate::http::seconds;
use crate::query::QueryResult;
use crate::secret::AccessToken;
use decode::{Field, decode_row};
use rest::Answer;

/// The BigQuery API root, unless `CARTO_BIGQUERY_URL` moves it.
const BIGQUERY_ROOT: &str = "https://bigquery.googleapis.com";
/// Google access tokens last an hour; renew with a margin.
const DW_TOKEN_MAX_AGE: Duration = Duration::from_secs(55 * 60);
/// How long a whole query may take, polls and pages included.
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The DW token and when it was fetched.
struct DwToken {
    token: AccessToken,
    fetched: Instant,
}

/// A client for the CARTO Data Warehouse (BigQuery). Made by
/// [`CartoAuth::get_carto_dw_client`]. Feature `carto-dw`.
///
/// Cheap to clone; its requests go through the session's HTTP agent, so
/// its connections are reused from query to query and from cell to cell.
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
        let root = match var("CARTO_BIGQUERY_URL") {
            Some(url) => {
                crate::endpoints::check_http_url("CARTO_BIGQUERY_URL", &url)?;
                url.trim_end_matches('/').to_string()
            }
            None => BIGQUERY_ROOT.to_string(),
        };
        let (project_id, token) = fetch_dw_token(self)?;
        Ok(CartoDwClient {
            auth: self.clone(),
            project_id,
            token: Arc::new(Mutex::new(DwToken {
                token: AccessToken::new(token),
                fetched: Instant::now(),
            })),
            root,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            token_max_age: DW_TOKEN_MAX_AGE,
        })
    }

    /// [`get_carto_dw_client`](Self::get_carto_dw_client) for async
    /// programs, on any executor.
    pub async fn get_carto_dw_client_async(&self) -> Result<CartoDwClient> {
        let auth = self.clone();
        run(move || auth.get_carto_dw_client()).await
    }
}

fn fetch_dw_token(auth: &CartoAuth) -> Result<(String, String)> {
    let base = auth.api_base_url_or_error()?;
    let token = auth.token()?;
    let fetched = carto_dw_credentials(&auth.http(), base, &token)?;
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

    /// The DW token in memory, unless it is older than `token_max_age`.
    fn young_token(&self) -> Option<AccessToken> {
        let current = self.current();
        (current.fetched.elapsed() < self.token_max_age).then(|| current.token.clone())
    }

    /// The DW token, fetched again when it is older than `token_max_age`
    /// (or `force`).
    fn fresh_token(&self, force: bool) -> Result<AccessToken> {
        if let Some(token) = self.young_token().filter(|_| !force) {
            return Ok(token);
        }
        let (_, token) = fetch_dw_token(&self.auth)?;
        let token = AccessToken::new(token);
        *self.current() = DwToken {
            token: token.clone(),
            fetched: Instant::now(),
        };
        Ok(token)
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
    /// [`Error::Network`], also when the query takes longer than
    /// [`query_timeout`](Self::query_timeout); the DW token endpoint's
    /// errors.
    pub fn query(&self, sql: &str) -> Result<QueryResult> {
        let token = self.fresh_token(false)?;
        match self.run_query(sql, &token) {
            Err(Error::BigQuery { status: 401, .. }) => {
                log::info!("BigQuery refused the CARTO DW token; fetching a new one");
                let token = self.fresh_token(true)?;
                self.run_query(sql, &token)
            }
            other => other,
        }
    }

    /// [`query`](Self::query) for async programs, on any executor. Dropping
    /// the future stops the polling.
    pub async fn query_async(&self, sql: &str) -> Result<QueryResult> {
        let (dw, sql) = (self.clone(), sql.to_string());
        run(move || dw.query(&sql)).await
    }

    fn run_query(&self, sql: &str, token: &AccessToken) -> Result<QueryResult> {
        // `None` past what `Instant` holds (`Duration::MAX`): no deadline.
        let deadline = Instant::now().checked_add(self.query_timeout);
        let project = self.project_id.as_str();
        let body = json!({
            "query": sql,
            "useLegacySql": false,
            // Exact microseconds instead of float seconds.
            "formatOptions": {"useInt64Timestamp": true},
            "timeoutMs": rest::POLL_WAIT_MS,
        });
        let url = rest::queries_url(&self.root, project)?;
        let mut page = self.call(deadline, token, Request::Query(&url, &body))?;
        let job_id = page.job_id.take();
        let location = page.location.take();
        let mut fields: Option<Vec<Field>> = None;
        let (mut total_rows, mut bytes, mut cache_hit) = (None, None, None);
        let mut wait = Duration::from_millis(100);
        let mut rows = Vec::new();
        loop {
            total_rows = page.total_rows.or(total_rows);
            bytes = page.total_bytes_processed.or(bytes);
            cache_hit = page.cache_hit.or(cache_hit);
            if page.complete {
                let fields = fields.get_or_insert_with(|| page.fields.take().unwrap_or_default());
                // Decoded page by page, each page's raw rows dropped as it goes.
                rows.extend(
                    std::mem::take(&mut page.rows)
                        .into_iter()
                        .map(|row| decode_row(fields, row.cells())),
                );
                if page.page_token.is_none() {
                    break;
                }
            } else {
                let left = deadline.map_or(wait, |d| d.saturating_duration_since(Instant::now()));
                if crate::cancel::pause(wait.min(left), None).is_err() {
                    return Err(self.cancelled());
                }
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            let Some(job_id) = job_id.as_deref() else {
                return Err(Error::InvalidResponse {
                    service: Service::BigQuery,
                    url: self.root.clone(),
                    expected: "a jobReference with the jobId of a query not read to its end",
                    got: "an answer without one".into(),
                });
            };
            let token_of_next_page = page.page_token.as_deref().filter(|_| page.complete);
            let url = rest::results_url(
                &self.root,
                project,
                job_id,
                location.as_deref(),
                token_of_next_page,
            )?;
            page = self.call(deadline, token, Request::Results(&url))?;
        }
        let fields = fields.unwrap_or_default();
        Ok(QueryResult::new(
            fields.iter().map(Field::column).collect(),
            rows,
            json!({
                "jobId": job_id,
                "location": location,
                "totalRows": total_rows,
                "totalBytesProcessed": bytes,
                "cacheHit": cache_hit,
            }),
        ))
    }

    /// One API call, within the query's deadline, its errors made ours.
    fn call(
        &self,
        deadline: Option<Instant>,
        token: &AccessToken,
        request: Request<'_>,
    ) -> Result<Answer> {
        // The call may take what is left of the query's time; with no
        // deadline, as long as it takes.
        let timeout = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Err(self.timed_out()),
            },
            None => Duration::MAX,
        };
        let http = self.auth.http().with_timeout(timeout);
        let sent = match request {
            Request::Query(url, body) => http.post_json_raw(Service::BigQuery, url, token, body),
            Request::Results(url) => http.get_raw(Service::BigQuery, url, Some(token)),
        };
        match sent {
            Ok((status, body)) => rest::answer(&self.root, status, &body),
            // The client's timer started after `left` was measured, so it
            // cannot fire before the deadline: past it, the query's time is
            // what ran out.
            Err(Error::Network { .. }) if deadline.is_some_and(|d| Instant::now() >= d) => {
                Err(self.timed_out())
            }
            Err(e) => Err(e),
        }
    }

    /// The query's future was dropped while it polled: nobody reads this.
    fn cancelled(&self) -> Error {
        Error::Network {
            service: Service::BigQuery,
            url: self.root.clone(),
            message: "the query was cancelled".into(),
            source: None,
        }
    }

    fn timed_out(&self) -> Error {
        Error::Network {
            service: Service::BigQuery,
            url: self.root.clone(),
            message: format!(
                "the query did not finish within {} s (.query_timeout(..) allows more)",
                seconds(self.query_timeout)
            ),
            source: None,
        }
    }
}

/// The two requests of a query.
enum Request<'a> {
    /// jobs.query: its URL and body.
    Query(&'a str, &'a Value),
    /// getQueryResults: its URL.
    Results(&'a str),
}

/// One `getQueryResults` page's bytes decoded as `query` decodes them (for
/// the fuzz target and the benchmark, through `carto_auth::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_page(body: &[u8]) -> std::result::Result<Vec<Vec<Value>>, String> {
    let page = rest::parse_answer(body)?;
    let fields = page.fields.unwrap_or_default();
    Ok(page
        .rows
        .into_iter()
        .map(|row| decode_row(&fields, row.cells()))
        .collect())
}
