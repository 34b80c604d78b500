//! An access token with its expiry, and the token endpoint's answer.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::endpoints::Endpoints;
use crate::error::{Error, Result, Service};
use crate::http::{Http, describe_json};
use crate::secret::AccessToken;

/// A token counts as expired this many seconds before its expiration, so that
/// a token handed out is not dead on arrival at the API.
pub const EXPIRY_MARGIN_SECS: i64 = 60;

/// Seconds since the Unix epoch. Unlike the Python package (naive UTC, off by
/// the machine's UTC offset), this is the real epoch on every machine.
pub(crate) fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Whether a token expiring at `expiration` (Unix seconds) is expired at
/// `now`, margin included.
///
/// ```
/// use carto_auth::is_expired_at;
/// assert!(!is_expired_at(1_000, 939));
/// assert!(is_expired_at(1_000, 940)); // 60 s margin
/// ```
pub fn is_expired_at(expiration: i64, now: i64) -> bool {
    now.saturating_add(EXPIRY_MARGIN_SECS) >= expiration
}

/// A token and when it expires.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) access_token: AccessToken,
    /// Unix seconds, as in the cache file.
    pub(crate) expiration: i64,
}

impl Token {
    pub(crate) fn is_expired_at(&self, now: i64) -> bool {
        is_expired_at(self.expiration, now)
    }

    /// Reads `{"access_token": "...", "expires_in": N}`, the answer of both
    /// grants. `Err` describes what came instead, without its values.
    pub(crate) fn from_response(value: &Value, now: i64) -> Result<Token, String> {
        let token = value
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let expires_in = value.get("expires_in").and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        });
        match (token, expires_in) {
            (Some(token), Some(expires_in)) if expires_in > 0 => Ok(Token {
                access_token: AccessToken::new(token),
                expiration: now.saturating_add(expires_in),
            }),
            _ => Err(describe_json(value)),
        }
    }
}

/// POSTs a grant's form to the token endpoint and reads the answer, which
/// is the same for both grants. `grant` names it in the log.
pub(crate) async fn request_token(
    http: &Http,
    endpoints: &Endpoints,
    form: &[(&str, &str)],
    grant: &str,
) -> Result<Token> {
    let url = endpoints.token_url();
    let answer = http.post_form(Service::Token, &url, form).await?;
    log::info!("token endpoint issued an {grant} token");
    Token::from_response(&answer, now_unix()).map_err(|got| Error::InvalidResponse {
        service: Service::Token,
        url,
        expected: "JSON with access_token and expires_in",
        got,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_has_a_sixty_second_margin() {
        let t = Token {
            access_token: AccessToken::new("t"),
            expiration: 10_000,
        };
        assert!(!t.is_expired_at(10_000 - 61));
        assert!(t.is_expired_at(10_000 - 60));
        assert!(t.is_expired_at(10_001));
        assert!(!is_expired_at(i64::MAX, i64::MAX - 61));
        assert!(is_expired_at(i64::MIN, i64::MAX));
    }

    #[test]
    fn a_good_answer_gives_now_plus_expires_in() {
        let t = Token::from_response(
            &json!({"access_token": "abc", "expires_in": 86400, "token_type": "Bearer"}),
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(t.access_token.secret(), "abc");
        assert_eq!(t.expiration, 1_700_086_400);
    }

    #[test]
    fn a_bad_answer_is_described_without_its_values() {
        let err = Token::from_response(&json!({"access_token": "sekret"}), 0).unwrap_err();
        assert!(
            err.contains("access_token") && !err.contains("sekret"),
            "{err}"
        );
        assert!(Token::from_response(&json!({"access_token": "", "expires_in": 5}), 0).is_err());
        assert!(Token::from_response(&json!({"access_token": "x", "expires_in": -5}), 0).is_err());
        assert!(Token::from_response(&json!({"access_token": 5, "expires_in": 5}), 0).is_err());
        assert!(Token::from_response(&json!([1, 2]), 0).is_err());
    }

    #[test]
    fn now_is_the_real_epoch() {
        // 2024-01-01: a clock set to local time instead of the epoch would
        // still pass; one returning 0 on error would not.
        assert!(now_unix() > 1_704_067_200);
    }
}

/// "expires in 23 h 41 min", "expires in 40 s" or "expired".
pub(crate) fn describe_expiry(expiration: i64, now: i64) -> String {
    let left = expiration.saturating_sub(now);
    if left <= 0 {
        return "expired".into();
    }
    let (h, m, s) = (left / 3600, left % 3600 / 60, left % 60);
    match (h, m) {
        (0, 0) => format!("expires in {s} s"),
        (0, m) => format!("expires in {m} min"),
        (h, m) => format!("expires in {h} h {m} min"),
    }
}

#[cfg(test)]
mod describe_tests {
    use super::describe_expiry;

    #[test]
    fn expiry_reads_like_a_person_would_say_it() {
        assert_eq!(
            describe_expiry(100 + 23 * 3600 + 41 * 60 + 5, 100),
            "expires in 23 h 41 min"
        );
        assert_eq!(describe_expiry(100 + 5 * 60, 100), "expires in 5 min");
        assert_eq!(describe_expiry(140, 100), "expires in 40 s");
        assert_eq!(describe_expiry(100, 100), "expired");
        assert_eq!(describe_expiry(0, 100), "expired");
    }
}
