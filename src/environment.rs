//! Where this code runs, as the environment tells: a notebook kernel, a
//! machine without a browser the callback could reach, a token handed over
//! by CI.

use crate::api_base_url::{ApiBaseUrl, Origin};
use crate::error::Result;

/// The API Access Token that overrides any stored login, as in CARTO's
/// own CLI.
pub(crate) const API_TOKEN_VAR: &str = "CARTO_API_TOKEN";
/// The API base URL that goes with it.
pub(crate) const API_BASE_URL_VAR: &str = "CARTO_API_BASE_URL";
/// `1` turns the device flow on (`0` off) where code does not say.
pub(crate) const DEVICE_FLOW_VAR: &str = "CARTO_AUTH_DEVICE_FLOW";
/// `0|1` overrides the guess about a local browser.
pub(crate) const OPEN_BROWSER_VAR: &str = "CARTO_AUTH_OPEN_BROWSER";

/// Whether an evcxr kernel runs this code.
pub(crate) fn in_evcxr() -> bool {
    std::env::var_os("EVCXR_IS_RUNTIME").is_some()
}

/// A variable's value when it is set to something other than blanks.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `CARTO_API_BASE_URL`, checked, when it is set. Every kind of session
/// takes it before the credentials file, the cache and discovery (only a
/// builder's own `.api_base_url(..)` comes first).
///
/// # Errors
/// [`Error::InvalidApiBaseUrl`](crate::Error::InvalidApiBaseUrl) naming the
/// variable.
pub(crate) fn api_base_url_var() -> Result<Option<ApiBaseUrl>> {
    var(API_BASE_URL_VAR)
        .map(|url| ApiBaseUrl::parse(&url, Origin::Variable(API_BASE_URL_VAR)))
        .transpose()
}

/// `1/true/yes/on` or `0/false/no/off`; `None` for anything else.
pub(crate) fn flag(value: Option<&str>) -> Option<bool> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Why a browser on this machine cannot take part in the login, if it
/// cannot: the Python package's Colab and Databricks cases, plus remote
/// kernels and sessions where a local browser could never reach the
/// callback. `CARTO_AUTH_OPEN_BROWSER=0|1` overrides the guess either way.
pub(crate) fn no_local_browser(
    var: impl Fn(&str) -> Option<String>,
    is_linux: bool,
) -> Option<String> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    match flag(var(OPEN_BROWSER_VAR).as_deref()) {
        Some(false) => return Some(format!("{OPEN_BROWSER_VAR}=0")),
        Some(true) => return None,
        None => {}
    }
    let reason = if set("COLAB_RELEASE_TAG") || set("COLAB_GPU") {
        "Google Colab"
    } else if set("DATABRICKS_RUNTIME_VERSION") {
        "Databricks"
    } else if var("CODESPACES").as_deref() == Some("true") {
        "GitHub Codespaces"
    } else if set("REMOTE_CONTAINERS") || set("VSCODE_REMOTE_CONTAINERS_SESSION") {
        "a VS Code dev container"
    } else if set("VSCODE_AGENT_FOLDER") {
        // Set by the VS Code server on the remote end of Remote-SSH, WSL
        // and tunnels.
        "a VS Code remote session"
    } else if set("JUPYTERHUB_API_URL") || set("JUPYTERHUB_USER") {
        "JupyterHub"
    } else if set("BINDER_SERVICE_HOST") {
        "Binder"
    } else if set("SSH_CONNECTION") {
        "SSH session"
    } else if is_linux && !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("BROWSER") {
        "no display"
    } else {
        return None;
    };
    Some(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn remote_environments_have_no_local_browser() {
        let display = ("DISPLAY", ":0");
        assert_eq!(no_local_browser(env(&[display]), true), None);
        assert_eq!(no_local_browser(env(&[]), false), None);
        for (var, value, reason) in [
            ("COLAB_RELEASE_TAG", "x", "Google Colab"),
            ("DATABRICKS_RUNTIME_VERSION", "x", "Databricks"),
            ("CODESPACES", "true", "GitHub Codespaces"),
            ("REMOTE_CONTAINERS", "true", "a VS Code dev container"),
            (
                "VSCODE_REMOTE_CONTAINERS_SESSION",
                "x",
                "a VS Code dev container",
            ),
            (
                "VSCODE_AGENT_FOLDER",
                "/home/u/.vscode-server",
                "a VS Code remote session",
            ),
            ("JUPYTERHUB_API_URL", "x", "JupyterHub"),
            ("JUPYTERHUB_USER", "x", "JupyterHub"),
            ("BINDER_SERVICE_HOST", "x", "Binder"),
            ("SSH_CONNECTION", "x", "SSH session"),
        ] {
            assert_eq!(
                no_local_browser(env(&[display, (var, value)]), true).as_deref(),
                Some(reason),
                "{var}"
            );
        }
        assert_eq!(
            no_local_browser(env(&[display, ("CODESPACES", "false")]), true),
            None
        );
        assert_eq!(
            no_local_browser(env(&[]), true).as_deref(),
            Some("no display")
        );
        assert_eq!(
            no_local_browser(env(&[("WAYLAND_DISPLAY", "w")]), true),
            None
        );
        assert_eq!(no_local_browser(env(&[("BROWSER", "firefox")]), true), None);
    }

    #[test]
    fn the_override_wins_either_way() {
        let on = (OPEN_BROWSER_VAR, "1");
        let off = (OPEN_BROWSER_VAR, "0");
        assert_eq!(
            no_local_browser(env(&[on, ("SSH_CONNECTION", "x")]), true),
            None
        );
        assert!(no_local_browser(env(&[off, ("DISPLAY", ":0")]), true).is_some());
    }

    #[test]
    fn flags_read_the_usual_spellings() {
        assert_eq!(flag(Some(" Yes ")), Some(true));
        assert_eq!(flag(Some("off")), Some(false));
        assert_eq!(flag(Some("maybe")), None);
        assert_eq!(flag(None), None);
    }
}
