//! What a login gives without signing in: `CARTO_API_TOKEN`, or a cached
//! token that fits what the login asks. [`OAuthBuilder::login`] and
//! [`OAuthBuilder::existing_session`] share this one decision.
//!
//! [`OAuthBuilder::login`]: crate::OAuthBuilder::login
//! [`OAuthBuilder::existing_session`]: crate::OAuthBuilder::existing_session

use std::sync::Arc;

use crate::api::discover;
use crate::api_base_url::ApiBaseUrl;
use crate::auth::CartoAuth;
use crate::clock::now_unix;
use crate::config::OAuthConfig;
use crate::environment::{API_TOKEN_VAR, var};
use crate::error::Result;
use crate::mode::TokenSource;
use crate::provider::OAuthProvider;
use crate::secret::AccessToken;

/// What a login gives without signing in: `CARTO_API_TOKEN`, else a cached
/// token that fits; nothing when a new sign-in is asked for.
pub(crate) fn existing_session(config: &Arc<OAuthConfig>) -> Result<Option<CartoAuth>> {
    if config.force_login {
        return Ok(None);
    }
    if let Some(token) = var(API_TOKEN_VAR) {
        return Ok(Some(environment_session(config, AccessToken::new(token))));
    }
    Ok(cached_session(config))
}

/// A session for `CARTO_API_TOKEN`, with the builder's API base URL, else
/// `CARTO_API_BASE_URL`, else discovery.
fn environment_session(config: &Arc<OAuthConfig>, token: AccessToken) -> CartoAuth {
    let common = &config.common;
    let (url, why) = match config.api_base_url.clone() {
        Some(url) => (Some(url), None),
        None => discover(&common.http(), &common.endpoints, &token),
    };
    let auth = CartoAuth::given(config.common.clone(), token, url, why, true);
    // Logged, not said: it runs unattended by design, and the session card
    // and `carto-auth status` show where the token came from.
    log::info!(
        "using the access token in {API_TOKEN_VAR}: {}",
        auth.summary()
    );
    auth
}

/// The cached session, when it is good and fits what the login asks.
fn cached_session(config: &Arc<OAuthConfig>) -> Option<CartoAuth> {
    let common = &config.common;
    let cache = common.cache.as_ref()?;
    let entry = {
        let _lock = common.lock();
        common.load()
    }?;
    if !entry.is_fresh_at(now_unix()) {
        log::info!("the cached OAuth token has expired");
        return None;
    }
    let wanted = config.api_base_url.as_ref().map(ApiBaseUrl::as_str);
    if let Err(why) = entry.check_login(wanted, config.org.as_deref()) {
        common
            .prompt
            .notice(&format!("Not using the cached CARTO token: {why}."));
        return None;
    }
    log::info!(
        "using the cached OAuth token from {}",
        cache.path().display()
    );
    let api_base_url = entry.api_base_url.clone().or(config.api_base_url.clone());
    Some(CartoAuth::new(
        Box::new(OAuthProvider {
            config: config.clone(),
        }),
        api_base_url,
        None,
        entry.token,
        TokenSource::Cache(cache.path().to_path_buf()),
    ))
}
