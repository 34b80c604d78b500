//! The one error type of the crate.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::service::{Grant, Service};

/// Everything that can go wrong, each message ending with what to do.
///
/// Messages never contain a token, a client secret, a code verifier, a
/// device code or an authorization code.
///
/// A failure of the network or of a file keeps its cause for
/// [`source()`](std::error::Error::source): the HTTP client's error
/// (without its URL, which can carry a code or a state) or the operating
/// system's [`std::io::Error`].
///
/// ```
/// use std::error::Error as _;
///
/// let err = carto_auth::CartoAuth::m2m("/nonexistent/carto_credentials.json")
///     .login()
///     .unwrap_err();
/// let io = err.source().and_then(|s| s.downcast_ref::<std::io::Error>());
/// assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request did not get an answer (DNS, refused, TLS, timeout).
    #[error(
        "could not reach the {service} at {url}: {message}. \
         Check the network connection and proxy settings (HTTPS_PROXY), then try again"
    )]
    Network {
        /// The service that was called.
        service: Service,
        /// The URL, without its query.
        url: String,
        /// What failed, in words: the HTTP client's error and its causes on
        /// one line, or the time waited.
        message: String,
        /// The HTTP client's error, without its URL (`None` when a deadline
        /// of this crate ran out).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The service answered with an HTTP error status.
    #[error(
        "the {service} at {url} answered HTTP {status}{}: {}",
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
        "the {service} at {url} answered with {got}, not {expected}: {}",
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

    /// CARTO's login page (or the device flow) sent back an `error` instead
    /// of a code or a token.
    #[error(
        "CARTO did not authorize the login: {error}{}. Sign in again; if it keeps failing, \
         check the SSO organization name and that your user can sign in to CARTO",
        .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    Authorization {
        /// The OAuth `error` code, such as `access_denied`.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },

    /// The authorization response came from another issuer than CARTO's
    /// (RFC 9207): a mix-up, never used.
    #[error(
        "the sign-in answer says it comes from {got:?}, not from CARTO's authorization \
         server {expected:?}, so it was not used. Sign in again with the address this \
         login showed"
    )]
    IssuerMismatch {
        /// The issuer this login expects.
        expected: String,
        /// The `iss` the answer carried.
        got: String,
    },

    /// The login prompt got empty answers only.
    #[error("no answer was given at the login prompt. {hint}")]
    NoAnswer {
        /// What to do instead.
        hint: &'static str,
    },

    /// The login would have to ask the user, and nothing can be read where
    /// it runs (a notebook front end that sends no input, stdin closed).
    #[error("{}no answer can be read here to finish signing in. {hint}", .reason.as_deref().map(|r| format!("Signing in to CARTO again is needed ({r}), but ")).unwrap_or_default())]
    NoInput {
        /// Why a sign-in was needed, when it was not asked for directly.
        reason: Option<String>,
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

    /// The device-flow code expired before anyone approved it.
    #[error(
        "the sign-in code was not approved within {} s and has expired. Start the login \
         again and approve the new code",
        .waited.as_secs()
    )]
    DeviceCodeExpired {
        /// How long it waited.
        waited: Duration,
    },

    /// Nobody approved the device-flow code within the login timeout (the
    /// code itself was still valid).
    #[error(
        "the sign-in code was not approved within the login timeout ({} s). Start the login \
         again and approve the new code, or allow more time with .login_timeout()",
        .waited.as_secs()
    )]
    DeviceLoginTimeout {
        /// How long it waited.
        waited: Duration,
    },

    /// A pending two-step login was used after it had finished or failed.
    #[error("this login was already {state}. Start a new one with CartoAuth::oauth().begin()")]
    LoginFinished {
        /// `"completed"`, `"cancelled"` or `"timed out"`.
        state: &'static str,
    },

    /// A renewal sign-in was made as another account than the session's:
    /// its token is not handed out as this session's.
    #[error(
        "the new sign-in is another account's ({got}), not this session's ({expected}), so \
         its token is not used here. Sign in again as {expected}, or start a session for the \
         other account with CartoAuth::from_oauth()"
    )]
    AccountChanged {
        /// The session's subject (`sub` claim).
        expected: String,
        /// The new token's subject.
        got: String,
    },

    /// A token given to the session (or `CARTO_API_TOKEN`) has expired and
    /// cannot be renewed by this crate.
    #[error(
        "the CARTO access token {source_name} expired {ago}. {remedy}",
        ago = describe_ago(*.expired_secs_ago)
    )]
    TokenExpired {
        /// Where the token came from.
        source_name: String,
        /// How long ago it expired, in seconds.
        expired_secs_ago: i64,
        /// What to do.
        remedy: &'static str,
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
        "this CARTO session has no API base URL{}. Pass it when logging in, \
         .api_base_url(\"https://gcp-us-east1.api.carto.com\") (or CARTO_API_BASE_URL), \
         using the one CARTO Workspace > Developers shows for your account",
        .why.as_deref().map(|w| format!(" ({w})")).unwrap_or_default()
    )]
    NoApiBaseUrl {
        /// Why it is unknown, e.g. the discovery error after sign-in.
        why: Option<String>,
    },

    /// An API base URL is not one a token may be sent to: not a URL, no
    /// `https://` in front, or plain `http://` to another machine.
    #[error(
        "the API base URL {origin} is not usable ({value:?}): {problem}. Write it as {instead}"
    )]
    InvalidApiBaseUrl {
        /// Where it came from: the file and key, the variable, the option.
        origin: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
        /// How to write it.
        instead: String,
    },

    /// CARTO's SQL API refused a query.
    #[error(
        "the CARTO SQL API refused the query on connection {connection:?} (HTTP {status}){}: {}",
        .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
        sql_hint(*.status, connection)
    )]
    Sql {
        /// The connection name.
        connection: String,
        /// The HTTP status.
        status: u16,
        /// CARTO's `error` text.
        message: Option<String>,
    },

    /// CARTO refused to create the token a map's page carries (the
    /// session's role may not create API Access Tokens).
    #[error(
        "CARTO refused to create a token scoped to this map (HTTP {status}{}): the user or M2M \
         application may lack the permission to create API Access Tokens. Ask an admin of the \
         organization for it, or draw the map with the session's own token, \
         .embed_session_token(true), which is then saved with the notebook until it expires",
        .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    MapTokenRefused {
        /// The HTTP status (401 or 403).
        status: u16,
        /// CARTO's `error` text, if any.
        message: Option<String>,
    },

    /// BigQuery refused a request of the CARTO Data Warehouse client.
    #[error(
        "BigQuery refused the request (HTTP {status}{}){}: {}",
        .reason.as_deref().map(|r| format!(", {r}")).unwrap_or_default(),
        .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
        bigquery_hint(*.status)
    )]
    BigQuery {
        /// The HTTP status.
        status: u16,
        /// The `reason` of the first error.
        reason: Option<String>,
        /// BigQuery's `message`.
        message: Option<String>,
    },

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
        /// Why, in words.
        reason: String,
        /// The operating system's error, when that is why.
        #[source]
        source: Option<std::io::Error>,
    },

    /// Query results could not be turned into the requested type.
    #[error(
        "the query result does not fit the requested type: {message}. Check the column names and types"
    )]
    Deserialize {
        /// serde's message (never a row's content).
        message: String,
    },

    /// Reading the answer at the login prompt failed.
    #[error("could not read the login answer: {0}. Run the login again")]
    Input(#[source] std::io::Error),

    /// Something the machine provides could not be set up: a thread for an
    /// `_async` call, the random number generator, Google's BigQuery client.
    #[error(
        "could not start {what}: {message}. This is a problem of the machine (TLS roots, threads); please report it"
    )]
    Setup {
        /// What could not be started.
        what: &'static str,
        /// Why, in words.
        message: String,
        /// The error that said so, when there was one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// Whether a paste or a code exchange that failed this way can be
    /// retried with the same login: the verifier is still unused.
    pub(crate) fn can_retry_login(&self) -> bool {
        matches!(
            self,
            Error::NoCode { .. }
                | Error::Network { .. }
                | Error::Authorization { .. }
                | Error::IssuerMismatch { .. }
                | Error::Status {
                    service: Service::Token(_),
                    ..
                }
                | Error::InvalidResponse {
                    service: Service::Token(_),
                    ..
                }
        )
    }
}

