//! The one error type of the crate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Which CARTO service a request went to, so that an error can name it and
/// say what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Service {
    /// The OAuth token endpoint (`/oauth/token`), for both grants.
    Token,
    /// The accounts service that knows the user's tenant.
    Accounts,
    /// The tenant's `config.yaml`, which names the API base URL.
    TenantConfig,
    /// The CARTO Data Warehouse token endpoint of the API.
    CartoDw,
}

impl Service {
    fn hint(self) -> &'static str {
        match self {
            Service::Token => {
                "for M2M check client_id and client_secret in the credentials file; \
                 for a browser login, log in again (codes are single-use and short-lived)"
            }
            Service::Accounts => {
                "log in again; if it persists, skip discovery by passing your API base URL \
                 with .api_base_url(..) (CARTO Workspace > Developers shows it)"
            }
            Service::TenantConfig => {
                "skip discovery by passing your API base URL with .api_base_url(..) \
                 (CARTO Workspace > Developers shows it)"
            }
            Service::CartoDw => {
                "make sure the API base URL is the one of your account \
                 (CARTO Workspace > Developers) and that the account has the CARTO Data Warehouse"
            }
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Token => "token endpoint",
            Service::Accounts => "accounts service",
            Service::TenantConfig => "tenant configuration",
            Service::CartoDw => "CARTO Data Warehouse token endpoint",
        })
    }
}

