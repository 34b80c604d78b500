//! Log in to [CARTO](https://carto.com) from Rust: from evcxr Jupyter
//! notebooks, scripts, CLIs and ETL services, then query its data.
//!
//! The Rust counterpart of CARTO's Python package `carto-auth`: the same
//! requests, the same token cache files (`~/.carto-auth/token_oauth.json`
//! and `token_m2m.json`), read and written so that a user switching between
//! the two never logs in twice, whatever the machine's time zone.
//!
//! # Contents
//! - [Interactive login](#interactive-login) (OAuth 2.0 + PKCE)
//! - [Notebooks on remote kernels](#notebooks-on-remote-kernels): paste,
//!   device code, two steps
//! - [Machine to machine](#machine-to-machine-m2m)
//! - [Tokens from elsewhere](#tokens-from-elsewhere): `CARTO_API_TOKEN`,
//!   [`CartoAuth::from_token`]
//! - [Data](#data): the SQL API and the CARTO Data Warehouse
//! - [Maps](#maps): CARTO layers in the cell, with a token scoped to the map
//! - [Async programs](#async-programs)
//! - [The token cache](#the-token-cache)
//! - [Pointing at another CARTO](#pointing-at-another-carto)
//! - [Security](#security)
//! - [Cargo features](#cargo-features)
//!
//! # Interactive login
//! In a notebook cell or a program:
//! ```no_run
//! use carto_auth::CartoAuth;
//!
//! let auth = CartoAuth::from_oauth()?;
//! let token = auth.get_access_token()?;
//! let api = auth.get_api_base_url();
//! let (dw_project, dw_token) = auth.get_carto_dw_credentials()?;
//! let layer = auth.get_layer_credentials()?; // for deck.gl's CartoLayer
//! # Ok::<(), carto_auth::Error>(())
//! ```
//! `CARTO_API_TOKEN` is used when set; else a cached token that is still
//! good; else a browser on this machine is opened and a loopback server on
//! `localhost:10000` (127.0.0.1 and `[::1]`) receives its redirect, with a
//! `state` that is checked, and closes the moment the login ends. Where no
//! local browser can take part (JupyterHub, Binder, SSH, Colab, Databricks,
//! Codespaces, VS Code remotes, no display), the authorize URL is shown and
//! the user pastes back the address CARTO showed them, or the code on it.
//! A slip (an empty answer, a code copied short, a network error during the
//! exchange) is explained in one line and asked again, up to three times,
//! with the same PKCE verifier.
//!
//! Options go through the builder:
//! ```no_run
//! # use carto_auth::CartoAuth;
//! let auth = CartoAuth::oauth()
//!     .org("my-sso-org")
//!     .open_browser(false)              // always paste the code
//!     .api_base_url("https://gcp-us-east1.api.carto.com") // skip discovery
//!     .login()?;
//! # Ok::<(), carto_auth::Error>(())
//! ```
//! `.force_login(true)` signs in anew and asks CARTO to show its sign-in
//! form (`prompt=login`), to switch accounts.
//! [`OAuthBuilder::existing_session`] tells beforehand whether `login()`
//! would sign in, for programs that must never start a sign-in nobody can
//! answer. The API base URL is the builder's, else `CARTO_API_BASE_URL`,
//! else the cached login's, else the discovered one; it must be `https://`
//! (plain `http://` only on this machine).
//!
//! # Notebooks on remote kernels
//! A cell that waits cannot show rich output until it ends, and some
//! front ends send no input to the kernel. Three ways work there:
//! - the one-liner above: the sign-in address, a QR code and an input box
//!   are streamed while the cell waits;
//! - the device flow, `CartoAuth::oauth().device_flow(true).login()?`: the
//!   cell shows a short code and a link, the user approves it on any device
//!   (a phone), and the cell finishes by itself, with no input at all. It
//!   depends on CARTO allowing the OAuth device grant for its public
//!   client; where it does not, the login says so and goes on with the
//!   paste flow;
//! - the two-step login: the first cell returns a [`PendingLogin`] (shown
//!   as a login card with a sign-in button and a QR code: end the cell with
//!   `login`), the next finishes it.
//! ```no_run
//! # use carto_auth::CartoAuth;
//! let login = CartoAuth::oauth().open_browser(false).begin()?;
//! println!("{}", login.authorize_url());
//! // ... next cell, with what CARTO showed after signing in:
//! let auth = login.complete("https://app.carto.com/auth/token?code=...")?;
//! # Ok::<(), carto_auth::Error>(())
//! ```
//! With a local browser or the device flow, [`PendingLogin::wait`] returns
//! once the user is signed in. A [`CartoAuth`] at the end of a cell shows a
//! status card, a [`QueryResult`] a table.
//!
//! # Machine to machine (M2M)
//! For jobs, with the credentials file of a CARTO M2M application:
//! ```no_run
//! let auth = carto_auth::CartoAuth::from_m2m("carto_credentials.json")?;
//! let token = auth.get_access_token()?; // renewed silently when it expires
//! # Ok::<(), carto_auth::Error>(())
//! ```
//!
//! # Tokens from elsewhere
//! As CARTO's own CLI does, an API Access Token in `CARTO_API_TOKEN` (with
//! `CARTO_API_BASE_URL`) is used by `from_oauth()` before any stored login,
//! without a prompt or a cache: a notebook then runs unattended in CI
//! (papermill, nbclient). A token at hand makes a session directly:
//! ```
//! let auth = carto_auth::CartoAuth::from_token("eyJhbGciOi...", "https://gcp-us-east1.api.carto.com");
//! ```
//! Such a session cannot be renewed: once the token has expired (its JWT
//! `exp` says when), [`CartoAuth::get_access_token`] is an
//! [`Error::TokenExpired`].
//!
//! # Data
//! CARTO's SQL API runs a query on any connection of the organization
//! (`carto_dw` is the CARTO Data Warehouse), fresh (POST, never the cached
//! GET), with the token renewed first when needed:
//! ```no_run
//! use carto_auth::{CartoAuth, json};
//! let auth = CartoAuth::from_oauth()?;
//! let result = auth.sql_query_with(
//!     "carto_dw",
//!     "SELECT name, pop_max FROM `carto-demo-data.demo_tables.populated_places` WHERE pop_max > @min",
//!     json!({"min": 10_000_000}),
//! )?;
//! for row in result.rows() {
//!     println!("{} {}", row["name"], row["pop_max"]);
//! }
//! # Ok::<(), carto_auth::Error>(())
//! ```
//! With feature `carto-dw`, [`CartoAuth::get_carto_dw_client`] gives the
//! Python extra's `get_carto_dw_client()`: BigQuery on the CARTO Data
//! Warehouse, whose token is fetched again when it is 55 minutes old or
//! refused, and queries in standard SQL decoded by column type.
//!
//! With feature `bigquery` (Rust 1.91), Google's own BigQuery client
//! (re-exported as [`google_cloud_bigquery_v2`]) does everything else,
//! datasets, tables and jobs, with the same renewing DW token and endpoint:
//! ```no_run
//! # async fn tables(auth: carto_auth::CartoAuth) -> Result<(), Box<dyn std::error::Error>> {
//! let dw = auth.get_carto_dw_client_async().await?;
//! let datasets = dw.dataset_service().await?;
//! let list = datasets.list_datasets().set_project_id(dw.project_id()).send().await?;
//! # Ok(()) }
//! ```
//!
//! # Maps
//! A [`Map`] at the end of a cell draws CARTO layers with deck.gl (feature
//! `notebook`):
//! ```no_run
//! use carto_auth::{CartoAuth, Layer, json};
//! let auth = CartoAuth::from_oauth()?;
//! let map = auth.map().layer(
//!     Layer::vector_query("carto_dw", "SELECT geom, name FROM `carto-demo-data.demo_tables.populated_places` WHERE pop_max > @min")
//!         .query_parameters(json!({"min": 1_000_000}))
//!         .tooltip(["name"]),
//! );
//! std::fs::write("places.html", map.to_html()?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! The page carries a CARTO API Access Token made for it, which reads only
//! the map's sources through the Maps API and expires after
//! [`DEFAULT_TOKEN_LIFETIME`], never the session's own token (unless
//! [`Map::embed_session_token`] says so). Its scripts come from a public
//! npm CDN, or from [`Map::js_url`] / `CARTO_AUTH_JS_URL`.
//!
//! # Async programs
//! Every blocking call has an `_async` twin that runs the same code on a
//! thread of its own and waits for it without blocking: it needs no
//! particular runtime (tokio, smol, async-std, a plain `block_on` all do),
//! and the crate depends on none. Dropping the future cancels the work:
//! a login's callback port is free within a second, device polling stops,
//! a question waiting for a pasted line is handed to the next login. The
//! blocking calls work everywhere too, inside an async runtime included
//! (they need none), where they hold the runtime's thread while they wait.
//! ```no_run
//! # async fn job() -> carto_auth::Result<()> {
//! let auth = carto_auth::CartoAuth::m2m("carto_credentials.json").login_async().await?;
//! let token = auth.get_access_token_async().await?;
//! # Ok(()) }
//! ```
//!
//! # The token cache
//! The Python package's files and JSON (`api_base_url`, `access_token`,
//! `expiration`), with `expiration` in the Python package's own clock (a
//! naive UTC time read as local time, off by the machine's UTC offset) and
//! the true Unix expiry in a key of ours, `expiration_unix`, which it
//! ignores; for JWT access tokens their `exp` claim decides. A cached token
//! is reused only by the M2M application it belongs to (the token's `azp`)
//! and, on renewal, only by the same person (`sub`). Files are written
//! atomically (temporary file, then rename) with mode 0600 in a 0700
//! directory, through a symbolic link when the path is one, under a lock
//! shared by every process that uses this crate. A token counts as expired
//! 60 seconds early. A broken cache file is reported and ignored, never
//! fatal. [`CachedToken`] reads a cache file without logging in.
//!
//! # Pointing at another CARTO
//! [`Endpoints`] holds every URL; `CARTO_AUTH_URL`, `CARTO_ACCOUNTS_URL`,
//! `CARTO_AUTH_REDIRECT_URI` and `CARTO_AUTH_PASTE_REDIRECT_URI` override
//! them, `CARTO_BIGQUERY_URL` the BigQuery API root.
//! `CARTO_AUTH_OPEN_BROWSER=0|1` overrides the guess about a local
//! browser, `CARTO_AUTH_DEVICE_FLOW=1` turns the device flow on.
//!
//! # Security
//! Tokens, client secrets, PKCE verifiers, device codes and authorization
//! codes are [`AccessToken`], [`ClientSecret`], [`CodeVerifier`],
//! [`DeviceCode`] and [`AuthorizationCode`]: their `Debug` is redacted and
//! they have no `Display`. No error message, log line or display of this
//! crate contains one, with one exception by design: a [`Map`]'s page
//! carries the token its scripts need, one made for the map (read-only,
//! its own sources, the Maps API, expiring), or the session's own only
//! after [`Map::embed_session_token`]. The callback server listens on loopback only,
//! ignores any request without this login's `state`, and refuses an answer
//! from another issuer (RFC 9207). TLS is rustls with the *ring* provider
//! and the platform's roots, configured for this crate's clients only: the
//! process-wide default provider is left to the host program. (Feature
//! `bigquery` is the exception: Google's clients take that default, so
//! building one installs *ring* as the default when none is installed yet.)
//!
//! What a notebook shows (a table cell, a column name, an organization, a
//! server's message) is data: escaped in HTML, and unable to form a line of
//! evcxr's output protocol, so it cannot open an `application/javascript`
//! output, which JupyterLab would run next to the session's token.
//!
//! # Cargo features
//! | feature | default | adds |
//! | --- | --- | --- |
//! | `notebook` | yes | evcxr display: the login card of a [`PendingLogin`], the status card of a [`CartoAuth`], the table of a [`QueryResult`] (`to_html`, `evcxr_display`), maps of CARTO layers ([`Map`]), and text QR codes while a login waits (qrcode, without its `image` feature) |
//! | `carto-dw` | no | [`CartoAuth::get_carto_dw_client`]: queries on the CARTO Data Warehouse (BigQuery's REST API through this crate's own HTTP client) |
//! | `bigquery` | no | needs Rust 1.91 (the rest: 1.89). `carto-dw`, and Google's BigQuery client for datasets, tables and jobs on the DW token ([`CartoDwClient::dataset_service`], [`CartoDwClient::table_service`], [`CartoDwClient::job_service`], [`CartoDwClient::bigquery_builder`]; google-cloud-bigquery-v2, re-exported) |
//! | `cli` | no | the `carto-auth` binary (clap), and text QR codes of the device flow's link in a terminal (qrcode) |
//! | `fuzzing` | no | not for users: exposes the input parsers to the fuzz targets in `fuzz/` |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
mod api_base_url;
mod auth;
mod background;
mod builder;
mod cache;
mod callback;
mod cancel;
#[cfg(feature = "notebook")]
mod cards;
mod clock;
mod config;
mod device;
#[cfg(feature = "notebook")]
mod display;
#[cfg(feature = "carto-dw")]
mod dw;
mod endpoints;
mod environment;
mod error;
mod evcxr_output;
mod existing_session;
mod flow;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "notebook")]
mod html;
mod http;
mod instructions;
mod jwt;
mod login;
mod m2m;
#[cfg(feature = "notebook")]
mod map;
mod mode;
mod no_input;
mod oauth;
mod paste;
mod prompt;
mod provider;
#[cfg(any(feature = "notebook", feature = "cli"))]
mod qr;
mod query;
mod secret;
mod service;
mod sql;
#[cfg(feature = "notebook")]
mod table;
mod token;

