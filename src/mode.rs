//! How a session logged in, and where its current token came from.

use std::fmt;
use std::path::PathBuf;

/// How a session logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A person, through the browser (authorization code + PKCE) or the
    /// device flow.
    OAuth,
    /// An application, with a credentials file (client credentials).
    M2m,
    /// An access token given as is: [`CartoAuth::from_token`] or
    /// `CARTO_API_TOKEN`. It cannot be renewed.
    ///
    /// [`CartoAuth::from_token`]: crate::CartoAuth::from_token
    Token,
}

impl Mode {
    /// The name in the default cache file, `token_<name>.json`.
    pub(crate) fn cache_name(self) -> Option<&'static str> {
        match self {
            Mode::OAuth => Some("oauth"),
            Mode::M2m => Some("m2m"),
            Mode::Token => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::OAuth => "OAuth",
            Mode::M2m => "M2M",
            Mode::Token => "token",
        })
    }
}

/// Where a session's current token came from, as the status card and
/// `carto-auth status` say it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// A sign-in or token request made by this session.
    SignIn,
    /// A cache file (written by this crate, the Python package, or another
    /// process).
    Cache(PathBuf),
    /// The program passed it to [`CartoAuth::from_token`](crate::CartoAuth::from_token).
    Given,
    /// The `CARTO_API_TOKEN` environment variable.
    Environment,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::SignIn => f.write_str("a sign-in by this session"),
            TokenSource::Cache(path) => write!(f, "the cache file {}", path.display()),
            TokenSource::Given => f.write_str("given by the program (CartoAuth::from_token)"),
            TokenSource::Environment => f.write_str("the CARTO_API_TOKEN environment variable"),
        }
    }
}
