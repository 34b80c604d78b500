//! What a request went to: the service and, for the token endpoint, the
//! grant; each with what to check when it refuses.

use std::fmt;

/// Which OAuth grant a token request was for: the advice after a refusal
/// depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// A person's browser sign-in (authorization code + PKCE).
    AuthorizationCode,
    /// An M2M application's credentials file (client credentials).
    ClientCredentials,
    /// A person's sign-in on another device (device authorization grant).
    DeviceCode,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grant::AuthorizationCode => "browser sign-in",
            Grant::ClientCredentials => "M2M credentials",
            Grant::DeviceCode => "device sign-in",
        })
    }
}

/// Which CARTO (or Google) service a request went to, so that an error can
/// name it and say what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Service {
    /// The OAuth token endpoint (`/oauth/token`), for one grant.
    Token(Grant),
    /// The device authorization endpoint (`/oauth/device/code`).
    DeviceAuthorization,
    /// The accounts service that knows the user's tenant.
    Accounts,
    /// The tenant's `config.yaml`, which names the API base URL.
    TenantConfig,
    /// The CARTO Data Warehouse token endpoint of the API.
    CartoDw,
    /// CARTO's SQL API (`/v3/sql/{connection}/query`).
    SqlApi,
    /// Google BigQuery, for the CARTO Data Warehouse client.
    BigQuery,
    /// CARTO's API Access Tokens endpoint (`/v3/tokens`), which makes a
    /// map's scoped token.
    Tokens,
}

impl Service {
    pub(crate) fn hint(self) -> &'static str {
        match self {
            Service::Token(Grant::ClientCredentials) => {
                "check client_id and client_secret in the M2M credentials file \
                 (download it again from CARTO Workspace > Developers > Credentials)"
            }
            Service::Token(Grant::AuthorizationCode) => {
                "sign in again: the code may have been copied short or already used \
                 (codes are single-use and expire within minutes)"
            }
            Service::Token(Grant::DeviceCode) | Service::DeviceAuthorization => {
                "start the login again; without .device_flow(true) the browser or paste \
                 flow is used"
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
            Service::SqlApi => {
                "check the connection name (CARTO Workspace > Connections) and the SQL"
            }
            Service::BigQuery => "check the SQL and the CARTO Data Warehouse project",
            Service::Tokens => {
                "check the API base URL (CARTO Workspace > Developers), or draw the map with \
                 the session's own token, .embed_session_token(true)"
            }
        }
    }
}

impl fmt::Display for Service {
    /// Each name says whose service it is, so that a message can say "the
    /// {service}" ("the CARTO SQL API", "the BigQuery API").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Token(_) => "CARTO token endpoint",
            Service::DeviceAuthorization => "CARTO device authorization endpoint",
            Service::Accounts => "CARTO accounts service",
            Service::TenantConfig => "CARTO tenant configuration",
            Service::CartoDw => "CARTO Data Warehouse token endpoint",
            Service::SqlApi => "CARTO SQL API",
            Service::BigQuery => "BigQuery API",
            Service::Tokens => "API Access Tokens endpoint",
        })
    }
}
