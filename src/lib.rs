//! placeholder
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod auth;
mod cache;
mod callback;
mod endpoints;
mod error;
mod http;
mod login;
mod m2m;
mod oauth;
mod prompt;
mod runtime;
mod secret;
mod token;

pub use api::LayerCredentials;
pub use auth::{CartoAuth, DEFAULT_LOGIN_TIMEOUT, M2mBuilder, Mode, OAuthBuilder};
pub use endpoints::Endpoints;
pub use error::{Error, Result, Service};
pub use http::DEFAULT_TIMEOUT;
pub use login::PendingLogin;
pub use prompt::{EvcxrPrompt, Flow, LoginInstructions, Prompt, TerminalPrompt};
pub use secret::{AccessToken, AuthorizationCode, ClientSecret, CodeVerifier};
pub use token::{EXPIRY_MARGIN_SECS, is_expired_at};
