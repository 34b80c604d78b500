//! How sessions are made: the constructors of [`CartoAuth`] and the
//! builders behind them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api_base_url::{ApiBaseUrl, Origin};
use crate::auth::CartoAuth;
use crate::background::run;
use crate::config::{Common, OAuthConfig};
use crate::endpoints::Endpoints;
use crate::environment::{DEVICE_FLOW_VAR, api_base_url_var, flag, var};
use crate::error::Result;
use crate::existing_session::existing_session;
use crate::flow::Login;
use crate::http::DEFAULT_TIMEOUT;
use crate::login::{PendingLogin, signed_in};
use crate::m2m::Credentials;
use crate::mode::Mode;
use crate::prompt::{Prompt, default_prompt};
use crate::provider::M2mProvider;

/// How long the local flow waits for the browser, and the device flow for
/// the approval, by default.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

impl CartoAuth {
    /// Logs in a person with all defaults: `CARTO_API_TOKEN` when it is
    /// set, else the cached token when it is still good, else the browser
    /// (or the paste flow where no local browser can be used). Blocks until
    /// done.
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
            prompt: None,
        }
    }
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
    open_browser: Option<bool>,
    device_flow: Option<bool>,
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
            open_browser: None,
            device_flow: None,
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

    /// `true` uses a browser on this machine and the local callback (the
    /// paste flow only when the port is taken or no browser opens); `false`
    /// always uses the paste flow. Unset, this is guessed: no local browser
    /// on remote kernels (JupyterHub, Binder, SSH, Colab, Databricks,
    /// Codespaces, VS Code remotes) or without a display;
    /// `CARTO_AUTH_OPEN_BROWSER=0|1` overrides the guess.
    pub fn open_browser(mut self, open_browser: bool) -> Self {
        self.open_browser = Some(open_browser);
        self
    }

    /// Signs in with the OAuth device flow: the cell or terminal shows a
    /// short code and a link (and a QR code), the user approves on any
    /// device, and the login finishes by itself, with no input needed.
    /// When CARTO refuses the device flow for its public client, the login
    /// says so and goes on with the browser or paste flow. Default: off,
    /// or `CARTO_AUTH_DEVICE_FLOW=1`.
    pub fn device_flow(mut self, device_flow: bool) -> Self {
        self.device_flow = Some(device_flow);
        self
    }

    /// The API base URL, e.g. `https://gcp-us-east1.api.carto.com`: it
    /// skips discovery, and a cached token is used only when it is for this
    /// URL (or names none). Which one wins: this option, else
    /// `CARTO_API_BASE_URL`, else the cached token's, else the one
    /// discovered after signing in. It must be `https://` (plain `http://`
    /// only on this machine); the login refuses anything else with
    /// [`Error::InvalidApiBaseUrl`](crate::Error::InvalidApiBaseUrl). An
    /// empty string means unset.
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
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

    /// How long the local flow waits for the browser, and the device flow
    /// for the approval (default 5 minutes).
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

    /// Signs in anew even when the cached token is good (or
    /// `CARTO_API_TOKEN` is set), and asks CARTO to show its sign-in form
    /// even to a browser that is signed in (`prompt=login`), so that another
    /// account can be chosen. The new token replaces the cached one.
    pub fn force_login(mut self, force: bool) -> Self {
        self.force_login = force;
        self
    }

    fn config(&self) -> Result<OAuthConfig> {
        let prompt = self.prompt.clone().unwrap_or_else(default_prompt);
        let api_base_url = match self
            .api_base_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            Some(url) => Some(ApiBaseUrl::parse(url, Origin::Builder)?),
            None => api_base_url_var()?,
        };
        Ok(OAuthConfig {
            common: Common::new(
                Mode::OAuth,
                self.endpoints.clone(),
                self.use_cache,
                self.cache_filepath.clone(),
                self.timeout,
                prompt,
            )?,
            open_browser: self.open_browser,
            device_flow: self
                .device_flow
                .or_else(|| flag(var(DEVICE_FLOW_VAR).as_deref()))
                .unwrap_or(false),
            org: self.org.clone().filter(|o| !o.trim().is_empty()),
            api_base_url,
            login_timeout: self.login_timeout,
            force_login: self.force_login,
        })
    }

    /// Logs in: `CARTO_API_TOKEN` when set (no prompt, nothing cached), else
    /// the cached token when it is good and fits what is asked (the same
    /// API base URL and organization when given), else interactively.
    /// Blocks until done; works inside any async runtime too (it needs
    /// none), though there [`login_async`](Self::login_async) keeps the
    /// runtime's thread free.
    /// [`existing_session`](Self::existing_session) tells beforehand
    /// whether this would sign in.
    ///
    /// # Errors
    /// [`Error::NoInput`](crate::Error::NoInput),
    /// [`Error::NoAnswer`](crate::Error::NoAnswer),
    /// [`Error::NoCode`](crate::Error::NoCode),
    /// [`Error::Authorization`](crate::Error::Authorization),
    /// [`Error::LoginTimeout`](crate::Error::LoginTimeout), the token
    /// endpoint's errors, [`Error::InvalidSetting`](crate::Error::InvalidSetting)
    /// for a bad environment variable,
    /// [`Error::InvalidApiBaseUrl`](crate::Error::InvalidApiBaseUrl).
    pub fn login(self) -> Result<CartoAuth> {
        let config = Arc::new(self.config()?);
        if let Some(auth) = existing_session(&config)? {
            return Ok(auth);
        }
        let login = Login::start(config.clone())?;
        let token = login.run()?;
        drop(login);
        Ok(signed_in(config, token))
    }

    /// [`login`](Self::login) for async programs, on any executor: the
    /// login runs on a thread of its own. Dropping the future cancels it:
    /// the callback port is free within a second, device polling stops,
    /// and a question waiting for a pasted line is handed to the next login.
    pub async fn login_async(self) -> Result<CartoAuth> {
        run(move || self.login()).await
    }

    /// Starts an interactive login without waiting for it (neither the
    /// cache nor `CARTO_API_TOKEN` is read; the cache is written when the
    /// login completes). For notebooks: show the returned value, then
    /// finish it in a later cell. With [`device_flow`](Self::device_flow)
    /// this asks CARTO for the code first.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`](crate::Error::InvalidSetting) for a bad
    /// endpoint variable.
    pub fn begin(self) -> Result<PendingLogin> {
        PendingLogin::start(Arc::new(self.config()?))
    }

    /// [`begin`](Self::begin) for async programs, on any executor.
    pub async fn begin_async(self) -> Result<PendingLogin> {
        run(move || self.begin()).await
    }

    /// The session [`login`](Self::login) would give without signing in
    /// (from `CARTO_API_TOKEN`, or a cached token that is good and fits
    /// every option: organization, API base URL, `CARTO_API_BASE_URL`,
    /// [`use_cache`](Self::use_cache), [`force_login`](Self::force_login)),
    /// or `None` when it would sign in. The same code decides for both, so
    /// the answer is the login's own. [`CartoAuth::token_source`] says which
    /// of the two it was.
    ///
    /// For programs that must not start a sign-in nobody can answer (a
    /// script without a terminal, a scheduled job):
    /// ```no_run
    /// use carto_auth::CartoAuth;
    /// let builder = CartoAuth::oauth().org("acme");
    /// let auth = match builder.existing_session()? {
    ///     Some(auth) => auth,
    ///     None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => builder.login()?,
    ///     None => {
    ///         eprintln!("not logged in to acme: run `carto-auth login --org acme` first");
    ///         std::process::exit(1);
    ///     }
    /// };
    /// # Ok::<(), carto_auth::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidSetting`](crate::Error::InvalidSetting) for a bad
    /// endpoint variable,
    /// [`Error::InvalidApiBaseUrl`](crate::Error::InvalidApiBaseUrl) for a
    /// bad API base URL.
    pub fn existing_session(&self) -> Result<Option<CartoAuth>> {
        existing_session(&Arc::new(self.config()?))
    }

    /// [`existing_session`](Self::existing_session) for async programs, on
    /// any executor.
    pub async fn existing_session_async(&self) -> Result<Option<CartoAuth>> {
        let config = Arc::new(self.config()?);
        run(move || existing_session(&config)).await
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
    prompt: Option<Arc<dyn Prompt>>,
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

    /// Where warnings go (a cache that cannot be written, say); by default
    /// the terminal's stderr, or the notebook.
    pub fn prompt(mut self, prompt: impl Prompt + 'static) -> Self {
        self.prompt = Some(Arc::new(prompt));
        self
    }

    /// Reads the credentials file and returns a session: the cached token
    /// when it belongs to these credentials (the token's `azp`, or the
    /// client this crate recorded) and is good, else a new one.
    ///
    /// The API base URL is `CARTO_API_BASE_URL` when it is set, else the
    /// file's `api_base_url`; either must be `https://` (plain `http://`
    /// only on this machine).
    ///
    /// # Errors
    /// The credentials-file errors (naming the file and key, an
    /// `api_base_url` that is not `https://` among them),
    /// [`Error::InvalidApiBaseUrl`](crate::Error::InvalidApiBaseUrl) for a
    /// bad `CARTO_API_BASE_URL`, and the token endpoint's.
    pub fn login(self) -> Result<CartoAuth> {
        let mut credentials = Credentials::from_file(&self.credentials)?;
        // The variable wins over the file, as for every session kind: the
        // one place to move a whole environment to another API.
        if let Some(url) = api_base_url_var()? {
            credentials.api_base_url = url;
        }
        let common = Common::new(
            Mode::M2m,
            self.endpoints,
            self.use_cache,
            self.cache_filepath,
            self.timeout,
            self.prompt.unwrap_or_else(default_prompt),
        )?;
        let api_base_url = Some(credentials.api_base_url.clone());
        let provider = M2mProvider {
            common,
            credentials,
        };
        let (token, source) = provider.token()?;
        Ok(CartoAuth::new(
            Box::new(provider),
            api_base_url,
            None,
            token,
            source,
        ))
    }

    /// [`login`](Self::login) for async programs, on any executor: reading
    /// the file, the cache and the request run on a thread of their own.
    pub async fn login_async(self) -> Result<CartoAuth> {
        run(move || self.login()).await
    }
}