pub use api::LayerCredentials;
pub use auth::CartoAuth;
pub use builder::{DEFAULT_LOGIN_TIMEOUT, M2mBuilder, OAuthBuilder};
pub use cache::CachedToken;
pub use clock::{EXPIRY_MARGIN_SECS, is_expired_at};
#[cfg(feature = "carto-dw")]
pub use dw::CartoDwClient;
pub use endpoints::Endpoints;
pub use error::{Error, Grant, Result, Service};
/// Google's credentials crate, for the [`Credentials`] of
/// [`CartoDwClient::bigquery_credentials`]. Feature `bigquery` (Rust 1.91).
///
/// [`Credentials`]: google_cloud_auth::credentials::Credentials
#[cfg(feature = "bigquery")]
pub use google_cloud_auth;
/// Google's BigQuery client crate, the version [`CartoDwClient`]'s services
/// are built with, for naming its types. Feature `bigquery` (Rust 1.91).
#[cfg(feature = "bigquery")]
pub use google_cloud_bigquery_v2;
pub use http::DEFAULT_TIMEOUT;
pub use instructions::{Flow, LoginInstructions};
pub use login::PendingLogin;
#[cfg(feature = "notebook")]
pub use map::{Basemap, Color, ColorBy, DEFAULT_JS_URL, DEFAULT_TOKEN_LIFETIME, Layer, Map};
pub use mode::{Mode, TokenSource};
pub use prompt::{EvcxrPrompt, Prompt, TerminalPrompt};
pub use query::{Column, QueryResult, Row};
pub use secret::{AccessToken, AuthorizationCode, ClientSecret, CodeVerifier, DeviceCode};
/// JSON values for [`CartoAuth::sql_query_with`]'s query parameters.
pub use serde_json::json;
