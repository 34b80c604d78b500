//! The settings a session keeps, to renew its token as it logged in.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::api_base_url::ApiBaseUrl;
use crate::cache::{CacheEntry, CacheLock, TokenCache, Warning};
use crate::endpoints::Endpoints;
use crate::error::Result;
use crate::http::Http;
use crate::mode::Mode;
use crate::prompt::{Prompt, warn};
use crate::token::Token;

/// What every kind of session shares.
#[derive(Clone)]
pub(crate) struct Common {
    pub(crate) endpoints: Endpoints,
    pub(crate) cache: Option<TokenCache>,
    pub(crate) timeout: Duration,
    /// Where notices and warnings go: the terminal, the notebook, or the
    /// program's own [`Prompt`].
    pub(crate) prompt: Arc<dyn Prompt>,
    /// The session's HTTP agent, made on first use (a cached token never
    /// pays for it) and shared by clones, so connections are reused.
    http: Arc<OnceLock<Http>>,
}

impl Common {
    pub(crate) fn new(
        mode: Mode,
        endpoints: Option<Endpoints>,
        use_cache: bool,
        cache_filepath: Option<PathBuf>,
        timeout: Duration,
        prompt: Arc<dyn Prompt>,
    ) -> Result<Common> {
        let endpoints = match endpoints {
            Some(e) => e,
            None => Endpoints::from_env()?,
        };
        // With caching off the file is neither read nor written.
        let cache = match (use_cache, cache_filepath, mode.cache_name()) {
            (false, _, _) | (true, None, None) => None,
            (true, Some(path), _) => Some(TokenCache::at(path)),
            (true, None, Some(name)) => match TokenCache::default_for(name) {
                Ok(cache) => Some(cache),
                Err(warning) => {
                    warn(&*prompt, warning.once_key.as_deref(), &warning.message);
                    None
                }
            },
        };
        Ok(Common::with(endpoints, cache, timeout, prompt))
    }

    /// Settings as they are, with an agent of their own.
    pub(crate) fn with(
        endpoints: Endpoints,
        cache: Option<TokenCache>,
        timeout: Duration,
        prompt: Arc<dyn Prompt>,
    ) -> Common {
        Common {
            endpoints,
            cache,
            timeout,
            prompt,
            http: Arc::default(),
        }
    }

    /// The session's HTTP agent.
    pub(crate) fn http(&self) -> Http {
        self.http.get_or_init(|| Http::new(self.timeout)).clone()
    }

    /// The same settings without the cache (a session given its token).
    pub(crate) fn without_cache(&self) -> Common {
        Common {
            cache: None,
            ..self.clone()
        }
    }

    /// Passes a cache warning on to `log` and the prompt.
    pub(crate) fn warn(&self, warning: Warning) {
        warn(&*self.prompt, warning.once_key.as_deref(), &warning.message);
    }

    /// How long to wait for another process's refresh: its request may take
    /// the whole timeout. Saturating: `.timeout(Duration::MAX)` waits for ever.
    pub(crate) fn lock_wait(&self) -> Duration {
        self.timeout.saturating_add(Duration::from_secs(5))
    }

    /// The cache lock, when there is a cache.
    pub(crate) fn lock(&self) -> Option<CacheLock> {
        let cache = self.cache.as_ref()?;
        cache.lock(self.lock_wait(), &|w| self.warn(w))
    }

    /// The cached entry, when there is a cache and a usable file.
    pub(crate) fn load(&self) -> Option<CacheEntry> {
        let cache = self.cache.as_ref()?;
        cache.load(&|w| self.warn(w))
    }

    /// Writes an entry; the caller holds the lock.
    pub(crate) fn save_locked(&self, entry: &CacheEntry) {
        if let Some(cache) = &self.cache {
            cache.save(entry, &|w| self.warn(w));
        }
    }

    /// Writes an entry under the lock.
    pub(crate) fn save(&self, entry: &CacheEntry) {
        let _lock = self.lock();
        self.save_locked(entry);
    }
}

/// The settings of an interactive login, kept to log in again on expiry.
pub(crate) struct OAuthConfig {
    pub(crate) common: Common,
    /// `Some(true)` forces the local flow, `Some(false)` the paste flow,
    /// `None` guesses from the environment.
    pub(crate) open_browser: Option<bool>,
    pub(crate) device_flow: bool,
    pub(crate) org: Option<String>,
    /// `.api_base_url(..)`, else `CARTO_API_BASE_URL`: when set, discovery
    /// is skipped and a cached token must be for it.
    pub(crate) api_base_url: Option<ApiBaseUrl>,
    pub(crate) login_timeout: Duration,
    /// Ask the authorization server for its sign-in form even when the
    /// browser is signed in (`prompt=login`).
    pub(crate) force_login: bool,
}

impl OAuthConfig {
    /// Caches a person's token, with the organization it was signed in for.
    pub(crate) fn save_token(&self, api_base_url: Option<ApiBaseUrl>, token: &Token) {
        let entry = CacheEntry {
            org: self.org.clone(),
            ..CacheEntry::new(api_base_url, token.clone())
        };
        self.common.save(&entry);
    }
}
