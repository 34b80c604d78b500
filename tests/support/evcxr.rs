//! What every test that runs an evcxr kernel needs, whoever starts it (the
//! Jupyter client of tests/notebooks.rs, the JupyterLab server of
//! tests/jupyterlab.rs): the kernel's build cache, kept between runs and
//! used by one kernel at a time, and the kernel's clean environment.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Waiting for another test run's kernel to release the build directory.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Where the kernel builds: kept between cells, tests and runs.
///
/// Not under the directory that holds the Rust toolchain (with rustup, the
/// home directory): cargo writes each cell's library with a RUNPATH to
/// libstd computed for `target/<triple>/debug/deps/`, evcxr loads the copy
/// one level up in `debug/`, and the relative path then misses the
/// toolchain by one `..`, so every cell fails with "dlopen failed". From a
/// directory with nothing in common with the toolchain's path the path
/// climbs to `/`, where a surplus `..` is harmless.
pub fn build_cache() -> PathBuf {
    let dir = std::env::var_os("CARTO_AUTH_EVCXR_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || std::env::temp_dir().join("carto-auth-evcxr-cache"),
            PathBuf::from,
        );
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let dir = dir.canonicalize().unwrap_or(dir);
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = sysroot {
        let top = |p: &Path| p.components().nth(1).map(|c| c.as_os_str().to_owned());
        assert!(
            top(&dir) != top(&sysroot),
            "the evcxr build cache {} shares its top directory with the Rust toolchain {}: \
             evcxr's cells would fail with \"dlopen failed\" (see build_cache()). \
             Set CARTO_AUTH_EVCXR_CACHE to a directory elsewhere, e.g. under /var/tmp",
            dir.display(),
            sysroot.display()
        );
    }
    dir
}

/// One kernel at a time uses the build directory, across threads and
/// processes (two `cargo test` runs in one checkout); it is released when
/// the returned file is dropped.
pub fn lock_build_cache() -> File {
    let path = build_cache().join("lock");
    let file =
        File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) => {
                assert!(
                    Instant::now() < deadline,
                    "{} stayed locked for {LOCK_TIMEOUT:?}",
                    path.display()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::Error(e)) => panic!("cannot lock {}: {e}", path.display()),
        }
    }
}

/// The environment of a process that starts an evcxr kernel (the kernel
/// inherits it): a fresh HOME (the token cache starts empty and the user's
/// evcxr config is not read), the toolchain and registry of this machine,
/// the build cache, and `env` (the fake's variables, say). Everything else
/// of the test's environment is cleared.
pub fn kernel_env(cmd: &mut Command, home: &Path, env: &[(String, String)]) {
    let user_home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let cargo_home =
        std::env::var_os("CARGO_HOME").map_or_else(|| user_home.join(".cargo"), PathBuf::from);
    let rustup_home =
        std::env::var_os("RUSTUP_HOME").map_or_else(|| user_home.join(".rustup"), PathBuf::from);
    cmd.env_clear()
        .env("HOME", home)
        .env("TMPDIR", home)
        .env("RUSTUP_HOME", rustup_home)
        .env("CARGO_HOME", cargo_home)
        .env("EVCXR_TMPDIR", build_cache().join("kernel"));
    // What cargo inside the kernel needs to reach the registry here.
    for (key, value) in std::env::vars() {
        let keep = matches!(
            key.as_str(),
            "PATH" | "LANG" | "LC_ALL" | "RUSTUP_TOOLCHAIN"
        ) || key.to_ascii_uppercase().ends_with("_PROXY")
            || [
                "CARGO_HTTP_",
                "CARGO_NET_",
                "CARGO_REGISTRIES_",
                "CARGO_REGISTRY_",
                "SSL_CERT_",
            ]
            .iter()
            .any(|p| key.starts_with(p));
        if keep {
            cmd.env(key, value);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
}
