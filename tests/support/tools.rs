//! The outside programs the tests drive: evcxr's Jupyter kernel, a Python
//! with `jupyter_client`, CARTO's `carto-auth` 0.2.0 and oauthlib, JupyterLab,
//! Node.js with playwright-core, Chromium and zbar's `zbarimg`. Each
//! is taken from its `CARTO_AUTH_*` variable (what `scripts/test` sets after
//! installing it), else from `PATH`. A missing one is a failure that says
//! how to get it, never a skip.

use std::path::PathBuf;
use std::process::Command;

/// What to run to install everything the tests need.
pub const SETUP: &str = "run scripts/test (it installs what is missing)";

fn from_var(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `evcxr_jupyter`: `$CARTO_AUTH_EVCXR`, else on `PATH`, else in
/// `$CARGO_HOME/bin`.
pub fn evcxr() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        PathBuf::from,
    );
    from_var("CARTO_AUTH_EVCXR")
        .or_else(|| find_in_path("evcxr_jupyter"))
        .or_else(|| Some(cargo_home.join("bin").join("evcxr_jupyter")).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("evcxr_jupyter is not installed: {SETUP}, or cargo install --locked evcxr_jupyter@0.22.0")
        })
}

/// The real path of a Python that imports `modules`: `$CARTO_AUTH_PYTHON`,
/// else scripts/test's virtual environment in `$CARTO_AUTH_CACHE`, else
/// `python3` on `PATH`. (The real path: a pyenv-style shim would not find
/// its versions under the tests' other HOME.)
pub fn python(modules: &[&str]) -> PathBuf {
    let python = from_var("CARTO_AUTH_PYTHON")
        .or_else(|| {
            from_var("CARTO_AUTH_CACHE")
                .map(|cache| cache.join("venv").join("bin").join("python"))
                .filter(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("python3"));
    let imports = modules.join(", ");
    let out = Command::new(&python)
        .args([
            "-c",
            &format!("import sys, {imports}; print(sys.executable)"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{} is not available ({e}): {SETUP}", python.display()));
    assert!(
        out.status.success(),
        "{} cannot import {imports}: {SETUP}, or pip install -r scripts/requirements-test.txt \
         into a virtual environment and set CARTO_AUTH_PYTHON to its python\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Chromium: `$CARTO_AUTH_CHROMIUM`, else `chromium` or `chromium-browser`
/// on `PATH`.
pub fn chromium() -> PathBuf {
    from_var("CARTO_AUTH_CHROMIUM")
        .or_else(|| find_in_path("chromium"))
        .or_else(|| find_in_path("chromium-browser"))
        .unwrap_or_else(|| {
            panic!("Chromium is not installed: {SETUP}, or apt-get install -y chromium")
        })
}

/// JupyterLab's `jupyter-lab`: `$CARTO_AUTH_JUPYTER_LAB`, else the one
/// beside `$CARTO_AUTH_PYTHON` (scripts/test installs it into its virtual
/// environment), else on `PATH`.
pub fn jupyter_lab() -> PathBuf {
    from_var("CARTO_AUTH_JUPYTER_LAB")
        .or_else(|| {
            from_var("CARTO_AUTH_PYTHON")
                .and_then(|p| Some(p.parent()?.join("jupyter-lab")))
                .filter(|p| p.is_file())
        })
        .or_else(|| find_in_path("jupyter-lab"))
        .unwrap_or_else(|| {
            panic!("JupyterLab is not installed: {SETUP}, or pip install the jupyterlab of scripts/requirements-test.txt")
        })
}

/// The `node_modules` directory that holds playwright-core:
/// `$CARTO_AUTH_NODE_MODULES`, else `$CARTO_AUTH_CACHE/node/node_modules`
/// (where scripts/test installs it).
pub fn node_modules() -> PathBuf {
    let dir = from_var("CARTO_AUTH_NODE_MODULES")
        .or_else(|| from_var("CARTO_AUTH_CACHE").map(|c| c.join("node").join("node_modules")))
        .unwrap_or_else(|| {
            panic!("playwright-core is not installed: {SETUP} (it sets CARTO_AUTH_NODE_MODULES)")
        });
    assert!(
        dir.join("playwright-core").join("package.json").is_file(),
        "{} holds no playwright-core: {SETUP}",
        dir.display()
    );
    dir
}

/// Node.js, on `PATH`.
pub fn node() -> PathBuf {
    find_in_path("node")
        .unwrap_or_else(|| panic!("node is not on PATH: install Node.js 20 or later, then {SETUP}"))
}

/// zbar's `zbarimg`: `$CARTO_AUTH_ZBARIMG`, else on `PATH`.
pub fn zbarimg() -> PathBuf {
    from_var("CARTO_AUTH_ZBARIMG")
        .or_else(|| find_in_path("zbarimg"))
        .unwrap_or_else(|| {
            panic!("zbarimg is not installed: {SETUP}, or apt-get install -y zbar-tools")
        })
}

/// The npm packages a map page loads (deck.gl, @deck.gl/carto, h3-js,
/// @loaders.gl/mvt, as pinned in tests/map/package.json), installed by
/// `scripts/test`: `$CARTO_AUTH_MAP_JS`, else
/// `$CARTO_AUTH_CACHE/map-js/node_modules`.
pub fn map_js() -> PathBuf {
    let dir = from_var("CARTO_AUTH_MAP_JS").or_else(|| {
        from_var("CARTO_AUTH_CACHE").map(|cache| cache.join("map-js").join("node_modules"))
    });
    match dir {
        Some(dir) if dir.join("deck.gl").join("dist.min.js").is_file() => dir,
        other => panic!(
            "the map's npm packages are not installed{}: {SETUP}, or `npm ci` in a copy of \
             tests/map/ and set CARTO_AUTH_MAP_JS to its node_modules",
            other
                .map(|d| format!(" in {}", d.display()))
                .unwrap_or_default()
        ),
    }
}
