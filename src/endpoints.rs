//! Where CARTO lives: every URL and fixed protocol value, as data.

use crate::error::{Error, Result};

/// CARTO's addresses and the public OAuth client.
///
/// [`Endpoints::carto`] has CARTO's production values;
/// [`Endpoints::from_env`] (what the builders use unless given another) lets
/// these environment variables override them, which is how the tests and the
/// notebooks in CI point the crate at a fake CARTO:
///
/// | variable | default |
/// | --- | --- |
/// | `CARTO_AUTH_URL` (base of `/authorize` and `/oauth/token`) | `https://auth.carto.com` |
/// | `CARTO_ACCOUNTS_URL` (base of `/accounts`) | `https://accounts.app.carto.com` |
/// | `CARTO_AUTH_REDIRECT_URI` (local callback; its port is listened on) | `http://localhost:10000/callback/` |
/// | `CARTO_AUTH_PASTE_REDIRECT_URI` | `https://app.carto.com/auth/token` |
///
/// ```
/// let mut endpoints = carto_auth::Endpoints::carto();
/// endpoints.auth_url = "http://127.0.0.1:8080".into();
/// assert_eq!(endpoints.token_url(), "http://127.0.0.1:8080/oauth/token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoints {
    /// Base URL of the OAuth server.
    pub auth_url: String,
    /// Base URL of the accounts service.
    pub accounts_url: String,
    /// Redirect URI of the local flow; only this one is registered at CARTO.
    pub redirect_uri: String,
    /// Redirect URI of the paste flow: CARTO's page that shows the code.
    pub paste_redirect_uri: String,
    /// Where the browser is sent after a good local callback.
    pub success_page: String,
    /// Where the browser is sent after a failed local callback.
    pub error_page: String,
    /// The public OAuth client id of CARTO's notebook clients.
    pub client_id: String,
    /// The audience of CARTO's API.
    pub audience: String,
    /// The authorization server's issuer, as its tokens' `iss` and a
    /// callback's `iss` parameter (RFC 9207) say it. Follows `auth_url`
    /// when `CARTO_AUTH_URL` moves it.
    pub issuer: String,
}

impl Endpoints {
    /// CARTO's production endpoints, ignoring the environment.
    pub fn carto() -> Self {
        Endpoints {
            auth_url: "https://auth.carto.com".into(),
            accounts_url: "https://accounts.app.carto.com".into(),
            redirect_uri: "http://localhost:10000/callback/".into(),
            paste_redirect_uri: "https://app.carto.com/auth/token".into(),
            success_page: "https://app.carto.com/auth/success".into(),
            error_page: "https://app.carto.com/auth/error".into(),
            client_id: "0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u".into(),
            audience: "carto-cloud-native-api".into(),
            // Auth0 issuers end with a slash.
            issuer: "https://auth.carto.com/".into(),
        }
    }

    /// CARTO's endpoints with the `CARTO_AUTH_*` / `CARTO_ACCOUNTS_URL`
    /// environment overrides applied.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] when a variable is set to something that is
    /// not an `http(s)` URL.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut endpoints = Self::carto();
        let set = |name: &str, field: &mut String, base: bool| -> Result<()> {
            if let Some(value) = var(name).filter(|v| !v.trim().is_empty()) {
                let value = value.trim();
                check_http_url(name, value)?;
                *field = if base {
                    value.trim_end_matches('/').to_string()
                } else {
                    value.to_string()
                };
            }
            Ok(())
        };
        set("CARTO_AUTH_URL", &mut endpoints.auth_url, true)?;
        endpoints.issuer = format!("{}/", endpoints.auth_url);
        set("CARTO_ACCOUNTS_URL", &mut endpoints.accounts_url, true)?;
        set(
            "CARTO_AUTH_REDIRECT_URI",
            &mut endpoints.redirect_uri,
            false,
        )?;
        set(
            "CARTO_AUTH_PASTE_REDIRECT_URI",
            &mut endpoints.paste_redirect_uri,
            false,
        )?;
        Ok(endpoints)
    }

    /// `<auth_url>/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.auth_url.trim_end_matches('/'))
    }

    /// `<auth_url>/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.auth_url.trim_end_matches('/'))
    }

    /// `<auth_url>/oauth/device/code`, the device authorization endpoint.
    pub fn device_authorization_url(&self) -> String {
        format!("{}/oauth/device/code", self.auth_url.trim_end_matches('/'))
    }

    /// `<accounts_url>/accounts`.
    pub fn accounts_endpoint(&self) -> String {
        format!("{}/accounts", self.accounts_url.trim_end_matches('/'))
    }

    /// The local callback's port and path, when the redirect URI is a plain
    /// `http` address on this machine (the only kind a local server can serve).
    pub(crate) fn local_callback(&self) -> Option<(u16, String)> {
        let url = url::Url::parse(&self.redirect_uri).ok()?;
        if url.scheme() != "http" || !url.host_str().is_some_and(is_loopback_host) {
            return None;
        }
        Some((url.port_or_known_default()?, url.path().to_string()))
    }
}

