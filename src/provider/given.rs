//! A token given as is (`CartoAuth::from_token`, `CARTO_API_TOKEN`): nothing
//! can renew it.

use crate::clock::now_unix;
use crate::config::Common;
use crate::error::{Error, Result};
use crate::mode::{Mode, TokenSource};
use crate::token::Token;

use super::{Expired, TokenProvider};

/// The provider of a session that was given its token.
pub(crate) struct GivenProvider {
    pub(crate) common: Common,
    pub(crate) from_environment: bool,
}

impl TokenProvider for GivenProvider {
    fn mode(&self) -> Mode {
        Mode::Token
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn renew(&self, expired: &Expired<'_>) -> Result<(Token, TokenSource)> {
        Err(Error::TokenExpired {
            source_name: if self.from_environment {
                "in CARTO_API_TOKEN".into()
            } else {
                "given to CartoAuth::from_token".into()
            },
            expired_secs_ago: now_unix().saturating_sub(expired.token.expiration),
            remedy: if self.from_environment {
                "Set CARTO_API_TOKEN to a new token (CARTO Workspace > Developers), or unset it to sign in"
            } else {
                "Create the session again with a new token, or sign in with CartoAuth::from_oauth()"
            },
        })
    }
}