fn server_words(error: &Option<String>, description: &Option<String>) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!(" ({e}: {d})"),
        (Some(e), None) => format!(" ({e})"),
        (None, Some(d)) => format!(" ({d})"),
        (None, None) => String::new(),
    }
}

fn describe_ago(secs: i64) -> String {
    match secs {
        s if s <= 0 => "just now".into(),
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}

fn sql_hint(status: u16, connection: &str) -> String {
    match status {
        401 | 403 => format!(
            "log in again, or check that your user (or M2M application) may use the \
             connection {connection:?} (CARTO Workspace > Connections > permissions)"
        ),
        404 => format!(
            "there is no connection named {connection:?} for this account: check its name in \
             CARTO Workspace > Connections (the CARTO Data Warehouse is \"carto_dw\") and the API base URL"
        ),
        500..=599 => "CARTO (or a gateway on the way) failed to answer; try again in a \
                      moment, and if it persists check CARTO's status page"
            .to_string(),
        _ => "check the SQL and the connection".to_string(),
    }
}

fn bigquery_hint(status: u16) -> &'static str {
    match status {
        401 => {
            "the CARTO Data Warehouse token was refused; run the query again (a new token is fetched)"
        }
        403 => "the CARTO Data Warehouse token does not allow this; check the project and dataset",
        404 => "check the project, dataset and table names",
        _ => "check the SQL (standard SQL, not legacy)",
    }
}

/// The crate's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
