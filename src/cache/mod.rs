//! The token cache: the Python package's files and format, written safely.
//!
//! Nothing here talks to the user: problems come back as [`Warning`]s for
//! the caller to pass on (to `log` and the session's prompt).

mod cached;
mod entry;
mod identity;
mod links;
#[cfg(test)]
mod test_support;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tz::TimeZone;

pub use cached::CachedToken;
pub(crate) use entry::{CacheEntry, parse_entry};

use crate::cancel::pause;
use crate::clock::local_zone;
use links::resolve_links;

/// How long a reader waits before reading a file again that it found
/// half-written: the Python package writes in place, without a lock.
const REREAD_PAUSE: Duration = Duration::from_millis(50);

/// Where the cache's warnings go (`Sync`: the futures holding it are sent
/// between threads).
pub(crate) type Warn<'a> = &'a (dyn Fn(Warning) + Sync);

/// Something the user should hear about the cache, once.
#[derive(Debug, Clone)]
pub(crate) struct Warning {
    /// Said once per process per key (a problem that would repeat on every
    /// call); `None` means say it each time it happens.
    pub(crate) once_key: Option<String>,
    pub(crate) message: String,
}

impl Warning {
    fn each_time(message: String) -> Warning {
        Warning {
            once_key: None,
            message,
        }
    }
}

/// What reading the file found.
enum Read {
    Missing,
    Entry(Box<CacheEntry>),
    /// Not a cache file, and why.
    Broken(&'static str),
    Unreadable(std::io::Error),
}

/// One cache file.
#[derive(Debug, Clone)]
pub(crate) struct TokenCache {
    /// The path as given; may be a symbolic link.
    path: PathBuf,
    /// `~/.carto-auth` is ours, so its permissions are ours to tighten; a
    /// directory the caller named, or one a link leads to, is not.
    own_dir: Option<PathBuf>,
    /// The zone of the Python package's clock in this file, looked up on
    /// first use (see [`TokenCache::zone`]).
    zone: OnceLock<TimeZone>,
}

impl TokenCache {
    /// `~/.carto-auth/token_<mode>.json`.
    pub(crate) fn default_path(mode: &str) -> Option<PathBuf> {
        default_dir().map(|dir| dir.join(format!("token_{mode}.json")))
    }

    /// The default file of `mode`; `Err` says why there is none.
    pub(crate) fn default_for(mode: &str) -> Result<TokenCache, Warning> {
        match Self::default_path(mode) {
            Some(path) => Ok(TokenCache {
                path,
                own_dir: default_dir(),
                zone: OnceLock::new(),
            }),
            None => Err(Warning {
                once_key: Some("no-home".into()),
                message: "the home directory is unknown, so the token is not cached; set HOME \
                          or pass .cache_filepath(..)"
                    .into(),
            }),
        }
    }

