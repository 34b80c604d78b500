//! An M2M application's tokens: from the cache when they are its own and
//! good, else from the token endpoint.

use crate::cache::CacheEntry;
use crate::clock::now_unix;
use crate::config::Common;
use crate::error::Result;
use crate::m2m::{Credentials, request_token};
use crate::mode::{Mode, TokenSource};
use crate::token::Token;

use super::{Expired, TokenProvider};

/// The provider of an M2M session.
pub(crate) struct M2mProvider {
    pub(crate) common: Common,
    pub(crate) credentials: Credentials,
}

impl M2mProvider {
    /// A token for these credentials: from the cache when it belongs to
    /// them and is good, else from the token endpoint, all under the cache
    /// lock so that many processes starting at once make one request.
    pub(crate) fn token(&self) -> Result<(Token, TokenSource)> {
        let (common, credentials) = (&self.common, &self.credentials);
        let request = || request_token(&common.http(), &common.endpoints, credentials);
        let Some(cache) = &common.cache else {
            return Ok((request()?, TokenSource::SignIn));
        };
        let _lock = common.lock();
        if let Some(entry) = common.load() {
            match entry
                .is_fresh_at(now_unix())
                .then(|| entry.check_m2m(&credentials.client_id, credentials.api_base_url.as_str()))
            {
                Some(Ok(())) => {
                    log::debug!("using the cached M2M token from {}", cache.path().display());
                    return Ok((entry.token, TokenSource::Cache(cache.path().to_path_buf())));
                }
                Some(Err(why)) => log::info!("not reusing the cached M2M token: {why}"),
                None => log::info!("the cached M2M token has expired"),
            }
        }
        let token = request()?;
        common.save_locked(&CacheEntry {
            client_id: Some(credentials.client_id.clone()),
            ..CacheEntry::new(Some(credentials.api_base_url.clone()), token.clone())
        });
        Ok((token, TokenSource::SignIn))
    }
}

impl TokenProvider for M2mProvider {
    fn mode(&self) -> Mode {
        Mode::M2m
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn renew(&self, _: &Expired<'_>) -> Result<(Token, TokenSource)> {
        self.token()
    }
}
