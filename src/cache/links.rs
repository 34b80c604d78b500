//! Cache paths that are symbolic links (dotfiles, a mounted secret): the
//! file is read and written through the link, so that the Python package,
//! which writes through it, sees the same file.

use std::fs;
use std::path::{Path, PathBuf};

use super::parent_dir;

/// Symbolic links followed at most (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// Follows symbolic links to the file they lead to, which need not exist
/// yet (a dangling link is written through too). A loop, or a chain longer
/// than [`MAX_LINKS`], is an error: replacing one of its links with a file
/// would silently change the user's set-up.
pub(super) fn resolve_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let is_link = fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return Ok(current);
        }
        let next = fs::read_link(&current)?;
        current = if next.is_absolute() {
            next
        } else {
            parent_dir(&current).join(next)
        };
    }
    Err(std::io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links, or a loop, lead from {}",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Duration;

    use super::super::TokenCache;
    use super::super::test_support::{collect, entry};

    #[cfg(unix)]
    #[test]
    fn a_symlinked_cache_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("dotfiles");
        fs::create_dir(&real_dir).unwrap();
        let target = real_dir.join("carto-token.json");
        let link = dir.path().join("token_oauth.json");
        std::os::unix::fs::symlink("dotfiles/carto-token.json", &link).unwrap();
        let cache = TokenCache::at(link.clone());
        let (warnings, warn) = collect();
        // Dangling at first: the target is created through the link.
        assert!(cache.save(&entry("first"), &warn));
        assert!(cache.save(&entry("second"), &warn));
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let text = fs::read_to_string(&target).unwrap();
        assert!(text.contains("\"second\""), "{text}");
        assert_eq!(
            cache.load(&warn).unwrap().token.access_token.secret(),
            "second"
        );
        // The lock sits beside the target; no temporary file is left.
        let _lock = cache.lock(Duration::from_secs(1), &warn).unwrap();
        assert!(real_dir.join("carto-token.json.lock").exists());
        let names: Vec<String> = fs::read_dir(&real_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(warnings.lock().unwrap().is_empty());
        // Removing the token keeps the link and the lock.
        assert!(cache.remove().unwrap());
        assert!(fs::symlink_metadata(&link).is_ok());
        assert!(!target.exists());
        assert!(real_dir.join("carto-token.json.lock").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_loop_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let cache = TokenCache::at(a);
        let (warnings, warn) = collect();
        assert!(cache.load(&warn).is_none());
        assert!(!cache.save(&entry("t"), &warn));
        assert_eq!(warnings.lock().unwrap().len(), 2);
    }
}
