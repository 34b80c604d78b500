//! The token cache: the Python package's files and format, written safely.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::secret::AccessToken;
use crate::token::Token;

/// A cached session as stored on disk.
#[derive(Debug, Clone)]
pub(crate) struct CacheEntry {
    pub(crate) api_base_url: Option<String>,
    pub(crate) token: Token,
    /// Ours only: the M2M client that made the token. Absent in files the
    /// Python package wrote.
    pub(crate) client_id: Option<String>,
}

impl CacheEntry {
    /// Usable at `now`: has an API base URL and is not expired.
    pub(crate) fn usable_at(&self, now: i64) -> bool {
        self.api_base_url.as_deref().is_some_and(|u| !u.is_empty())
            && !self.token.is_expired_at(now)
    }

    pub(crate) fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert(
            "api_base_url".into(),
            self.api_base_url.clone().map_or(Value::Null, Value::String),
        );
        map.insert(
            "access_token".into(),
            Value::String(self.token.access_token.secret().into()),
        );
        map.insert("expiration".into(), Value::from(self.token.expiration));
        if let Some(id) = &self.client_id {
            map.insert("client_id".into(), Value::String(id.clone()));
        }
        Value::Object(map).to_string()
    }
}

/// Parses a cache file's text. `Err` says why it does not count as a cache.
pub(crate) fn parse_entry(text: &str) -> Result<CacheEntry, &'static str> {
    if text.trim().is_empty() {
        return Err("it is empty");
    }
    let value: Value = serde_json::from_str(text).map_err(|_| "it is not valid JSON")?;
    let map = value.as_object().ok_or("it is not a JSON object")?;
    // The Python package's rule: all three keys present, or no cache.
    let (Some(url), Some(token), Some(expiration)) = (
        map.get("api_base_url"),
        map.get("access_token"),
        map.get("expiration"),
    ) else {
        return Err("it lacks api_base_url, access_token or expiration");
    };
    let api_base_url = match url {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        _ => return Err("its api_base_url is not a string"),
    };
    let access_token = token
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("its access_token is not a string")?;
    let expiration = expiration
        .as_i64()
        .or_else(|| {
            expiration
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f as i64)
        })
        .ok_or("its expiration is not a number")?;
    let client_id = map
        .get("client_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(CacheEntry {
        api_base_url,
        token: Token {
            access_token: AccessToken::new(access_token),
            expiration,
        },
        client_id,
    })
}

/// One cache file.
#[derive(Debug, Clone)]
pub(crate) struct TokenCache {
    path: PathBuf,
    /// `~/.carto-auth` is ours, so its permissions are ours to tighten; a
    /// directory the caller named is not.
    own_dir: bool,
}

impl TokenCache {
    /// `~/.carto-auth/token_<mode>.json`.
    pub(crate) fn default_path(mode: &str) -> Option<PathBuf> {
        dirs::home_dir().map(|home| home.join(".carto-auth").join(format!("token_{mode}.json")))
    }

    /// The default file of `mode`, or `None` (with a warning) when there is
    /// no home directory.
    pub(crate) fn default_for(mode: &str) -> Option<TokenCache> {
        match Self::default_path(mode) {
            Some(path) => Some(TokenCache {
                path,
                own_dir: true,
            }),
            None => {
                crate::prompt::warn(
                    "the home directory is unknown, so the token is not cached; set HOME or pass .cache_filepath(..)",
                );
                None
            }
        }
    }