    pub(crate) fn at(path: PathBuf) -> TokenCache {
        TokenCache {
            path,
            own_dir: None,
            zone: OnceLock::new(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reading the local zone is a file read and parse that a cached
    /// `carto-auth token` need not pay: a JWT's own `exp` makes it unneeded
    /// for reading. So only when first needed.
    fn zone(&self) -> &TimeZone {
        self.zone.get_or_init(local_zone)
    }

    /// The file the path leads to: a cache path that is a symbolic link
    /// (dotfiles, a mounted secret) is read and written through, so that
    /// the Python package, which writes through it, sees the same file.
    pub(crate) fn target(&self) -> std::io::Result<PathBuf> {
        resolve_links(&self.path)
    }

    /// The cached entry, or `None` when there is none or it is unusable (a
    /// warning says why; the file is left alone). A file that looks
    /// half-written is read once more after a short pause.
    pub(crate) fn load(&self, warn: Warn<'_>) -> Option<CacheEntry> {
        self.loaded(self.read_blocking(), warn)
    }

    /// What the file holds, read once more after a short pause when it
    /// looks half-written; for blocking callers.
    fn read_blocking(&self) -> Read {
        self.read_again_after(|| std::thread::sleep(REREAD_PAUSE))
    }

    /// What the file holds, read once more after `pause` when it looks
    /// half-written (tests pass a pause in which the writer finishes).
    fn read_again_after(&self, pause: impl FnOnce()) -> Read {
        let read = self.read_once();
        if matches!(read, Read::Broken(_)) {
            pause();
            return self.read_once();
        }
        read
    }

    fn read_once(&self) -> Read {
        match fs::read_to_string(&self.path) {
            Ok(text) => match parse_entry(&text, || self.zone().clone()) {
                Ok(entry) => Read::Entry(Box::new(entry)),
                Err(why) => Read::Broken(why),
            },
            // A parent that is a file means there is no cache either; saving
            // will say that it cannot be written.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Read::Missing
            }
            Err(e) => Read::Unreadable(e),
        }
    }

    fn loaded(&self, read: Read, warn: Warn<'_>) -> Option<CacheEntry> {
        match read {
            Read::Entry(entry) => Some(*entry),
            Read::Missing => None,
            Read::Broken(why) => {
                warn(Warning::each_time(format!(
                    "ignoring the token cache {} because {why}; it will be replaced after the next login",
                    self.path.display()
                )));
                None
            }
            Read::Unreadable(e) => {
                warn(Warning::each_time(format!(
                    "ignoring the token cache {}: {e}",
                    self.path.display()
                )));
                None
            }
        }
    }

    /// Writes the entry atomically: a private temporary file beside the
    /// target, flushed, then renamed over it. A reader sees the old file or
    /// the new one, never a part. Failure is a warning, not an error: the
    /// login itself worked.
    pub(crate) fn save(&self, entry: &CacheEntry, warn: Warn<'_>) -> bool {
        match self
            .target()
            .and_then(|target| self.try_save(&target, entry, warn).map(|()| target))
        {
            Ok(target) => {
                log::debug!("token cache written to {}", target.display());
                true
            }
            Err(e) => {
                warn(Warning::each_time(format!(
                    "could not write the token cache {}: {e}; the login works but will not be remembered",
                    self.path.display()
                )));
                false
            }
        }
    }

    fn try_save(&self, target: &Path, entry: &CacheEntry, warn: Warn<'_>) -> std::io::Result<()> {
        let dir = parent_dir(target);
        self.ensure_dir(&dir, warn)?;
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("token");
        let nonce = crate::oauth::random_urlsafe(6).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.{nonce}.tmp", std::process::id()));
        let result = (|| {
            let mut file = private_options().write(true).create_new(true).open(&tmp)?;
            file.write_all(entry.to_json(self.zone()).as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Creates the directory (0700) when missing; tightens ours to 0700. A
    /// directory whose mode cannot be changed (another owner, a read-only
    /// mount of a secret) is still used: that is a warning, not a lost cache.
    fn ensure_dir(&self, dir: &Path, warn: Warn<'_>) -> std::io::Result<()> {
        if !dir.exists() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        #[cfg(unix)]
        if self.own_dir.as_deref() == Some(dir) {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
            if mode != 0o700
                && let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            {
                warn(Warning {
                    once_key: Some(format!("chmod:{}", dir.display())),
                    message: format!(
                        "could not make {} private (mode {mode:o}, {e}); the token cache \
                         is still used, but other users may be able to list it",
                        dir.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Removes the token (the file a link leads to; the link and the lock
    /// file stay). `Ok(false)` when there was none.
    pub(crate) fn remove(&self) -> std::io::Result<bool> {
        match fs::remove_file(self.target()?) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `<target>.lock`. It is never removed: a process may hold it, and a
    /// new file would let a second holder in.
    fn lock_path(&self) -> std::io::Result<PathBuf> {
        let mut lock = self.target()?.into_os_string();
        lock.push(".lock");
        Ok(PathBuf::from(lock))
    }

    fn open_lock(&self, warn: Warn<'_>) -> Option<File> {
        let path = match self.lock_path() {
            Ok(path) => path,
            Err(e) => {
                log::debug!("no cache lock: {e}");
                return None;
            }
        };
        if let Err(e) = self.ensure_dir(&parent_dir(&path), warn) {
            log::debug!("no cache lock: {e}");
            return None;
        }
        match private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(f) => Some(f),
            Err(e) => {
                log::debug!("no cache lock: {e}");
                None
            }
        }
    }

    /// An exclusive lock between processes (and threads) for
    /// read-refresh-write, on `<target>.lock` beside the cache so that the
    /// cache itself can be replaced by rename. The OS drops the lock when
    /// its holder exits, killed or not. `None` (go on without) when the
    /// lock file cannot be made, locking is unsupported, or the wait runs
    /// out.
    pub(crate) fn lock(&self, wait: Duration, warn: Warn<'_>) -> Option<CacheLock> {
        let file = self.open_lock(warn)?;
        let deadline = deadline_after(wait);
        let mut waited = false;
        loop {
            match self.try_lock(&file, deadline, &mut waited, warn) {
                Attempt::Locked => return Some(CacheLock { _file: file }),
                Attempt::GiveUp => return None,
                // A cancelled call stops waiting; it writes nothing then.
                Attempt::Wait => pause(Duration::from_millis(10), None).ok()?,
            }
        }
    }

    /// One attempt; `waited` says whether this wait was logged already (a
    /// process stuck behind another says so once).
    fn try_lock(
        &self,
        file: &File,
        deadline: Option<Instant>,
        waited: &mut bool,
        warn: Warn<'_>,
    ) -> Attempt {
        match file.try_lock() {
            Ok(()) => Attempt::Locked,
            Err(fs::TryLockError::WouldBlock) if deadline.is_none_or(|d| Instant::now() < d) => {
                if !std::mem::replace(waited, true) {
                    log::debug!(
                        "the token cache {} is locked by another holder; waiting for it",
                        self.path.display()
                    );
                }
                Attempt::Wait
            }
            Err(fs::TryLockError::WouldBlock) => {
                warn(Warning::each_time(format!(
                    "the token cache {} stayed locked by another process; going on without the lock",
                    self.path.display()
                )));
                Attempt::GiveUp
            }
            Err(fs::TryLockError::Error(e)) => {
                // Unsupported on this file system, typically: it would say
                // so on every call, so once per process is enough.
                warn(Warning {
                    once_key: Some(format!("lock:{}", self.path.display())),
                    message: format!(
                        "could not lock the token cache {} ({e}); going on without the lock",
                        self.path.display()
                    ),
                });
                Attempt::GiveUp
            }
        }
    }
}

enum Attempt {
    Locked,
    Wait,
    GiveUp,
}

/// Held while the cache is read, refreshed and written.
pub(crate) struct CacheLock {
    _file: File,
}

/// `wait` from now; `None` when that is beyond what `Instant` can hold
/// (`Duration::MAX`): no deadline.
fn deadline_after(wait: Duration) -> Option<Instant> {
    Instant::now().checked_add(wait)
}

fn default_dir() -> Option<PathBuf> {
    dirs::home_dir().map(|home| home.join(".carto-auth"))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(test)]
mod tests {
    use super::test_support::{collect, entry};
    use super::*;

    #[test]
    fn a_half_written_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        let cache = TokenCache::at(path.clone());
        let whole = entry("whole").to_json(&TimeZone::utc());
        let (warnings, warn) = collect();
        // The writer finishes while the reader pauses.
        fs::write(&path, "{\"api_base_url\": \"https://api\", \"acc").unwrap();
        let mut paused = 0;
        let read = cache.read_again_after(|| {
            paused += 1;
            fs::write(&path, &whole).unwrap();
        });
        let loaded = cache.loaded(read, &warn);
        assert_eq!(paused, 1);
        assert_eq!(loaded.unwrap().token.access_token.secret(), "whole");
        assert!(warnings.lock().unwrap().is_empty());
        // A whole file is read once, without a pause.
        let read = cache.read_again_after(|| panic!("paused on a whole file"));
        assert!(cache.loaded(read, &warn).is_some());
        // Still broken after the pause: ignored, with one warning.
        fs::write(&path, "{").unwrap();
        let read = cache.read_again_after(|| paused += 1);
        assert!(cache.loaded(read, &warn).is_none());
        assert_eq!(paused, 2);
        let said = warnings.lock().unwrap();
        assert_eq!(said.len(), 1);
        assert!(said[0].message.contains("not valid JSON"), "{:?}", said[0]);
    }

    #[test]
    fn a_cache_file_of_any_bytes_is_loaded_or_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::at(dir.path().join("token.json"));
        let (_, warn) = collect();
        for bytes in [&b""[..], b"\xff\xfe", b"{}", b"null", b"[]"] {
            fs::write(cache.path(), bytes).unwrap();
            assert!(cache.load(&warn).is_none());
        }
    }
}
