//! An access token with its expiry and identity, and the token endpoint's
//! answer, which is the same for every grant.

use serde_json::Value;

use crate::clock::{is_expired_at, json_seconds, now_unix};
use crate::endpoints::Endpoints;
use crate::error::{Error, Grant, Result, Service};
use crate::http::{Http, describe_json};
use crate::jwt::{Claims, claims};
use crate::secret::AccessToken;

/// A token and when it expires.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) access_token: AccessToken,
    /// Real Unix seconds: the JWT's `exp` when it has one, else what the
    /// token endpoint or the cache file said.
    pub(crate) expiration: i64,
    /// The JWT's claims; `None` for tokens that are not JWTs.
    pub(crate) claims: Option<Claims>,
}

impl Token {
    /// A token whose expiry is its own `exp` claim when it is a JWT, else
    /// `fallback_expiration`.
    pub(crate) fn new(access_token: AccessToken, fallback_expiration: i64) -> Token {
        Token::with_fallback(access_token, || fallback_expiration)
    }

    /// As [`Token::new`], the fallback computed only for a token without
    /// `exp`: a cache's fallback needs the local zone, read from disk.
    pub(crate) fn with_fallback(
        access_token: AccessToken,
        fallback_expiration: impl FnOnce() -> i64,
    ) -> Token {
        let claims = claims(access_token.secret());
        let expiration = claims
            .as_ref()
            .and_then(|c| c.exp)
            .unwrap_or_else(fallback_expiration);
        Token {
            access_token,
            expiration,
            claims,
        }
    }

    pub(crate) fn is_expired_at(&self, now: i64) -> bool {
        is_expired_at(self.expiration, now)
    }

    /// The `sub` claim: whose token this is.
    pub(crate) fn subject(&self) -> Option<&str> {
        self.claims.as_ref()?.sub.as_deref()
    }

    /// The `azp` claim: which client obtained it.
    pub(crate) fn authorized_party(&self) -> Option<&str> {
        self.claims.as_ref()?.azp.as_deref()
    }

    /// Reads `{"access_token": "...", "expires_in": N}`, the answer of every
    /// grant. `Err` describes what came instead, without its values.
    pub(crate) fn from_response(value: &Value, now: i64) -> Result<Token, String> {
        let token = value
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let expires_in = value.get("expires_in").and_then(json_seconds);
        match (token, expires_in) {
            (Some(token), Some(expires_in)) if expires_in > 0 => Ok(Token::new(
                AccessToken::new(token),
                now.saturating_add(expires_in),
            )),
            _ => Err(describe_json(value)),
        }
    }
}

/// POSTs a grant's form to the token endpoint and reads the answer.
pub(crate) fn request_token(
    http: &Http,
    endpoints: &Endpoints,
    form: &[(&str, &str)],
    grant: Grant,
) -> Result<Token> {
    let url = endpoints.token_url();
    let service = Service::Token(grant);
    let answer = http.post_form(service, &url, form)?;
    log::info!("the token endpoint issued a token ({grant})");
    token_from_answer(service, url, &answer)
}

/// A 2xx answer of the token endpoint as a token, or the error that says
/// what came instead.
pub(crate) fn token_from_answer(service: Service, url: String, answer: &Value) -> Result<Token> {
    Token::from_response(answer, now_unix()).map_err(|got| Error::InvalidResponse {
        service,
        url,
        expected: "JSON with access_token and expires_in",
        got,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::jwt::test_token as jwt;

    #[test]
    fn a_good_answer_gives_now_plus_expires_in() {
        let t = Token::from_response(
            &json!({"access_token": "abc", "expires_in": 86400, "token_type": "Bearer"}),
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(t.access_token.secret(), "abc");
        assert_eq!(t.expiration, 1_700_086_400);
        assert!(t.claims.is_none());
    }

    #[test]
    fn a_jwt_expires_when_its_exp_says() {
        let token = jwt(&json!({"exp": 1_700_000_500, "sub": "auth0|u1", "azp": "cid"}));
        let t = Token::from_response(
            &json!({"access_token": token, "expires_in": 86400}),
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(t.expiration, 1_700_000_500);
        assert_eq!(t.subject(), Some("auth0|u1"));
        assert_eq!(t.authorized_party(), Some("cid"));
        assert!(t.is_expired_at(1_700_000_441));
        assert!(!t.is_expired_at(1_700_000_439));
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
}
