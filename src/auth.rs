//! `CartoAuth`: the logged-in session, its accessors, and token renewal.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::api::{LayerCredentials, carto_dw_credentials};
use crate::api_base_url::{ApiBaseUrl, Origin};
use crate::background::run;
use crate::clock::{NO_EXPIRY, describe_expiry, now_unix};
use crate::config::Common;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::mode::{Mode, TokenSource};
use crate::provider::{Expired, GivenProvider, TokenProvider};
use crate::secret::AccessToken;
use crate::token::Token;

/// The token a session holds now, and where it came from.
struct Current {
    token: Token,
    source: TokenSource,
}

struct Session {
    provider: Box<dyn TokenProvider>,
    api_base_url: Option<ApiBaseUrl>,
    /// Why the API base URL is unknown: discovery failed after sign-in, or
    /// the one given was refused.
    discovery_error: Option<String>,
    current: Mutex<Current>,
    /// One renewal at a time within the process; other processes are kept
    /// out by the cache lock.
    renewal: Mutex<()>,
}

/// A logged-in CARTO session.
///
/// Cheap to clone (clones share the token). Its `Debug` and `Display` never
/// show the token.
///
/// ```no_run
/// use carto_auth::CartoAuth;
/// let auth = CartoAuth::from_oauth()?;
/// println!("{}", auth.get_api_base_url().unwrap_or("?"));
/// let token = auth.get_access_token()?;
/// # Ok::<(), carto_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct CartoAuth {
    inner: Arc<Session>,
}

impl CartoAuth {
    /// A session; `discovery_error` says why `api_base_url` is unknown when
    /// discovery failed.
    pub(crate) fn new(
        provider: Box<dyn TokenProvider>,
        api_base_url: Option<ApiBaseUrl>,
        discovery_error: Option<String>,
        token: Token,
        source: TokenSource,
    ) -> CartoAuth {
        CartoAuth {
            inner: Arc::new(Session {
                provider,
                api_base_url,
                discovery_error,
                current: Mutex::new(Current { token, source }),
                renewal: Mutex::new(()),
            }),
        }
    }

    /// A session for an access token obtained elsewhere: an API Access
    /// Token, a token another tool printed, the Python package's
    /// `CartoAuth(access_token=...)`. Nothing is cached and nothing can
    /// renew it: its expiry is read from the token when it is a JWT, and
    /// [`get_access_token`](Self::get_access_token) on an expired one is an
    /// [`Error::TokenExpired`]. An empty `api_base_url` means unknown.
    ///
    /// The API base URL must be `https://` (plain `http://` only on this
    /// machine). One that is not is refused without a panic: the session
    /// has no API base URL, and what needs one fails with
    /// [`Error::NoApiBaseUrl`] saying why and how to write it.
    ///
    /// ```
    /// let auth = carto_auth::CartoAuth::from_token("eyJhbGciOi...", "https://gcp-us-east1.api.carto.com");
    /// assert_eq!(auth.get_api_base_url(), Some("https://gcp-us-east1.api.carto.com"));
    ///
    /// let slip = carto_auth::CartoAuth::from_token("eyJhbGciOi...", "gcp-us-east1.api.carto.com");
    /// assert_eq!(slip.get_api_base_url(), None);
    /// let why = slip.get_layer_credentials().unwrap_err().to_string();
    /// assert!(why.contains("Write it as https://gcp-us-east1.api.carto.com"));
    /// ```
    pub fn from_token(
        access_token: impl Into<String>,
        api_base_url: impl Into<String>,
    ) -> CartoAuth {
        let url = api_base_url.into();
        let (url, why) = if url.trim().is_empty() {
            (None, None)
        } else {
            match ApiBaseUrl::parse(&url, Origin::FromToken) {
                Ok(url) => (Some(url), None),
                Err(e) => {
                    log::warn!("{e}");
                    (None, Some(e.to_string()))
                }
            }
        };
        let common = Common::with(
            crate::endpoints::Endpoints::carto(),
            None,
            crate::http::DEFAULT_TIMEOUT,
            crate::prompt::default_prompt(),
        );
        Self::given(common, AccessToken::new(access_token), url, why, false)
    }

    /// A session for a token given as is, with `common`'s settings (its
    /// cache is not used).
    pub(crate) fn given(
        common: Common,
        access_token: AccessToken,
        api_base_url: Option<ApiBaseUrl>,
        discovery_error: Option<String>,
        from_environment: bool,
    ) -> CartoAuth {
        let token = Token::new(access_token, NO_EXPIRY);
        let source = if from_environment {
            TokenSource::Environment
        } else {
            TokenSource::Given
        };
        let common = common.without_cache();
        CartoAuth::new(
            Box::new(GivenProvider {
                common,
                from_environment,
            }),
            api_base_url,
            discovery_error,
            token,
            source,
        )
    }

    /// How this session logged in.
    pub fn mode(&self) -> Mode {
        self.inner.provider.mode()
    }

    fn common(&self) -> &Common {
        self.inner.provider.common()
    }

