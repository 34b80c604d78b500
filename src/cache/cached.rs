//! A cache file read without logging in: what `carto-auth status` shows and
//! `carto-auth logout` removes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CacheEntry, Read, TokenCache};
use crate::clock::{describe_expiry, now_unix};
use crate::mode::Mode;
use crate::secret::AccessToken;

/// How long `remove` waits for another process's refresh to finish.
const REMOVE_LOCK_WAIT: Duration = Duration::from_secs(10);

/// A cache file read without logging in.
///
/// ```no_run
/// use carto_auth::{CachedToken, Mode};
/// let path = CachedToken::default_path(Mode::OAuth).expect("a home directory");
/// match CachedToken::read(&path)? {
///     Some(t) => println!("{} {}", t.masked_token(), t.describe_expiry()),
///     None => println!("not logged in"),
/// }
/// # Ok::<(), carto_auth::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CachedToken {
    path: PathBuf,
    entry: CacheEntry,
}

impl CachedToken {
    /// `~/.carto-auth/token_oauth.json` or `token_m2m.json`; `None` for
    /// [`Mode::Token`], which is never cached, or without a home directory.
    pub fn default_path(mode: Mode) -> Option<PathBuf> {
        TokenCache::default_path(mode.cache_name()?)
    }

    /// Reads a cache file (through a symbolic link, in the local zone's
    /// clock when the Python package wrote it). `Ok(None)` when there is
    /// none.
    ///
    /// # Errors
    /// [`Error::Cache`](crate::Error::Cache) when the file cannot be read or
    /// is not a cache (the login would ignore it and replace it).
    pub fn read(path: impl AsRef<Path>) -> crate::Result<Option<CachedToken>> {
        let path = path.as_ref();
        let cache = TokenCache::at(path.to_path_buf());
        let cache_error = |reason: String, source| crate::Error::Cache {
            path: path.to_path_buf(),
            reason,
            source,
        };
        match cache.read_blocking() {
            Read::Missing => Ok(None),
            Read::Entry(entry) => Ok(Some(CachedToken {
                path: path.to_path_buf(),
                entry: *entry,
            })),
            Read::Broken(why) => Err(cache_error(why.to_string(), None)),
            Read::Unreadable(e) => Err(cache_error(e.to_string(), Some(e))),
        }
    }

    /// Removes the token from a cache file, under the cache lock: the file
    /// a symbolic link leads to is removed and the link is kept; the lock
    /// file is kept too (a process may hold it). `Ok(false)` when there was
    /// none.
    ///
    /// # Errors
    /// [`Error::Cache`](crate::Error::Cache) when it exists and cannot be removed.
    pub fn remove(path: impl AsRef<Path>) -> crate::Result<bool> {
        let cache = TokenCache::at(path.as_ref().to_path_buf());
        let _lock = cache.lock(REMOVE_LOCK_WAIT, &|w| log::warn!("{}", w.message));
        cache.remove().map_err(|e| crate::Error::Cache {
            path: cache.path.clone(),
            reason: e.to_string(),
            source: Some(e),
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The API base URL recorded with the token.
    pub fn api_base_url(&self) -> Option<&str> {
        self.entry.api_base_url.as_ref().map(|u| u.as_str())
    }

    /// The M2M client that made it: the token's `azp` claim, or what this
    /// crate recorded beside a token that does not say.
    pub fn client_id(&self) -> Option<&str> {
        self.entry
            .token
            .authorized_party()
            .or(self.entry.client_id.as_deref())
    }

    /// Whose token it is: the JWT's `sub` claim (`auth0|...` for a person,
    /// `<client id>@clients` for an M2M application).
    pub fn subject(&self) -> Option<&str> {
        self.entry.token.subject()
    }

    /// The SSO organization name the login used, when this crate wrote it.
    pub fn org(&self) -> Option<&str> {
        self.entry.org.as_deref()
    }

    /// Whether the Python package wrote the file last (it keeps none of
    /// this crate's keys).
    pub fn written_by_python(&self) -> bool {
        self.entry.python_written
    }

    /// Expiration, in real seconds since the Unix epoch (the JWT's `exp`
    /// when the token has one).
    pub fn expiration(&self) -> i64 {
        self.entry.token.expiration
    }

    /// Whether a login would use it now (an API base URL, not expired,
    /// counting the 60 s margin).
    pub fn is_usable(&self) -> bool {
        self.entry.usable_at(now_unix())
    }

    /// "expires in 23 h 41 min" or "expired".
    pub fn describe_expiry(&self) -> String {
        describe_expiry(self.entry.token.expiration, now_unix())
    }

    /// The token masked.
    pub fn masked_token(&self) -> String {
        self.entry.token.access_token.masked()
    }

    /// The token itself.
    pub fn access_token(&self) -> &AccessToken {
        &self.entry.token.access_token
    }
}