/// Everything that can go wrong, each message ending with what to do.
///
/// Messages never contain a token, a client secret, a code verifier or an
/// authorization code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request did not get an answer (DNS, refused, TLS, timeout).
    #[error(
        "could not reach the CARTO {service} at {url}: {message}. \
         Check the network connection and proxy settings (HTTPS_PROXY), then try again"
    )]
    Network {
        /// The service that was called.
        service: Service,
        /// The URL, without its query.
        url: String,
        /// What failed, from the HTTP client.
        message: String,
    },

    /// The service answered with an HTTP error status.
    #[error(
        "the CARTO {service} at {url} answered HTTP {status}{}: {}",
        server_words(.error, .error_description),
        service.hint()
    )]
    Status {
        /// The service that was called.
        service: Service,
        /// The URL, without its query.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The `error` field of the answer, if it had one.
        error: Option<String>,
        /// The `error_description` field of the answer, if it had one.
        error_description: Option<String>,
    },

    /// The service answered 2xx with something the protocol does not allow.
    #[error(
        "the CARTO {service} at {url} answered with {got}, not {expected}: {}",
        service.hint()
    )]
    InvalidResponse {
        /// The service that was called.
        service: Service,
        /// The URL, without its query.
        url: String,
        /// What the protocol says the answer is.
        expected: &'static str,
        /// What came instead (its shape, never its secret values).
        got: String,
    },

    /// CARTO's login page sent back an `error` instead of a code.
    #[error(
        "CARTO did not authorize the login: {error}{}. Log in again; if it keeps failing, \
         check the SSO organization name and that your user can sign in to CARTO",
        .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    Authorization {
        /// The OAuth `error` code, such as `access_denied`.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },

    /// The login prompt got an empty answer.
    #[error("no answer was given at the login prompt. {hint}")]
    NoAnswer {
        /// What to do instead, which depends on where the prompt ran.
        hint: &'static str,
    },

    /// What was pasted holds no authorization code.
    #[error(
        "no authorization code in what was pasted ({what}). Paste the whole address of \
         the page CARTO showed after you signed in, or the code on it"
    )]
    NoCode {
        /// What was wrong with it, never the pasted text itself.
        what: &'static str,
    },

    /// No browser came back to the local callback in time.
    #[error(
        "no browser came back to {redirect_uri} within {} s. Run the login again and finish \
         it in the browser, or use .open_browser(false) to paste the code instead",
        .waited.as_secs()
    )]
    LoginTimeout {
        /// The callback address that was listened on.
        redirect_uri: String,
        /// How long it waited.
        waited: Duration,
    },

    /// A pending two-step login was used after it had finished or failed.
    #[error("this login was already {state}. Start a new one with CartoAuth::oauth().begin()")]
    LoginFinished {
        /// `"completed"`, `"cancelled"` or `"failed"`.
        state: &'static str,
    },

    /// The M2M credentials file cannot be read.
    #[error(
        "cannot read the CARTO credentials file {}: {source}. Check the path; the file is \
         downloaded from CARTO Workspace > Developers > Credentials",
        .path.display()
    )]
    CredentialsRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// The M2M credentials file is not a JSON object.
    #[error(
        "the CARTO credentials file {} is not a JSON object ({message}). Download it again \
         from CARTO Workspace > Developers > Credentials",
        .path.display()
    )]
    CredentialsFormat {
        /// The file.
        path: PathBuf,
        /// Where the JSON breaks (never its content).
        message: String,
    },

    /// The M2M credentials file lacks a key.
    #[error(
        "the CARTO credentials file {} has no \"{key}\". It needs api_base_url, client_id \
         and client_secret; download it again from CARTO Workspace > Developers > Credentials",
        .path.display()
    )]
    CredentialsMissingKey {
        /// The file.
        path: PathBuf,
        /// The key that is missing.
        key: &'static str,
    },

    /// A key of the M2M credentials file is empty (or not a string).
    #[error(
        "the CARTO credentials file {} has an empty \"{key}\" (a non-empty string is needed). \
         Download it again from CARTO Workspace > Developers > Credentials",
        .path.display()
    )]
    CredentialsEmptyValue {
        /// The file.
        path: PathBuf,
        /// The key whose value is empty.
        key: &'static str,
    },

    /// An operation needs the API base URL and the session has none.
    #[error(
        "this CARTO session has no API base URL. Pass it when logging in, \
         .api_base_url(\"https://gcp-us-east1.api.carto.com\"), using the one \
         CARTO Workspace > Developers shows for your account"
    )]
    NoApiBaseUrl,

    /// A setting (argument or environment variable) is not usable.
    #[error("{what} is not usable ({value:?}): {reason}")]
    InvalidSetting {
        /// Which setting.
        what: String,
        /// The value given.
        value: String,
        /// Why it is refused and what it should look like.
        reason: &'static str,
    },

    /// A token cache file exists but cannot be used.
    #[error(
        "the token cache {} cannot be used ({reason}). A login replaces it; \
         `carto-auth logout` or deleting the file removes it",
        .path.display()
    )]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// Reading the answer at the login prompt failed.
    #[error("could not read the login answer: {0}. Run the login again")]
    Input(#[source] std::io::Error),

    /// The HTTP client or the async runtime could not be set up.
    #[error(
        "could not start {what}: {message}. This is a problem of the machine (TLS roots, threads); please report it"
    )]
    Setup {
        /// What could not be started.
        what: &'static str,
        /// Why.
        message: String,
    },
}

fn server_words(error: &Option<String>, description: &Option<String>) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!(" ({e}: {d})"),
        (Some(e), None) => format!(" ({e})"),
        (None, Some(d)) => format!(" ({d})"),
        (None, None) => String::new(),
    }
}

/// The crate's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_names_service_status_server_words_and_a_remedy() {
        let e = Error::Status {
            service: Service::Token,
            url: "https://auth.carto.com/oauth/token".into(),
            status: 401,
            error: Some("access_denied".into()),
            error_description: Some("Unauthorized".into()),
        };
        let msg = e.to_string();
        assert!(msg.contains("token endpoint"), "{msg}");
        assert!(
            msg.contains("HTTP 401 (access_denied: Unauthorized)"),
            "{msg}"
        );
        assert!(msg.contains("check client_id and client_secret"), "{msg}");
    }

    #[test]
    fn credentials_errors_name_the_file_and_the_key() {
        let e = Error::CredentialsMissingKey {
            path: "/tmp/creds.json".into(),
            key: "client_secret",
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/tmp/creds.json") && msg.contains("\"client_secret\""),
            "{msg}"
        );
    }
}