    /// The session's HTTP agent: its connections serve every call.
    pub(crate) fn http(&self) -> Http {
        self.common().http()
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_current(&self, token: Token, source: TokenSource) {
        *self.current() = Current { token, source };
    }

    /// The API base URL, e.g. `https://gcp-us-east1.api.carto.com`.
    pub fn get_api_base_url(&self) -> Option<&str> {
        self.inner.api_base_url.as_ref().map(ApiBaseUrl::as_str)
    }

    /// The API base URL, or the error that says why it is unknown and how
    /// to pass it.
    pub(crate) fn api_base_url_or_error(&self) -> Result<&str> {
        self.get_api_base_url().ok_or_else(|| Error::NoApiBaseUrl {
            why: self.inner.discovery_error.clone(),
        })
    }

    /// The SSO organization of an OAuth session, if one was given.
    pub fn org(&self) -> Option<&str> {
        self.inner.provider.org()
    }

    /// Whose token this is: the JWT's `sub` claim, when the token is a JWT.
    pub fn subject(&self) -> Option<String> {
        self.current().token.subject().map(str::to_string)
    }

    /// When the current token expires, in seconds since the Unix epoch.
    pub fn expiration(&self) -> i64 {
        self.current().token.expiration
    }

    /// Where the current token came from.
    pub fn token_source(&self) -> TokenSource {
        self.current().source.clone()
    }

    /// The cache file in use, if caching is on.
    pub fn cache_filepath(&self) -> Option<&Path> {
        self.common().cache.as_ref().map(|c| c.path())
    }

    /// The current token masked: an ellipsis and its last characters.
    pub fn masked_token(&self) -> String {
        self.current().token.access_token.masked()
    }

    /// "expires in 23 h 41 min", "expired", or "no known expiry" for a
    /// given token that does not say.
    pub fn describe_expiry(&self) -> String {
        describe_expiry(self.expiration(), now_unix())
    }

    /// One line about the session, without the token: where, and for how long.
    pub fn summary(&self) -> String {
        let source = self.current().source.clone();
        let expiry = self.describe_expiry();
        let mut out = format!(
            "{} session, API {}, token {expiry} (from {source})",
            self.mode(),
            self.get_api_base_url().unwrap_or("unknown"),
        );
        if let Some(org) = self.org() {
            out.push_str(&format!(", organization {org}"));
        }
        out
    }

    /// The token if it is still good, without waiting for anything.
    fn valid_token(&self) -> Option<AccessToken> {
        let current = self.current();
        (!current.token.is_expired_at(now_unix())).then(|| current.token.access_token.clone())
    }

    /// The access token, renewed first when it has expired (or expires
    /// within a minute): an M2M session requests a new one; an OAuth session
    /// takes a fresher token of the same user from the cache (another
    /// kernel's login) or signs in again, saying why. A token given as is
    /// cannot be renewed.
    ///
    /// # Errors
    /// Those of the login or token request that renewal needed;
    /// [`Error::TokenExpired`] for a given token;
    /// [`Error::AccountChanged`] when the renewal sign-in was another
    /// account's.
    pub fn get_access_token(&self) -> Result<String> {
        Ok(self.token()?.secret().to_string())
    }

    /// [`get_access_token`](Self::get_access_token) for async programs, on
    /// any executor: the call runs on a thread of its own.
    pub async fn get_access_token_async(&self) -> Result<String> {
        let auth = self.clone();
        run(move || auth.get_access_token()).await
    }

    /// The token, renewed by the session's provider when it has expired.
    pub(crate) fn token(&self) -> Result<AccessToken> {
        // The common case takes no lock but the token's: microseconds.
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let _renewal = self
            .inner
            .renewal
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let expired = self.current().token.clone();
        let (token, source) = self.inner.provider.renew(&Expired {
            token: &expired,
            api_base_url: self.inner.api_base_url.as_ref(),
        })?;
        let access_token = token.access_token.clone();
        self.set_current(token, source);
        Ok(access_token)
    }

    /// `(project id, token)` for the CARTO Data Warehouse (BigQuery).
    ///
    /// # Errors
    /// [`Error::NoApiBaseUrl`]; the DW endpoint's errors, which suggest
    /// checking the API base URL.
    pub fn get_carto_dw_credentials(&self) -> Result<(String, String)> {
        let base = self.api_base_url_or_error()?;
        let token = self.token()?;
        carto_dw_credentials(&self.http(), base, &token)
    }

    /// [`get_carto_dw_credentials`](Self::get_carto_dw_credentials) for
    /// async programs.
    pub async fn get_carto_dw_credentials_async(&self) -> Result<(String, String)> {
        let auth = self.clone();
        run(move || auth.get_carto_dw_credentials()).await
    }

    /// The credentials deck.gl's `CartoLayer` takes.
    ///
    /// # Errors
    /// [`Error::NoApiBaseUrl`]; those of [`get_access_token`](Self::get_access_token).
    pub fn get_layer_credentials(&self) -> Result<LayerCredentials> {
        let base = self.api_base_url_or_error()?;
        Ok(LayerCredentials::new(base, self.get_access_token()?))
    }

    /// [`get_layer_credentials`](Self::get_layer_credentials) for async programs.
    pub async fn get_layer_credentials_async(&self) -> Result<LayerCredentials> {
        let auth = self.clone();
        run(move || auth.get_layer_credentials()).await
    }
}

impl std::fmt::Debug for CartoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (expiration, source, token) = {
            let current = self.current();
            (
                current.token.expiration,
                current.source.clone(),
                current.token.access_token.clone(),
            )
        };
        f.debug_struct("CartoAuth")
            .field("mode", &self.mode())
            .field("api_base_url", &self.get_api_base_url())
            .field("org", &self.org())
            .field("expiration", &expiration)
            .field("token_source", &source)
            .field("cache_filepath", &self.cache_filepath())
            .field("access_token", &token)
            .finish()
    }
}

impl std::fmt::Display for CartoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CARTO {} ({})", self.summary(), self.masked_token())
    }
}
