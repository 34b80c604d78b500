//! Where a session's next token comes from, one provider per kind of
//! session (yup-oauth2's shape): an M2M application asks the token
//! endpoint, a person's session takes a fresher cached token or signs in
//! again, a given token cannot be renewed. The session (`auth.rs`) holds
//! one and knows nothing of the kinds.

mod given;
mod m2m;
mod oauth;

pub(crate) use given::GivenProvider;
pub(crate) use m2m::M2mProvider;
pub(crate) use oauth::OAuthProvider;

use crate::api_base_url::ApiBaseUrl;
use crate::config::Common;
use crate::error::Result;
use crate::mode::{Mode, TokenSource};
use crate::token::Token;

/// What a provider is told about the session whose token ran out.
pub(crate) struct Expired<'a> {
    pub(crate) token: &'a Token,
    pub(crate) api_base_url: Option<&'a ApiBaseUrl>,
}

/// One kind of session: its settings, and how its token is renewed.
pub(crate) trait TokenProvider: Send + Sync {
    /// How the session logged in.
    fn mode(&self) -> Mode;

    /// The settings every kind shares.
    fn common(&self) -> &Common;

    /// The SSO organization, for a person's session that named one.
    fn org(&self) -> Option<&str> {
        None
    }

    /// A new token for a session whose token has expired (or is about to).
    /// Called by one caller at a time per session.
    fn renew(&self, expired: &Expired<'_>) -> Result<(Token, TokenSource)>;
}
