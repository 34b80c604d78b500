//! Google's BigQuery client (`google-cloud-bigquery-v2`) on the CARTO Data
//! Warehouse, for everything besides [`CartoDwClient::query`]: datasets,
//! tables, jobs. Feature `bigquery`, which needs Rust 1.91 (the SDK's MSRV;
//! the rest of the crate needs 1.89).
//!
//! The clients authenticate with the DW client's own token through a
//! `CredentialsProvider`: each request asks [`CartoDwClient`] for its token,
//! which is fetched again once older than `token_max_age`, exactly as for
//! `query`. The endpoint is the DW client's BigQuery root.
//!
//! TLS: Google's clients build their HTTP client (reqwest with rustls, its
//! provider left to the application: the SDK's default one is aws-lc-rs,
//! which this crate does not build) from rustls's process-wide default
//! provider, and panic without one. This crate otherwise leaves that default
//! to the host program; building a client here installs *ring* (compiled for
//! this crate's own TLS already) as the default only when none is installed.

use ::http::header::{AUTHORIZATION, HeaderValue};
use ::http::{Extensions, HeaderMap};
use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use google_cloud_bigquery_v2::client::{DatasetService, JobService, TableService};
use google_cloud_gax::client_builder::ClientBuilder;

use super::CartoDwClient;
use crate::error::{Error, Result};

impl CartoDwClient {
    /// Credentials for Google's BigQuery clients: the DW token as a bearer,
    /// fetched again once it is older than
    /// [`token_max_age`](Self::token_max_age) (shared with this client and
    /// its clones, so a renewal serves them all). Feature `bigquery` (Rust
    /// 1.91).
    ///
    /// A token BigQuery refuses before that age is not renewed by Google's
    /// clients (they do not tell their credentials about a 401): the
    /// request fails, and a client built from `dw.clone().token_max_age(..)`
    /// with a shorter age renews sooner.
    ///
    /// [`bigquery_builder`](Self::bigquery_builder) sets these and the
    /// endpoint on any of the SDK's client builders.
    pub fn bigquery_credentials(&self) -> Credentials {
        Credentials::from(DwCredentials(self.clone()))
    }

    /// Any of the SDK's client builders (`ModelService::builder()`,
    /// `RoutineService::builder()`...) with this client's BigQuery root as
    /// its endpoint and [`bigquery_credentials`](Self::bigquery_credentials)
    /// as its credentials; `.build().await` makes the client. Installs
    /// *ring* as rustls's process-wide default provider if none is installed
    /// yet (Google's clients need one; install your own first to use
    /// another). Feature `bigquery` (Rust 1.91).
    ///
    /// ```no_run
    /// # async fn routines(dw: carto_auth::CartoDwClient) -> Result<(), Box<dyn std::error::Error>> {
    /// use carto_auth::google_cloud_bigquery_v2::client::RoutineService;
    /// let routines = dw.bigquery_builder(RoutineService::builder()).build().await?;
    /// let list = routines
    ///     .list_routines()
    ///     .set_project_id(dw.project_id())
    ///     .set_dataset_id("my_dataset")
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn bigquery_builder<F, Cr>(&self, builder: ClientBuilder<F, Cr>) -> ClientBuilder<F, Cr>
    where
        Credentials: Into<Cr>,
    {
        use_ring_unless_a_provider_is_installed();
        builder
            .with_endpoint(self.root.clone())
            .with_credentials(self.bigquery_credentials())
    }

    /// Google's client of BigQuery's datasets (list, get, insert, patch,
    /// delete), on the CARTO Data Warehouse. Feature `bigquery` (Rust 1.91).
    ///
    /// ```no_run
    /// # async fn datasets(auth: carto_auth::CartoAuth) -> Result<(), Box<dyn std::error::Error>> {
    /// let dw = auth.get_carto_dw_client_async().await?;
    /// let datasets = dw.dataset_service().await?;
    /// let list = datasets.list_datasets().set_project_id(dw.project_id()).send().await?;
    /// for dataset in &list.datasets {
    ///     println!("{}", dataset.id);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Setup`] when the SDK cannot build its client.
    pub async fn dataset_service(&self) -> Result<DatasetService> {
        self.bigquery_builder(DatasetService::builder())
            .build()
            .await
            .map_err(setup_error)
    }

