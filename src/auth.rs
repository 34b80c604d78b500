//! `CartoAuth`: the logged-in session, its accessors, and token renewal.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::api::{LayerCredentials, carto_dw_credentials, discover};
use crate::api_base_url::{ApiBaseUrl, Origin};
use crate::cache::CacheEntry;
use crate::clock::{NO_EXPIRY, describe_expiry, now_unix};
use crate::config::{Common, GivenConfig, Kind, OAuthConfig};
use crate::error::{Error, Result};
use crate::flow::Login;
use crate::m2m::{Credentials, request_token};
use crate::mode::{Mode, TokenSource};
use crate::runtime::{Call, block_on};
use crate::secret::AccessToken;
use crate::token::Token;

/// The token a session holds now, and where it came from.
struct Current {
    token: Token,
    source: TokenSource,
}

struct Session {
    kind: Kind,
    api_base_url: Option<ApiBaseUrl>,
    /// Why the API base URL is unknown: discovery failed after sign-in, or
    /// the one given was refused.
    discovery_error: Option<String>,
    current: Mutex<Current>,
    /// One renewal at a time within the process; other processes are kept
    /// out by the cache lock.
    renewal: tokio::sync::Mutex<()>,
    // No HTTP client is kept here. evcxr links every cell with its own copy
    // of each dependency: a reqwest client made in the login's cell calls
    // that cell's copy of tokio, whose thread-local runtime is unset while a
    // later cell runs, and hyper panics ("no reactor running"). A client per
    // request costs nothing next to the request.
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
        kind: Kind,
        api_base_url: Option<ApiBaseUrl>,
        discovery_error: Option<String>,
        token: Token,
        source: TokenSource,
    ) -> CartoAuth {
        CartoAuth {
            inner: Arc::new(Session {
                kind,
                api_base_url,
                discovery_error,
                current: Mutex::new(Current { token, source }),
                renewal: tokio::sync::Mutex::new(()),
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
        let common = Common {
            endpoints: crate::endpoints::Endpoints::carto(),
            cache: None,
            timeout: crate::http::DEFAULT_TIMEOUT,
            prompt: crate::prompt::default_prompt(),
        };
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
        let common = Common {
            cache: None,
            ..common
        };
        CartoAuth::new(
            Kind::Given(Box::new(GivenConfig {
                common,
                from_environment,
            })),
            api_base_url,
            discovery_error,
            token,
            source,
        )
    }

    /// The end of every interactive login: discover the API base URL unless
    /// given (retrying once; a failure keeps the token and leaves the URL
    /// unknown), cache, confirm.
    pub(crate) async fn signed_in(config: Arc<OAuthConfig>, token: Token) -> Result<CartoAuth> {
        let common = &config.common;
        let (api_base_url, discovery_error) = match &config.api_base_url {
            Some(url) => (Some(url.clone()), None),
            None => discover(common, &token.access_token).await,
        };
        config.save_token(api_base_url.clone(), &token).await;
        let auth = CartoAuth::new(
            Kind::OAuth(config.clone()),
            api_base_url,
            discovery_error.clone(),
            token,
            TokenSource::SignIn,
        );
        common
            .prompt
            .notice(&format!("Signed in to CARTO. {}", auth.summary()));
        if let Some(why) = discovery_error {
            crate::prompt::warn(
                &*common.prompt,
                None,
                &format!(
                    "the API base URL could not be found after signing in ({why}); the token is \
                     kept. Pass the URL with .api_base_url(..) or CARTO_API_BASE_URL (CARTO \
                     Workspace > Developers shows it)"
                ),
            );
        }
        Ok(auth)
    }

    /// How this session logged in.
    pub fn mode(&self) -> Mode {
        self.inner.kind.mode()
    }

    fn common(&self) -> &Common {
        self.inner.kind.common()
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
        match &self.inner.kind {
            Kind::OAuth(config) => config.org.as_deref(),
            _ => None,
        }
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
        // The common case takes no runtime and no lock: a few microseconds.
        if let Some(token) = self.valid_token() {
            return Ok(token.secret().to_string());
        }
        block_on(
            Call {
                name: "CartoAuth::get_access_token",
                twin: "get_access_token_async",
            },
            self.get_access_token_async(),
        )?
    }

    /// [`get_access_token`](Self::get_access_token) for async programs.
    pub async fn get_access_token_async(&self) -> Result<String> {
        Ok(self.token_async().await?.secret().to_string())
    }

    pub(crate) async fn token_async(&self) -> Result<AccessToken> {
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let _renewal = self.inner.renewal.lock().await;
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let (token, source) = match &self.inner.kind {
            Kind::M2m(m2m) => m2m_token(&m2m.common, &m2m.credentials).await?,
            Kind::OAuth(config) => self.renew_oauth(config).await?,
            Kind::Given(given) => {
                let expired = now_unix().saturating_sub(self.expiration());
                return Err(Error::TokenExpired {
                    source_name: if given.from_environment {
                        "in CARTO_API_TOKEN".into()
                    } else {
                        "given to CartoAuth::from_token".into()
                    },
                    expired_secs_ago: expired,
                    remedy: if given.from_environment {
                        "Set CARTO_API_TOKEN to a new token (CARTO Workspace > Developers), or unset it to sign in"
                    } else {
                        "Create the session again with a new token, or sign in with CartoAuth::from_oauth()"
                    },
                });
            }
        };
        let access_token = token.access_token.clone();
        self.set_current(token, source);
        Ok(access_token)
    }

    /// An expired OAuth session: a fresh token of the same user from the
    /// cache, or a new sign-in that must be the same user's.
    async fn renew_oauth(&self, config: &Arc<OAuthConfig>) -> Result<(Token, TokenSource)> {
        let common = &config.common;
        let subject = self.subject();
        let api_base_url = self.inner.api_base_url.clone();
        let cached = {
            let _lock = common.lock().await;
            common.load().await
        };
        let ours = self.current().token.access_token.clone();
        let why_not_cached = match cached {
            Some(entry) if entry.token.access_token == ours => "no fresher token is cached".into(),
            Some(entry) if !entry.is_fresh_at(now_unix()) => {
                "the cached one has expired too".into()
            }
            Some(entry) => match entry.check_same_user(
                subject.as_deref(),
                self.get_api_base_url(),
                config.org.as_deref(),
            ) {
                Ok(()) => {
                    log::info!("renewed the session with a fresher token from the cache");
                    let path = common.cache.as_ref().map(|c| c.path().to_path_buf());
                    return Ok((
                        entry.token,
                        path.map_or(TokenSource::SignIn, TokenSource::Cache),
                    ));
                }
                Err(why) => format!("the cached one is not this session's: {why}"),
            },
            None => "no fresher token is cached".into(),
        };
        let state = if self.expiration() <= now_unix() {
            "has expired"
        } else {
            "is about to expire"
        };
        let reason = format!("the CARTO token {state}, and {why_not_cached}");
        common
            .prompt
            .notice(&format!("Signing in again: {reason}."));
        let login = Login::start(config.clone()).await?;
        let token = match login.run().await {
            Ok(token) => token,
            Err(Error::NoInput { hint, .. }) => {
                return Err(Error::NoInput {
                    reason: Some(reason),
                    hint,
                });
            }
            Err(e) => return Err(e),
        };
        if let (Some(expected), Some(got)) = (subject, token.subject())
            && expected != got
        {
            return Err(Error::AccountChanged {
                expected,
                got: got.to_string(),
            });
        }
        config.save_token(api_base_url, &token).await;
        Ok((token, TokenSource::SignIn))
    }

    /// `(project id, token)` for the CARTO Data Warehouse (BigQuery).
    ///
    /// # Errors
    /// [`Error::NoApiBaseUrl`]; the DW endpoint's errors, which suggest
    /// checking the API base URL.
    pub fn get_carto_dw_credentials(&self) -> Result<(String, String)> {
        block_on(
            Call {
                name: "CartoAuth::get_carto_dw_credentials",
                twin: "get_carto_dw_credentials_async",
            },
            self.get_carto_dw_credentials_async(),
        )?
    }

    /// [`get_carto_dw_credentials`](Self::get_carto_dw_credentials) for
    /// async programs.
    pub async fn get_carto_dw_credentials_async(&self) -> Result<(String, String)> {
        let base = self.api_base_url_or_error()?;
        let token = self.token_async().await?;
        carto_dw_credentials(&self.common().http()?, base, &token).await
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
        let base = self.api_base_url_or_error()?;
        Ok(LayerCredentials::new(
            base,
            self.get_access_token_async().await?,
        ))
    }

    /// The timeout of each request, as the session was built with.
    pub(crate) fn request_timeout(&self) -> std::time::Duration {
        self.common().timeout
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

/// An M2M token for these credentials: from the cache when it belongs to
/// them and is good, else from the token endpoint, all under the cache lock
/// so that many processes starting at once make one request.
pub(crate) async fn m2m_token(
    common: &Common,
    credentials: &Credentials,
) -> Result<(Token, TokenSource)> {
    let request = || async { request_token(&common.http()?, &common.endpoints, credentials).await };
    let Some(cache) = &common.cache else {
        return Ok((request().await?, TokenSource::SignIn));
    };
    let _lock = common.lock().await;
    if let Some(entry) = common.load().await {
        match entry
            .is_fresh_at(now_unix())
            .then(|| entry.check_m2m(&credentials.client_id, credentials.api_base_url.as_str()))
        {
            Some(Ok(())) => {
                log::debug!("using the cached M2M token from {}", cache.path().display());
                return Ok((entry.token, TokenSource::Cache(cache.path().to_path_buf())));
            }
            Some(Err(why)) => log::info!("not reusing the cached M2M token: {why}"),
            None => log::info!("the cached M2M token has expired"),
        }
    }
    let token = request().await?;
    common.save_locked(&CacheEntry {
        client_id: Some(credentials.client_id.clone()),
        ..CacheEntry::new(Some(credentials.api_base_url.clone()), token.clone())
    });
    Ok((token, TokenSource::SignIn))
}
