//! A person's session: on expiry, a fresher token of the same person from
//! the cache (another kernel's login), else a new sign-in that must be the
//! same person's.

use std::sync::Arc;

use crate::clock::now_unix;
use crate::config::{Common, OAuthConfig};
use crate::error::{Error, Result};
use crate::flow::Login;
use crate::mode::{Mode, TokenSource};
use crate::token::Token;

use super::{Expired, TokenProvider};

/// The provider of an interactive (OAuth) session.
pub(crate) struct OAuthProvider {
    pub(crate) config: Arc<OAuthConfig>,
}

impl TokenProvider for OAuthProvider {
    fn mode(&self) -> Mode {
        Mode::OAuth
    }

    fn common(&self) -> &Common {
        &self.config.common
    }

    fn org(&self) -> Option<&str> {
        self.config.org.as_deref()
    }

    fn renew(&self, expired: &Expired<'_>) -> Result<(Token, TokenSource)> {
        let config = &self.config;
        let common = &config.common;
        let subject = expired.token.subject();
        let api_base_url = expired.api_base_url;
        let cached = {
            let _lock = common.lock();
            common.load()
        };
        let why_not_cached = match cached {
            Some(entry) if entry.token.access_token == expired.token.access_token => {
                "no fresher token is cached".into()
            }
            Some(entry) if !entry.is_fresh_at(now_unix()) => {
                "the cached one has expired too".into()
            }
            Some(entry) => match entry.check_same_user(
                subject,
                api_base_url.map(|u| u.as_str()),
                config.org.as_deref(),
            ) {
                Ok(()) => {
                    log::info!("renewed the session with a fresher token from the cache");
                    let path = common.cache.as_ref().map(|c| c.path().to_path_buf());
                    return Ok((
                        entry.token,
                        path.map_or(TokenSource::SignIn, TokenSource::Cache),
                    ));
                }
                Err(why) => format!("the cached one is not this session's: {why}"),
            },
            None => "no fresher token is cached".into(),
        };
        let state = if expired.token.expiration <= now_unix() {
            "has expired"
        } else {
            "is about to expire"
        };
        let reason = format!("the CARTO token {state}, and {why_not_cached}");
        common
            .prompt
            .notice(&format!("Signing in again: {reason}."));
        let login = Login::start(config.clone())?;
        let token = match login.run() {
            Ok(token) => token,
            Err(Error::NoInput { hint, .. }) => {
                return Err(Error::NoInput {
                    reason: Some(reason),
                    hint,
                });
            }
            Err(e) => return Err(e),
        };
        if let (Some(expected), Some(got)) = (subject, token.subject())
            && expected != got
        {
            return Err(Error::AccountChanged {
                expected: expected.to_string(),
                got: got.to_string(),
            });
        }
        config.save_token(api_base_url.cloned(), &token);
        Ok((token, TokenSource::SignIn))
    }
}