    pub(crate) fn at(path: PathBuf) -> TokenCache {
        TokenCache {
            path,
            own_dir: false,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The cached entry, or `None` when there is none or it is unreadable;
    /// an unreadable file is reported and left alone.
    pub(crate) fn load(&self) -> Option<CacheEntry> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            // A parent that is a file means there is no cache either; saving
            // will say once that it cannot be written.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return None;
            }
            Err(e) => {
                crate::prompt::warn(&format!(
                    "ignoring the token cache {}: {e}",
                    self.path.display()
                ));
                return None;
            }
        };
        match parse_entry(&text) {
            Ok(entry) => Some(entry),
            Err(why) => {
                crate::prompt::warn(&format!(
                    "ignoring the token cache {} because {why}; it will be replaced after the next login",
                    self.path.display()
                ));
                None
            }
        }
    }

    /// Writes the entry atomically: a private temporary file in the same
    /// directory, flushed, then renamed over the old one. A reader sees the
    /// old file or the new one, never a part. Failure is reported, not fatal:
    /// the login itself worked.
    pub(crate) fn save(&self, entry: &CacheEntry) -> bool {
        match self.try_save(entry) {
            Ok(()) => {
                log::debug!("token cache written to {}", self.path.display());
                true
            }
            Err(e) => {
                crate::prompt::warn(&format!(
                    "could not write the token cache {}: {e}; the login works but will not be remembered",
                    self.path.display()
                ));
                false
            }
        }
    }

    fn try_save(&self, entry: &CacheEntry) -> std::io::Result<()> {
        let dir = self.dir();
        self.ensure_dir(&dir)?;
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("token");
        let nonce = crate::oauth::random_urlsafe(6).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.{nonce}.tmp", std::process::id()));
        let result = (|| {
            let mut file = private_options().write(true).create_new(true).open(&tmp)?;
            file.write_all(entry.to_json().as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn ensure_dir(&self, dir: &Path) -> std::io::Result<()> {
        if !dir.exists() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        #[cfg(unix)]
        if self.own_dir {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
            if mode != 0o700 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(())
    }

    /// Removes the file; `Ok(false)` when there was none.
    pub(crate) fn remove(&self) -> std::io::Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// An exclusive lock between processes (and threads) for
    /// read-refresh-write, on `<file>.lock` beside the cache so that the
    /// cache itself can be replaced by rename. The OS drops the lock when its
    /// holder exits, killed or not. `None` (go on without) when the lock
    /// file cannot be made or the wait runs out.
    pub(crate) async fn lock(&self, wait: Duration) -> Option<CacheLock> {
        let dir = self.dir();
        if let Err(e) = self.ensure_dir(&dir) {
            log::debug!("no cache lock: {e}");
            return None;
        }
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let file = match private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
        {
            Ok(f) => f,
            Err(e) => {
                log::debug!("no cache lock: {e}");
                return None;
            }
        };
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(CacheLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    // Async: a holder may be another task on this very thread.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    crate::prompt::warn(&format!(
                        "could not lock the token cache {} ({e}); going on without the lock",
                        self.path.display()
                    ));
                    return None;
                }
            }
        }
    }
}

