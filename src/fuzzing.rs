//! The input parsers, opened to the fuzz targets in `fuzz/` (feature
//! `fuzzing`). Not part of the API: no stability, no documentation beyond
//! this; users never enable the feature.

use std::path::Path;

use tz::TimeZone;

use crate::api_base_url::ApiBaseUrl;
use crate::cache::{CacheEntry, parse_entry};
use crate::callback::{Verdict, judge, judge_head};
use crate::m2m::Credentials;
use crate::secret::AccessToken;
use crate::token::Token;

/// The issuer the fuzzed answers are judged against.
const ISSUER: &str = "https://auth.carto.com/";

/// `parse_pasted`: the code, or the error message.
pub fn parse_pasted(input: &str) -> Result<String, String> {
    crate::paste::parse_pasted(input, ISSUER)
        .map(|c| c.secret().to_string())
        .map_err(|e| e.to_string())
}

/// `Credentials::parse` of a file named `fuzz.json`: `(api_base_url,
/// client_id, client_secret)`, or the error message.
pub fn parse_credentials(input: &str) -> Result<(String, String, String), String> {
    Credentials::parse(Path::new("fuzz.json"), input)
        .map(|c| {
            (
                c.api_base_url.to_string(),
                c.client_id,
                c.client_secret.secret().to_string(),
            )
        })
        .map_err(|e| e.to_string())
}

/// A cache file's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheFields {
    /// `api_base_url`.
    pub api_base_url: Option<String>,
    /// `access_token`.
    pub access_token: String,
    /// `expiration`.
    pub expiration: i64,
    /// `client_id` (ours).
    pub client_id: Option<String>,
}

/// The cache loader's parser (Python-written numbers read in UTC): the
/// fields, or why the text is no cache.
pub fn parse_cache(input: &str) -> Result<CacheFields, &'static str> {
    parse_entry(input, TimeZone::utc).map(|e| CacheFields {
        api_base_url: e.api_base_url.map(|u| u.to_string()),
        access_token: e.token.access_token.secret().to_string(),
        expiration: e.token.expiration,
        client_id: e.client_id,
    })
}

/// What the cache writer writes for these fields.
pub fn write_cache(fields: &CacheFields) -> String {
    CacheEntry {
        client_id: fields.client_id.clone(),
        ..CacheEntry::new(
            // Fields that parse_cache gave are valid; anything else is
            // written as no URL.
            fields
                .api_base_url
                .as_deref()
                .and_then(|u| ApiBaseUrl::check(u).ok()),
            Token::new(
                AccessToken::new(fields.access_token.clone()),
                fields.expiration,
            ),
        )
    }
    .to_json(&TimeZone::utc())
}

/// What the callback server makes of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackVerdict {
    /// Answered with this status; the login goes on waiting.
    Ignored(u16),
    /// The login's code.
    Code(String),
    /// The login's OAuth error.
    Denied(String),
}

/// The callback server's judgement of a request with this method (`GET` or
/// other) and target, for a login waiting on `callback_path` with `state`.
pub fn judge_callback(
    is_get: bool,
    target: &str,
    callback_path: &str,
    state: &str,
) -> CallbackVerdict {
    verdict(judge(is_get, target, callback_path, state, ISSUER))
}

/// The same for a raw request head, as read from a connection.
pub fn judge_callback_head(head: &[u8], callback_path: &str, state: &str) -> CallbackVerdict {
    verdict(judge_head(head, callback_path, state, ISSUER))
}

fn verdict(verdict: Verdict) -> CallbackVerdict {
    match verdict {
        Verdict::Ignore { status, .. } => CallbackVerdict::Ignored(status),
        Verdict::Code(code) => CallbackVerdict::Code(code.secret().to_string()),
        Verdict::Denied { error, .. } => CallbackVerdict::Denied(error),
        Verdict::WrongIssuer(iss) => CallbackVerdict::Denied(format!("wrong issuer {iss}")),
    }
}

/// A `getQueryResults` answer (JSON bytes) as the CARTO Data Warehouse
/// client reads it: parsed as JSON, then every row decoded by the schema. The decoded rows, or why the page is refused.
/// Feature `carto-dw`.
#[cfg(feature = "carto-dw")]
pub fn decode_bigquery_page(body: &[u8]) -> Result<Vec<Vec<serde_json::Value>>, String> {
    crate::dw::decode_page(body)
}
