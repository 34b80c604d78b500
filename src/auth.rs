//! `CartoAuth`: the logged-in session, its builders, and token renewal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::{LayerCredentials, carto_dw_credentials, discover_api_base_url};
use crate::cache::{CacheEntry, TokenCache};
use crate::endpoints::Endpoints;
use crate::error::{Error, Result};
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::login::PendingLogin;
use crate::m2m::{Credentials, request_token};
use crate::prompt::{Prompt, default_prompt};
use crate::runtime::block_on;
use crate::secret::AccessToken;
use crate::token::{Token, describe_expiry, now_unix};

/// How long the local flow waits for the browser by default.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How a session logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A person, through the browser (authorization code + PKCE).
    OAuth,
    /// An application, with a credentials file (client credentials).
    M2m,
}

impl Mode {
    fn cache_name(self) -> &'static str {
        match self {
            Mode::OAuth => "oauth",
            Mode::M2m => "m2m",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::OAuth => "OAuth",
            Mode::M2m => "M2M",
        })
    }
}

/// What both kinds of session share.
pub(crate) struct Common {
    pub(crate) endpoints: Endpoints,
    pub(crate) cache: Option<TokenCache>,
    pub(crate) timeout: Duration,
}

impl Common {
    fn new(
        mode: Mode,
        endpoints: Option<Endpoints>,
        use_cache: bool,
        cache_filepath: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<Common> {
        let endpoints = match endpoints {
            Some(e) => e,
            None => Endpoints::from_env()?,
        };
        // With caching off the file is neither read nor written.
        let cache = match (use_cache, cache_filepath) {
            (false, _) => None,
            (true, Some(path)) => Some(TokenCache::at(path)),
            (true, None) => TokenCache::default_for(mode.cache_name()),
        };
        Ok(Common {
            endpoints,
            cache,
            timeout,
        })
    }

    pub(crate) fn http(&self) -> Result<Http> {
        Http::new(self.timeout)
    }

    /// How long to wait for another process's refresh: its request may take
    /// the whole timeout.
    fn lock_wait(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }

    /// Writes the session to the cache, under the lock.
    async fn save(&self, entry: &CacheEntry) {
        if let Some(cache) = &self.cache {
            let _lock = cache.lock(self.lock_wait()).await;
            cache.save(entry);
        }
    }
}

/// The settings of an interactive login, kept to log in again on expiry.
pub(crate) struct OAuthConfig {
    pub(crate) common: Common,
    pub(crate) open_browser: bool,
    pub(crate) org: Option<String>,
    pub(crate) api_base_url: Option<String>,
    pub(crate) login_timeout: Duration,
    pub(crate) prompt: Arc<dyn Prompt>,
}

/// The settings of an M2M session, kept to renew its token.
struct M2mConfig {
    common: Common,
    credentials: Credentials,
}

enum Kind {
    OAuth(Arc<OAuthConfig>),
    // Boxed: the two kinds differ much in size and a session holds one.
    M2m(Box<M2mConfig>),
}

struct Session {
    kind: Kind,
    api_base_url: Option<String>,
    token: Mutex<Token>,
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
    /// Logs in a person with all defaults: the cached token when it is still
    /// good, else the browser (or the paste flow where no local browser can
    /// be used). Blocks until done.
    ///
    /// # Errors
    /// See [`OAuthBuilder::login`].
    pub fn from_oauth() -> Result<CartoAuth> {
        Self::oauth().login()
    }

    /// A builder for an interactive login.
    pub fn oauth() -> OAuthBuilder {
        OAuthBuilder::default()
    }

    /// Logs in an application with a CARTO M2M credentials file (JSON with
    /// `api_base_url`, `client_id`, `client_secret`).
    ///
    /// ```no_run
    /// let auth = carto_auth::CartoAuth::from_m2m("carto_credentials.json")?;
    /// # Ok::<(), carto_auth::Error>(())
    /// ```
    ///
    /// # Errors
    /// See [`M2mBuilder::login`].
    pub fn from_m2m(path: impl Into<PathBuf>) -> Result<CartoAuth> {
        Self::m2m(path).login()
    }