    /// Google's client of BigQuery's tables (list, get, insert, patch,
    /// delete), on the CARTO Data Warehouse. Feature `bigquery` (Rust 1.91).
    ///
    /// ```no_run
    /// # async fn schema(auth: carto_auth::CartoAuth) -> Result<(), Box<dyn std::error::Error>> {
    /// let dw = auth.get_carto_dw_client_async().await?;
    /// let tables = dw.table_service().await?;
    /// let table = tables
    ///     .get_table()
    ///     .set_project_id(dw.project_id())
    ///     .set_dataset_id("my_dataset")
    ///     .set_table_id("my_table")
    ///     .send()
    ///     .await?;
    /// println!("{:?} rows", table.num_rows);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Setup`] when the SDK cannot build its client.
    pub async fn table_service(&self) -> Result<TableService> {
        self.bigquery_builder(TableService::builder())
            .build()
            .await
            .map_err(setup_error)
    }

    /// Google's client of BigQuery's jobs (insert, get, list, cancel,
    /// delete, and queries with every option of `jobs.query`), on the CARTO
    /// Data Warehouse. Feature `bigquery` (Rust 1.91).
    ///
    /// ```no_run
    /// # async fn jobs(auth: carto_auth::CartoAuth) -> Result<(), Box<dyn std::error::Error>> {
    /// let dw = auth.get_carto_dw_client_async().await?;
    /// let jobs = dw.job_service().await?;
    /// let list = jobs.list_jobs().set_project_id(dw.project_id()).send().await?;
    /// println!("{} jobs", list.jobs.len());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Setup`] when the SDK cannot build its client.
    pub async fn job_service(&self) -> Result<JobService> {
        self.bigquery_builder(JobService::builder())
            .build()
            .await
            .map_err(setup_error)
    }
}

/// The DW client's token as Google's credentials. `Debug` is the DW
/// client's, which redacts the token.
#[derive(Debug)]
struct DwCredentials(CartoDwClient);

impl CredentialsProvider for DwCredentials {
    async fn headers(
        &self,
        _extensions: Extensions,
    ) -> std::result::Result<CacheableResource<HeaderMap>, CredentialsError> {
        // A young token is in memory; an old one is fetched on a thread of
        // its own, so that the SDK's runtime thread never blocks.
        let token = match self.0.young_token() {
            Some(token) => Ok(token),
            None => {
                let dw = self.0.clone();
                crate::background::run(move || dw.fresh_token(false)).await
            }
        };
        let token = token.map_err(|e| {
            // A network failure may pass (the SDK retries); a refused
            // session needs a login.
            let transient = matches!(e, Error::Network { .. });
            CredentialsError::from_source(transient, e)
        })?;
        let mut bearer =
            HeaderValue::try_from(format!("Bearer {}", token.secret())).map_err(|_| {
                CredentialsError::from_msg(false, "the CARTO DW token is no HTTP header value")
            })?;
        // Never logged by the HTTP stack.
        bearer.set_sensitive(true);
        let mut headers = HeaderMap::with_capacity(1);
        headers.insert(AUTHORIZATION, bearer);
        // A new tag each time: no caller is told "not modified" (Google's
        // HTTP client treats that answer as unreachable).
        Ok(CacheableResource::New {
            entity_tag: EntityTag::new(),
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        // Google's public cloud (`googleapis.com`), where BigQuery serves the
        // CARTO Data Warehouse.
        None
    }
}

/// Google's clients take rustls's process-wide provider; the host program's
/// own choice, when it made one, is kept.
fn use_ring_unless_a_provider_is_installed() {
    if rustls::crypto::CryptoProvider::get_default().is_none()
        && rustls::crypto::ring::default_provider()
            .install_default()
            .is_ok()
    {
        log::info!(
            "installed rustls's ring provider as the process default, for Google's BigQuery client"
        );
    }
}

fn setup_error(e: google_cloud_gax::client_builder::Error) -> Error {
    Error::Setup {
        what: "Google's BigQuery client",
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}
