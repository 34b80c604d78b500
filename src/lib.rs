//! Log in to [CARTO](https://carto.com) from Rust: from evcxr Jupyter
//! notebooks, scripts, CLIs and ETL services.
//!
//! The Rust counterpart of CARTO's Python package `carto-auth`: the same
//! requests, the same token cache files (`~/.carto-auth/token_oauth.json`
//! and `token_m2m.json`), so a user switching between the two never logs in
//! twice.
//!
//! # Contents
//! - [Interactive login](#interactive-login) (OAuth 2.0 + PKCE)
//! - [Notebooks on remote kernels](#notebooks-on-remote-kernels)
//! - [Machine to machine](#machine-to-machine-m2m)
//! - [Async programs](#async-programs)
//! - [The token cache](#the-token-cache)
//! - [Pointing at another CARTO](#pointing-at-another-carto)
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
//! A cached token that is still good is used without asking. Otherwise a
//! browser on this machine is opened and a loopback server on
//! `localhost:10000` receives its redirect (with a `state` that is checked);
//! where no local browser can take part (JupyterHub, Binder, SSH, Colab,
//! Databricks, no display), the authorize URL is shown and the user pastes
//! back the address CARTO showed them, or the code on it. Inside evcxr the
//! answer is read through the notebook's input box.
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
//!
//! # Notebooks on remote kernels
//! A cell that waits cannot show rich output until it ends, and some
//! front ends send no input to the kernel at all. The two-step login works
//! everywhere: the first cell returns a [`PendingLogin`] (shown as a login
//! card with a sign-in button and a QR code: end the cell with `login`), the
//! next finishes it. A [`CartoAuth`] at the end of a cell shows a status card.
//! ```no_run
//! # use carto_auth::CartoAuth;
//! let login = CartoAuth::oauth().open_browser(false).begin()?;
//! println!("{}", login.authorize_url());
//! // ... next cell, with what CARTO showed after signing in:
//! let auth = login.complete("https://app.carto.com/auth/token?code=...")?;
//! # Ok::<(), carto_auth::Error>(())
//! ```
//! With a local browser, [`PendingLogin::wait`] returns once the browser has
//! come back.
//!
//! # Machine to machine (M2M)
//! For jobs, with the credentials file of a CARTO M2M application:
//! ```no_run
//! let auth = carto_auth::CartoAuth::from_m2m("carto_credentials.json")?;
//! let token = auth.get_access_token()?; // renewed silently when it expires
//! # Ok::<(), carto_auth::Error>(())
//! ```
//!
//! # Async programs
//! Every blocking call has an `_async` twin; both run the same code. The
//! blocking calls also work inside a tokio runtime (an evcxr async cell,
//! `#[tokio::main]`): they then run on a helper thread instead of panicking.
//! ```no_run
//! # async fn job() -> carto_auth::Result<()> {
//! let auth = carto_auth::CartoAuth::m2m("carto_credentials.json").login_async().await?;
//! let token = auth.get_access_token_async().await?;
//! # Ok(()) }
//! ```
//!
//! # The token cache
//! The Python package's files and JSON (`api_base_url`, `access_token`,
//! `expiration`), written atomically (temporary file, then rename) with
//! mode 0600 in a 0700 directory, under a lock shared by every process that
//! uses this crate. A token counts as expired 60 seconds early. A broken
//! cache file is reported and ignored, never fatal. An M2M token is reused
//! only by the credentials that made it. [`CachedToken`] reads a cache file
//! without logging in.
//!
//! # Pointing at another CARTO
//! [`Endpoints`] holds every URL; `CARTO_AUTH_URL`, `CARTO_ACCOUNTS_URL`,
//! `CARTO_AUTH_REDIRECT_URI` and `CARTO_AUTH_PASTE_REDIRECT_URI` override
//! them. `CARTO_AUTH_OPEN_BROWSER=0|1` overrides the guess about a local
//! browser.
//!
//! # Security
//! Tokens, client secrets, PKCE verifiers and authorization codes are
//! [`AccessToken`], [`ClientSecret`], [`CodeVerifier`] and
//! [`AuthorizationCode`]: their `Debug` is redacted and they have no
//! `Display`. No error message, log line or display of this crate contains
//! one. The callback server listens on loopback only and ignores any request
//! without this login's `state`.
//!
//! # Cargo features
//! | feature | default | adds |
//! | --- | --- | --- |
//! | `notebook` | yes | evcxr display: `PendingLogin::to_html` (login card with a QR code), `CartoAuth::to_html` (status card), their `evcxr_display`, and a text QR code in the paste flow (qrcode, without its `image` feature) |
//! | `cli` | no | the `carto-auth` binary (clap) |
//! | `fuzzing` | no | not for users: exposes the input parsers to the fuzz targets in `fuzz/` |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
mod auth;
mod builder;
mod cache;
mod callback;
#[cfg(feature = "notebook")]
mod cards;
mod clock;
mod config;
mod device;
#[cfg(feature = "notebook")]
mod display;
mod endpoints;
mod environment;
mod error;
mod flow;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod jwt;
mod login;
mod m2m;
mod mode;
mod oauth;
mod prompt;
#[cfg(feature = "notebook")]
mod qr;
mod query;
mod runtime;
mod secret;
mod sql;
#[cfg(feature = "notebook")]
mod table;
mod token;

pub use api::LayerCredentials;
pub use auth::CartoAuth;
pub use builder::{DEFAULT_LOGIN_TIMEOUT, M2mBuilder, OAuthBuilder};
pub use cache::CachedToken;
pub use clock::{EXPIRY_MARGIN_SECS, is_expired_at};
pub use endpoints::Endpoints;
pub use error::{Error, Grant, Result, Service};
pub use http::DEFAULT_TIMEOUT;
pub use login::PendingLogin;
pub use mode::{Mode, TokenSource};
pub use prompt::{EvcxrPrompt, Flow, LoginInstructions, Prompt, TerminalPrompt};
pub use query::{Column, QueryResult, Row};
pub use secret::{AccessToken, AuthorizationCode, ClientSecret, CodeVerifier, DeviceCode};
/// JSON values for [`CartoAuth::sql_query_with`]'s query parameters.
pub use serde_json::json;