    /// The same as [`from_m2m`](Self::from_m2m), under the name CARTO's
    /// documentation uses.
    ///
    /// # Errors
    /// See [`M2mBuilder::login`].
    pub fn from_file(path: impl Into<PathBuf>) -> Result<CartoAuth> {
        Self::from_m2m(path)
    }

    /// A builder for an M2M login.
    pub fn m2m(path: impl Into<PathBuf>) -> M2mBuilder {
        M2mBuilder {
            credentials: path.into(),
            cache_filepath: None,
            use_cache: true,
            endpoints: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn new(kind: Kind, api_base_url: Option<String>, token: Token) -> CartoAuth {
        CartoAuth {
            inner: Arc::new(Session {
                kind,
                api_base_url,
                token: Mutex::new(token),
                renewal: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The end of every interactive login: discover the API base URL unless
    /// given, cache, confirm.
    pub(crate) async fn after_login(
        config: Arc<OAuthConfig>,
        token: Token,
        http: Http,
    ) -> Result<CartoAuth> {
        let api_base_url = match &config.api_base_url {
            Some(url) => url.clone(),
            None => {
                discover_api_base_url(&http, &config.common.endpoints, &token.access_token).await?
            }
        };
        let entry = CacheEntry {
            api_base_url: Some(api_base_url.clone()),
            token: token.clone(),
            client_id: None,
        };
        config.common.save(&entry).await;
        let auth = CartoAuth::new(Kind::OAuth(config.clone()), Some(api_base_url), token);
        config
            .prompt
            .notice(&format!("Signed in to CARTO. {}", auth.summary()));
        Ok(auth)
    }

    /// How this session logged in.
    pub fn mode(&self) -> Mode {
        match self.inner.kind {
            Kind::OAuth(_) => Mode::OAuth,
            Kind::M2m(_) => Mode::M2m,
        }
    }

    fn common(&self) -> &Common {
        match &self.inner.kind {
            Kind::OAuth(config) => &config.common,
            Kind::M2m(m2m) => &m2m.common,
        }
    }

    /// The API base URL, e.g. `https://gcp-us-east1.api.carto.com`.
    pub fn get_api_base_url(&self) -> Option<&str> {
        self.inner.api_base_url.as_deref()
    }

    /// The SSO organization of an OAuth session, if one was given.
    pub fn org(&self) -> Option<&str> {
        match &self.inner.kind {
            Kind::OAuth(config) => config.org.as_deref(),
            Kind::M2m(_) => None,
        }
    }

    /// When the current token expires, in seconds since the Unix epoch.
    pub fn expiration(&self) -> i64 {
        self.current().expiration
    }

    /// The cache file in use, if caching is on.
    pub fn cache_filepath(&self) -> Option<&Path> {
        self.common().cache.as_ref().map(TokenCache::path)
    }

    /// The current token masked: its first six characters and an ellipsis.
    pub fn masked_token(&self) -> String {
        self.current().access_token.masked()
    }

    /// One line about the session, without the token: where, and for how long.
    pub fn summary(&self) -> String {
        let token = self.current();
        let mut out = format!(
            "{} session, API {}, token {}",
            self.mode(),
            self.get_api_base_url().unwrap_or("unknown"),
            describe_expiry(token.expiration, now_unix())
        );
        if let Some(org) = self.org() {
            out.push_str(&format!(", organization {org}"));
        }
        if let Some(path) = self.cache_filepath() {
            out.push_str(&format!(", cached in {}", path.display()));
        }
        out
    }

    fn current(&self) -> Token {
        self.inner
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn valid_token(&self) -> Option<AccessToken> {
        let token = self.current();
        (!token.is_expired_at(now_unix())).then_some(token.access_token)
    }

    /// The access token. When it has expired (or will within a minute) an
    /// M2M session requests a new one silently and an OAuth session logs in
    /// again (another kernel's fresh login in the cache is used first); the
    /// cache is updated.
    ///
    /// # Errors
    /// Those of the login or token request that renewal needed.
    pub fn get_access_token(&self) -> Result<String> {
        // The common case takes no runtime and no lock: a few microseconds.
        if let Some(token) = self.valid_token() {
            return Ok(token.secret().to_string());
        }
        block_on(self.get_access_token_async())?
    }

    /// [`get_access_token`](Self::get_access_token) for async programs.
    pub async fn get_access_token_async(&self) -> Result<String> {
        Ok(self.token_async().await?.secret().to_string())
    }

    async fn token_async(&self) -> Result<AccessToken> {
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let _renewal = self.inner.renewal.lock().await;
        if let Some(token) = self.valid_token() {
            return Ok(token);
        }
        let expired_at = self.current().expiration;
        let token = match &self.inner.kind {
            Kind::M2m(m2m) => m2m_token(&m2m.common, &m2m.credentials).await?,
            Kind::OAuth(config) => {
                let cached = match &config.common.cache {
                    Some(cache) => {
                        let _lock = cache.lock(config.common.lock_wait()).await;
                        cache.load().filter(|e| e.usable_at(now_unix()))
                    }
                    None => None,
                };
                match cached {
                    Some(entry) => entry.token,
                    None => {
                        config.prompt.notice(&format!(
                            "The CARTO token expired ({}); signing in again.",
                            describe_expiry(expired_at, now_unix())
                        ));
                        let pending = PendingLogin::start(config.clone())?;
                        pending.run().await?.current()
                    }
                }
            }
        };
        let access_token = token.access_token.clone();
        *self
            .inner
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = token;
        Ok(access_token)
    }

    /// `(project id, token)` for the CARTO Data Warehouse (BigQuery).
    ///
    /// # Errors
    /// [`Error::NoApiBaseUrl`]; the DW endpoint's errors, which suggest
    /// checking the API base URL.
    pub fn get_carto_dw_credentials(&self) -> Result<(String, String)> {
        block_on(self.get_carto_dw_credentials_async())?
    }

    /// [`get_carto_dw_credentials`](Self::get_carto_dw_credentials) for
    /// async programs.
    pub async fn get_carto_dw_credentials_async(&self) -> Result<(String, String)> {
        let base = self.get_api_base_url().ok_or(Error::NoApiBaseUrl)?;
        let token = self.token_async().await?;
        carto_dw_credentials(&self.common().http()?, base, &token).await
    }

    /// The credentials deck.gl's `CartoLayer` takes.
    ///
    /// # Errors
    /// [`Error::NoApiBaseUrl`]; those of [`get_access_token`](Self::get_access_token).
    pub fn get_layer_credentials(&self) -> Result<LayerCredentials> {
        let base = self.get_api_base_url().ok_or(Error::NoApiBaseUrl)?;
        Ok(LayerCredentials::new(base, self.get_access_token()?))
    }

    /// [`get_layer_credentials`](Self::get_layer_credentials) for async programs.
    pub async fn get_layer_credentials_async(&self) -> Result<LayerCredentials> {
        let base = self.get_api_base_url().ok_or(Error::NoApiBaseUrl)?;
        Ok(LayerCredentials::new(
            base,
            self.get_access_token_async().await?,
        ))
    }
}

impl std::fmt::Debug for CartoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = self.current();
        f.debug_struct("CartoAuth")
            .field("mode", &self.mode())
            .field("api_base_url", &self.get_api_base_url())
            .field("org", &self.org())
            .field("expiration", &token.expiration)
            .field("cache_filepath", &self.cache_filepath())
            .field("access_token", &token.access_token)
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
async fn m2m_token(common: &Common, credentials: &Credentials) -> Result<Token> {
    let request = || async { request_token(&common.http()?, &common.endpoints, credentials).await };
    let Some(cache) = &common.cache else {
        return request().await;
    };
    let _lock = cache.lock(common.lock_wait()).await;
    if let Some(entry) = cache
        .load()
        .filter(|e| e.usable_at(now_unix()) && m2m_entry_matches(e, credentials))
    {
        log::debug!("using the cached M2M token from {}", cache.path().display());
        return Ok(entry.token);
    }
    let token = request().await?;
    cache.save(&CacheEntry {
        api_base_url: Some(credentials.api_base_url.clone()),
        token: token.clone(),
        client_id: Some(credentials.client_id.clone()),
    });
    Ok(token)
}

/// The Python package reuses `token_m2m.json` for any credentials; ours uses
/// a cached token only for the client and API that made it. A Python-written
/// file (no client id) is used when its API base URL matches.
fn m2m_entry_matches(entry: &CacheEntry, credentials: &Credentials) -> bool {
    let same_url = entry
        .api_base_url
        .as_deref()
        .map(|u| u.trim_end_matches('/'))
        == Some(credentials.api_base_url.trim_end_matches('/'));
    let same_client = entry
        .client_id
        .as_deref()
        .is_none_or(|id| id == credentials.client_id);
    same_url && same_client
}

/// Builds an interactive (OAuth) login. Made by [`CartoAuth::oauth`].
///
/// ```no_run
/// use carto_auth::CartoAuth;
/// let auth = CartoAuth::oauth()
///     .org("acme")
///     .open_browser(false)
///     .cache_filepath("/tmp/carto-token.json")
///     .login()?;
/// # Ok::<(), carto_auth::Error>(())
/// ```
#[must_use]
pub struct OAuthBuilder {
    cache_filepath: Option<PathBuf>,
    use_cache: bool,
    open_browser: bool,
    api_base_url: Option<String>,
    org: Option<String>,
    endpoints: Option<Endpoints>,
    timeout: Duration,
    login_timeout: Duration,
    prompt: Option<Arc<dyn Prompt>>,
    force_login: bool,
}

impl Default for OAuthBuilder {
    fn default() -> Self {
        OAuthBuilder {
            cache_filepath: None,
            use_cache: true,
            open_browser: true,
            api_base_url: None,
            org: None,
            endpoints: None,
            timeout: DEFAULT_TIMEOUT,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            prompt: None,
            force_login: false,
        }
    }
}

impl OAuthBuilder {
    /// The cache file (default `~/.carto-auth/token_oauth.json`).
    pub fn cache_filepath(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_filepath = Some(path.into());
        self
    }

    /// Whether to read and write the cache (default `true`).
    pub fn use_cache(mut self, use_cache: bool) -> Self {
        self.use_cache = use_cache;
        self
    }

    /// `false` always uses the paste flow. `true` (the default) uses a local
    /// browser unless this looks like a remote kernel (JupyterHub, Binder,
    /// SSH, Colab, Databricks, no display); `CARTO_AUTH_OPEN_BROWSER=0|1`
    /// overrides that guess.
    pub fn open_browser(mut self, open_browser: bool) -> Self {
        self.open_browser = open_browser;
        self
    }

    /// The API base URL; skips its discovery after login.
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into().trim_end_matches('/').to_string());
        self
    }

    /// The SSO organization to sign in with.
    pub fn org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }

    /// Other endpoints than [`Endpoints::from_env`].
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    /// Timeout of each HTTP request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the local flow waits for the browser (default 5 minutes).
    pub fn login_timeout(mut self, timeout: Duration) -> Self {
        self.login_timeout = timeout;
        self
    }

    /// How to talk to the user; by default the terminal, or evcxr's streamed
    /// output and input box inside a notebook.
    pub fn prompt(mut self, prompt: impl Prompt + 'static) -> Self {
        self.prompt = Some(Arc::new(prompt));
        self
    }

    /// Signs in anew even when the cached token is good; the new token still
    /// replaces the cached one (default `false`). For switching accounts or
    /// organizations.
    pub fn force_login(mut self, force: bool) -> Self {
        self.force_login = force;
        self
    }

    fn config(self) -> Result<OAuthConfig> {
        Ok(OAuthConfig {
            common: Common::new(
                Mode::OAuth,
                self.endpoints,
                self.use_cache,
                self.cache_filepath,
                self.timeout,
            )?,
            open_browser: self.open_browser,
            org: self.org.filter(|o| !o.trim().is_empty()),
            api_base_url: self.api_base_url.filter(|u| !u.is_empty()),
            login_timeout: self.login_timeout,
            prompt: self.prompt.unwrap_or_else(default_prompt),
        })
    }

    /// Logs in: the cached token when it is good, else interactively. Blocks
    /// until done; works inside a tokio runtime too.
    ///
    /// # Errors
    /// [`Error::NoAnswer`], [`Error::NoCode`], [`Error::Authorization`],
    /// [`Error::LoginTimeout`], and the token endpoint's and discovery's
    /// errors.
    pub fn login(self) -> Result<CartoAuth> {
        block_on(self.login_async())?
    }

    /// [`login`](Self::login) for async programs.
    pub async fn login_async(self) -> Result<CartoAuth> {
        let force = self.force_login;
        let config = Arc::new(self.config()?);
        if let Some(cache) = config.common.cache.as_ref().filter(|_| !force) {
            let entry = {
                let _lock = cache.lock(config.common.lock_wait()).await;
                cache.load()
            };
            if let Some(entry) = entry.filter(|e| e.usable_at(now_unix())) {
                log::info!(
                    "using the cached OAuth token from {}",
                    cache.path().display()
                );
                let api_base_url = config.api_base_url.clone().or(entry.api_base_url);
                return Ok(CartoAuth::new(
                    Kind::OAuth(config),
                    api_base_url,
                    entry.token,
                ));
            }
        }
        PendingLogin::start(config)?.run().await
    }

    /// Starts an interactive login without waiting for it (the cache is not
    /// read; it is written when the login completes). For notebooks: show
    /// the returned value, then finish it in a later cell.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a bad endpoint variable.
    pub fn begin(self) -> Result<PendingLogin> {
        PendingLogin::start(Arc::new(self.config()?))
    }
}

/// Builds an M2M login. Made by [`CartoAuth::m2m`].
#[must_use]
pub struct M2mBuilder {
    credentials: PathBuf,
    cache_filepath: Option<PathBuf>,
    use_cache: bool,
    endpoints: Option<Endpoints>,
    timeout: Duration,
}

impl M2mBuilder {
    /// The cache file (default `~/.carto-auth/token_m2m.json`).
    pub fn cache_filepath(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_filepath = Some(path.into());
        self
    }

    /// Whether to read and write the cache (default `true`).
    pub fn use_cache(mut self, use_cache: bool) -> Self {
        self.use_cache = use_cache;
        self
    }

    /// Other endpoints than [`Endpoints::from_env`].
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    /// Timeout of each HTTP request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the credentials file and returns a session: the cached token
    /// when it belongs to these credentials and is good, else a new one.
    ///
    /// # Errors
    /// The credentials-file errors (naming the file and key) and the token
    /// endpoint's.
    pub fn login(self) -> Result<CartoAuth> {
        block_on(self.login_async())?
    }

    /// [`login`](Self::login) for async programs.
    pub async fn login_async(self) -> Result<CartoAuth> {
        let credentials = Credentials::from_file(&self.credentials)?;
        let common = Common::new(
            Mode::M2m,
            self.endpoints,
            self.use_cache,
            self.cache_filepath,
            self.timeout,
        )?;
        let token = m2m_token(&common, &credentials).await?;
        let api_base_url = Some(credentials.api_base_url.clone());
        Ok(CartoAuth::new(
            Kind::M2m(Box::new(M2mConfig {
                common,
                credentials,
            })),
            api_base_url,
            token,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ClientSecret;

    fn creds() -> Credentials {
        Credentials {
            api_base_url: "https://api.example".into(),
            client_id: "A".into(),
            client_secret: ClientSecret::new("s"),
        }
    }

    fn entry(url: &str, client: Option<&str>) -> CacheEntry {
        CacheEntry {
            api_base_url: Some(url.into()),
            token: Token {
                access_token: AccessToken::new("t"),
                expiration: i64::MAX,
            },
            client_id: client.map(str::to_string),
        }
    }

    #[test]
    fn m2m_cache_belongs_to_its_client_and_api() {
        assert!(m2m_entry_matches(
            &entry("https://api.example", Some("A")),
            &creds()
        ));
        assert!(m2m_entry_matches(
            &entry("https://api.example/", None),
            &creds()
        ));
        assert!(!m2m_entry_matches(
            &entry("https://api.example", Some("B")),
            &creds()
        ));
        assert!(!m2m_entry_matches(
            &entry("https://other.example", None),
            &creds()
        ));
    }
}