/// A cache file read without logging in: what `carto-auth status` shows and
/// `carto-auth logout` removes.
///
/// ```no_run
/// use carto_auth::{CachedToken, Mode};
/// let path = CachedToken::default_path(Mode::OAuth).expect("a home directory");
/// match CachedToken::read(&path)? {
///     Some(t) => println!("{} until {}", t.masked_token(), t.expiration()),
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
    /// `~/.carto-auth/token_oauth.json` or `token_m2m.json`.
    pub fn default_path(mode: crate::Mode) -> Option<PathBuf> {
        TokenCache::default_path(match mode {
            crate::Mode::OAuth => "oauth",
            crate::Mode::M2m => "m2m",
        })
    }

    /// Reads a cache file. `Ok(None)` when there is none.
    ///
    /// # Errors
    /// [`Error::Cache`](crate::Error::Cache) when the file cannot be read or
    /// is not a cache (the login would ignore it and replace it).
    pub fn read(path: impl AsRef<Path>) -> crate::Result<Option<CachedToken>> {
        let path = path.as_ref();
        let cache_error = |reason: String| crate::Error::Cache {
            path: path.to_path_buf(),
            reason,
        };
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cache_error(e.to_string())),
        };
        let entry = parse_entry(&text).map_err(|why| cache_error(why.to_string()))?;
        Ok(Some(CachedToken {
            path: path.to_path_buf(),
            entry,
        }))
    }

    /// Removes a cache file (and its lock file). `Ok(false)` when there was none.
    ///
    /// # Errors
    /// [`Error::Cache`](crate::Error::Cache) when it exists and cannot be removed.
    pub fn remove(path: impl AsRef<Path>) -> crate::Result<bool> {
        let cache = TokenCache::at(path.as_ref().to_path_buf());
        let mut lock = cache.path.clone().into_os_string();
        lock.push(".lock");
        let _ = fs::remove_file(lock);
        cache.remove().map_err(|e| crate::Error::Cache {
            path: cache.path.clone(),
            reason: e.to_string(),
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The API base URL recorded with the token.
    pub fn api_base_url(&self) -> Option<&str> {
        self.entry.api_base_url.as_deref()
    }

    /// The M2M client that made it (files written by this crate only).
    pub fn client_id(&self) -> Option<&str> {
        self.entry.client_id.as_deref()
    }

    /// Expiration, in seconds since the Unix epoch.
    pub fn expiration(&self) -> i64 {
        self.entry.token.expiration
    }

    /// Whether a login would use it now (an API base URL, not expired,
    /// counting the 60 s margin).
    pub fn is_usable(&self) -> bool {
        self.entry.usable_at(crate::token::now_unix())
    }

    /// "expires in 23 h 41 min" or "expired".
    pub fn describe_expiry(&self) -> String {
        crate::token::describe_expiry(self.entry.token.expiration, crate::token::now_unix())
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

/// Held while the cache is read, refreshed and written.
pub(crate) struct CacheLock {
    _file: File,
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(expiration: i64) -> CacheEntry {
        CacheEntry {
            api_base_url: Some("https://gcp-us-east1.api.carto.com".into()),
            token: Token {
                access_token: AccessToken::new("tok"),
                expiration,
            },
            client_id: None,
        }
    }

    #[test]
    fn python_written_file_parses() {
        let e = parse_entry(
            r#"{"api_base_url": "https://x", "access_token": "t", "expiration": 1700000000}"#,
        )
        .unwrap();
        assert_eq!(e.api_base_url.as_deref(), Some("https://x"));
        assert_eq!(e.token.access_token.secret(), "t");
        assert_eq!(e.token.expiration, 1_700_000_000);
        assert_eq!(e.client_id, None);
    }

    #[test]
    fn bad_files_count_as_no_cache_with_a_reason() {
        for (text, why) in [
            ("", "empty"),
            ("{\"api_base_url\": \"x\", \"access", "not valid JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"api_base_url": "x", "access_token": "t"}"#, "lacks"),
            (
                r#"{"api_base_url": 3, "access_token": "t", "expiration": 1}"#,
                "api_base_url",
            ),
            (
                r#"{"api_base_url": "x", "access_token": "t", "expiration": "soon"}"#,
                "expiration",
            ),
        ] {
            let err = parse_entry(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn null_api_base_url_is_read_but_not_usable() {
        let e = parse_entry(
            r#"{"api_base_url": null, "access_token": "t", "expiration": 99999999999}"#,
        )
        .unwrap();
        assert!(!e.usable_at(0));
        assert!(entry(10_000).usable_at(10_000 - 61));
        assert!(!entry(10_000).usable_at(10_000 - 60));
    }

    #[test]
    fn round_trip_keeps_python_keys_and_ours() {
        let mut e = entry(42);
        e.client_id = Some("cid".into());
        let json: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(json["api_base_url"], "https://gcp-us-east1.api.carto.com");
        assert_eq!(json["access_token"], "tok");
        assert_eq!(json["expiration"], 42);
        assert_eq!(json["client_id"], "cid");
        assert_eq!(json.as_object().unwrap().len(), 4);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// The fuzz seeds (fuzz/seeds/cache_file) and shapes the fuzzer kept:
    /// numbers beyond i64 saturate (and survive a rewrite), floats are read,
    /// overflow and lone surrogates are refused, never a panic.
    #[test]
    fn fuzz_seeds_and_findings_stay_fixed() {
        let exp = |e: &str| {
            parse_entry(&format!(
                r#"{{"api_base_url": "x", "access_token": "t", "expiration": {e}}}"#
            ))
            .map(|e| e.token.expiration)
        };
        assert_eq!(exp("1.7e9"), Ok(1_700_000_000));
        assert_eq!(exp("18446744073709551615"), Ok(i64::MAX));
        assert_eq!(exp("-1e300"), Ok(i64::MIN));
        assert!(exp("-1e400").is_err());
        assert!(exp("1e99999").is_err());
        let max = parse_entry(
            r#"{"api_base_url": "x", "access_token": "t", "expiration": 18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(
            parse_entry(&max.to_json()).unwrap().token.expiration,
            i64::MAX
        );
        let deep = "{\"a\":".repeat(10_000);
        for text in [
            "\u{30c5}",
            "   ",
            "\"_j]1\\udac81",
            "{\"api_base_url\": \"\\udac8\", \"access_token\": \"t\", \"expiration\": 1}",
            deep.as_str(),
        ] {
            assert!(parse_entry(text).is_err(), "{text:?}");
        }
        let dup = parse_entry(
            r#"{"api_base_url": "x", "access_token": "a", "access_token": "b", "expiration": 1}"#,
        )
        .unwrap();
        assert_eq!(dup.token.access_token.secret(), "b");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("api_base_url".to_string()),
                        Just("access_token".to_string()),
                        Just("expiration".to_string()),
                        Just("client_id".to_string()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn entry() -> impl Strategy<Value = CacheEntry> {
        (
            proptest::option::of("\\PC{0,30}"),
            "\\PC{1,60}",
            any::<i64>(),
            proptest::option::of("\\PC{0,20}"),
        )
            .prop_map(|(api_base_url, token, expiration, client_id)| CacheEntry {
                api_base_url,
                token: Token {
                    access_token: AccessToken::new(token),
                    expiration,
                },
                client_id,
            })
    }

    proptest! {
        #[test]
        fn any_text_is_loaded_or_refused_without_panic(text in any::<String>()) {
            let _ = parse_entry(&text);
        }

        #[test]
        fn any_json_is_loaded_or_refused_without_panic(value in json_value()) {
            if let Ok(e) = parse_entry(&value.to_string()) {
                // Accepted only with the three keys, as the Python package.
                let map = value.as_object().unwrap();
                prop_assert!(map.contains_key("api_base_url") && map.contains_key("access_token") && map.contains_key("expiration"));
                prop_assert!(!e.token.access_token.secret().is_empty());
            }
        }

        #[test]
        fn what_is_saved_loads_back(e in entry()) {
            let back = parse_entry(&e.to_json()).unwrap();
            prop_assert_eq!(back.api_base_url, e.api_base_url);
            prop_assert_eq!(back.token.access_token.secret(), e.token.access_token.secret());
            prop_assert_eq!(back.token.expiration, e.token.expiration);
            prop_assert_eq!(back.client_id, e.client_id);
        }

        #[test]
        fn python_formatting_loads_too(url in "https://[a-z]{1,10}\\.api\\.carto\\.com", token in "[A-Za-z0-9._-]{1,80}", expiration in 0i64..=99_999_999_999) {
            // json.dump's separators, keys in the Python package's order.
            let text = format!(r#"{{"api_base_url": "{url}", "access_token": "{token}", "expiration": {expiration}}}"#);
            let e = parse_entry(&text).unwrap();
            prop_assert_eq!(e.api_base_url.as_deref(), Some(url.as_str()));
            prop_assert_eq!(e.token.access_token.secret(), token.as_str());
            prop_assert_eq!(e.token.expiration, expiration);
        }

        #[test]
        fn a_cache_file_of_any_bytes_is_loaded_or_ignored(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let dir = tempfile::tempdir().unwrap();
            let cache = TokenCache::at(dir.path().join("token.json"));
            fs::write(cache.path(), &bytes).unwrap();
            let loaded = cache.load();
            let parsed = std::str::from_utf8(&bytes).ok().and_then(|t| parse_entry(t).ok());
            prop_assert_eq!(loaded.is_some(), parsed.is_some());
        }
    }
}
