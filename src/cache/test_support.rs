//! What the cache's tests share.

use std::sync::{Arc, Mutex};

use super::{CacheEntry, Warning};
use crate::api_base_url::ApiBaseUrl;
use crate::secret::AccessToken;
use crate::token::Token;

/// An entry for `https://api` that expires in 2096.
pub(super) fn entry(token: &str) -> CacheEntry {
    CacheEntry::new(
        ApiBaseUrl::check("https://api").ok(),
        Token::new(AccessToken::new(token), 4_000_000_000),
    )
}

/// An entry with this API base URL and recorded M2M client, far from expiry.
pub(super) fn entry_for(token: &str, url: Option<&str>, client: Option<&str>) -> CacheEntry {
    CacheEntry {
        client_id: client.map(str::to_string),
        ..CacheEntry::new(
            url.map(|u| ApiBaseUrl::check(u).unwrap()),
            Token::new(AccessToken::new(token), i64::MAX / 2),
        )
    }
}

/// A warning sink that keeps what it is told.
pub(super) fn collect() -> (Arc<Mutex<Vec<Warning>>>, impl Fn(Warning) + Sync) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |w| sink.lock().unwrap().push(w))
}