/// `config.yaml` of a tenant. A loopback tenant (a fake CARTO in tests) is
/// fetched over plain `http`, every other over `https`.
pub(crate) fn tenant_config_url(tenant_domain: &str) -> Result<String> {
    let domain = tenant_domain.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
    if domain.is_empty() || !domain.chars().all(allowed) {
        return Err(Error::InvalidSetting {
            what: "the tenant_domain sent by the accounts service".into(),
            value: domain.into(),
            reason: "a host name, optionally with a port, was expected; pass the API base URL \
                     with .api_base_url(..) to skip discovery",
        });
    }
    let host = match domain.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => domain,
    };
    let scheme = if is_loopback_host(host) {
        "http"
    } else {
        "https"
    };
    Ok(format!("{scheme}://{domain}/config.yaml"))
}

/// Issuers compare equal without their trailing slash.
pub(crate) fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

pub(crate) fn check_http_url(what: &str, value: &str) -> Result<()> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => Err(Error::InvalidSetting {
            what: what.to_string(),
            value: value.to_string(),
            reason: "an http:// or https:// URL was expected; unset it to use CARTO's default",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_carto_production_values() {
        let e = Endpoints::carto();
        assert_eq!(e.authorize_url(), "https://auth.carto.com/authorize");
        assert_eq!(e.token_url(), "https://auth.carto.com/oauth/token");
        assert_eq!(
            e.accounts_endpoint(),
            "https://accounts.app.carto.com/accounts"
        );
        assert_eq!(e.local_callback(), Some((10000, "/callback/".into())));
        assert_eq!(e.client_id, "0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u");
        assert_eq!(e.audience, "carto-cloud-native-api");
        assert_eq!(
            e.device_authorization_url(),
            "https://auth.carto.com/oauth/device/code"
        );
        assert!(same_issuer(&e.issuer, "https://auth.carto.com"));
        assert!(!same_issuer(&e.issuer, "https://evil.example/"));
    }

    #[test]
    fn environment_overrides_each_endpoint() {
        let e = Endpoints::from_vars(|name| match name {
            "CARTO_AUTH_URL" => Some("http://127.0.0.1:5000/".into()),
            "CARTO_ACCOUNTS_URL" => Some("http://127.0.0.1:5001".into()),
            "CARTO_AUTH_REDIRECT_URI" => Some("http://127.0.0.1:5002/cb".into()),
            "CARTO_AUTH_PASTE_REDIRECT_URI" => Some("http://127.0.0.1:5000/code".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(e.token_url(), "http://127.0.0.1:5000/oauth/token");
        assert!(same_issuer(&e.issuer, "http://127.0.0.1:5000/"));
        assert_eq!(e.accounts_endpoint(), "http://127.0.0.1:5001/accounts");
        assert_eq!(e.local_callback(), Some((5002, "/cb".into())));
        assert_eq!(e.paste_redirect_uri, "http://127.0.0.1:5000/code");
    }

    #[test]
    fn a_bad_environment_value_is_an_error_naming_the_variable() {
        let err =
            Endpoints::from_vars(|name| (name == "CARTO_AUTH_URL").then(|| "auth.carto".into()))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("CARTO_AUTH_URL") && err.contains("unset it"),
            "{err}"
        );
    }

    #[test]
    fn a_remote_redirect_uri_has_no_local_callback() {
        let mut e = Endpoints::carto();
        e.redirect_uri = "https://app.carto.com/auth/token".into();
        assert_eq!(e.local_callback(), None);
    }

    #[test]
    fn tenant_config_is_https_except_on_loopback() {
        assert_eq!(
            tenant_config_url("acme.app.carto.com").unwrap(),
            "https://acme.app.carto.com/config.yaml"
        );
        assert_eq!(
            tenant_config_url("localhost:8080").unwrap(),
            "http://localhost:8080/config.yaml"
        );
        assert_eq!(
            tenant_config_url("127.0.0.1:9").unwrap(),
            "http://127.0.0.1:9/config.yaml"
        );
        assert_eq!(
            tenant_config_url("[::1]:9").unwrap(),
            "http://[::1]:9/config.yaml"
        );
        assert_eq!(
            tenant_config_url("localhost").unwrap(),
            "http://localhost/config.yaml"
        );
        // A look-alike is not loopback.
        assert_eq!(
            tenant_config_url("localhost.evil.com").unwrap(),
            "https://localhost.evil.com/config.yaml"
        );
    }

    #[test]
    fn tenant_domain_with_a_path_or_credentials_is_refused() {
        assert!(tenant_config_url("evil.com/x?").is_err());
        assert!(tenant_config_url("user@evil.com").is_err());
        assert!(tenant_config_url("").is_err());
    }
}
