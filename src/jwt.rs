//! What an access token says about itself: CARTO's tokens are JWTs issued
//! by its Auth0 tenant, and their claims tell when they expire and whose
//! they are.
//!
//! The signature is not checked, on purpose: these claims only steer local
//! cache decisions (is this token still good, is it this user's or this
//! application's). A forged token gains nothing from them, since the CARTO
//! API verifies every token it is sent; the worst a wrong claim can do here
//! is make us sign in again or send a token the API then refuses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::clock::json_seconds;

/// Tokens larger than this are not read as JWTs (Auth0's are about 1 KiB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The standard Auth0 claims this crate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Claims {
    /// `exp`: expiry, Unix seconds.
    pub(crate) exp: Option<i64>,
    /// `sub`: the user (`auth0|...`, an SSO id) or `<client_id>@clients`.
    pub(crate) sub: Option<String>,
    /// `azp`: the client id that obtained the token.
    pub(crate) azp: Option<String>,
    /// `org_id`: the organization the user signed in with, if any.
    pub(crate) org_id: Option<String>,
    /// `iss`: the issuer.
    pub(crate) iss: Option<String>,
}

/// The claims of a JWT (`header.payload.signature`, base64url), or `None`
/// when the token is not one (an opaque token, an API Access Token of
/// another shape, a JWE): such tokens fall back to the cache's numbers.
pub(crate) fn claims(token: &str) -> Option<Claims> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    // The header must be a JSON object too: a dotted opaque token whose
    // middle part happens to decode is not a JWT.
    let header: Value = serde_json::from_slice(&decode(header)?).ok()?;
    header.as_object()?;
    let payload: Value = serde_json::from_slice(&decode(payload)?).ok()?;
    let map = payload.as_object()?;
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(Claims {
        exp: map.get("exp").and_then(json_seconds),
        sub: text("sub"),
        azp: text("azp"),
        org_id: text("org_id"),
        iss: text("iss"),
    })
}

/// base64url, with or without padding (some encoders keep it).
fn decode(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

/// A JWT with this payload (and a signature nobody checks), for tests.
#[cfg(test)]
pub(crate) fn test_token(payload: &Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        enc(&serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        enc(payload)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(payload: &Value) -> String {
        test_token(payload)
    }

    #[test]
    fn auth0_user_and_m2m_tokens_give_their_claims() {
        let user = claims(&jwt(&json!({
            "iss": "https://auth.carto.com/", "sub": "auth0|6123", "aud": ["carto-cloud-native-api"],
            "iat": 1_700_000_000, "exp": 1_700_086_400, "azp": "0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u",
            "org_id": "org_abc"
        })))
        .unwrap();
        assert_eq!(user.exp, Some(1_700_086_400));
        assert_eq!(user.sub.as_deref(), Some("auth0|6123"));
        assert_eq!(
            user.azp.as_deref(),
            Some("0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u")
        );
        assert_eq!(user.org_id.as_deref(), Some("org_abc"));
        assert_eq!(user.iss.as_deref(), Some("https://auth.carto.com/"));

        let m2m = claims(&jwt(
            &json!({"sub": "abc@clients", "azp": "abc", "gty": "client-credentials", "exp": 5.0}),
        ))
        .unwrap();
        assert_eq!((m2m.exp, m2m.azp.as_deref()), (Some(5), Some("abc")));
        assert_eq!(m2m.org_id, None);
    }

    #[test]
    fn tokens_that_are_not_jwts_have_no_claims() {
        for token in [
            "opaque-token",
            "a.b",
            "a.b.c.d.e",
            "eyJhbGciOi.not base64!.sig",
            "",
            "..",
        ] {
            assert_eq!(claims(token), None, "{token}");
        }
        // A payload that is JSON but not an object, or a header that is not.
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        assert_eq!(claims(&format!("{}.{}.s", enc("{}"), enc("[1]"))), None);
        assert_eq!(claims(&format!("{}.{}.s", enc("3"), enc("{}"))), None);
        assert_eq!(claims(&"a".repeat(MAX_TOKEN_LEN + 1)), None);
    }

    #[test]
    fn padded_parts_and_odd_claim_types_are_tolerated() {
        let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE.encode(v.to_string());
        let token = format!(
            "{}.{}.sig",
            enc(&json!({"alg": "none"})),
            enc(&json!({"exp": "soon", "sub": 7, "azp": ""}))
        );
        let c = claims(&token).unwrap();
        assert_eq!(c, Claims::default());
    }
}
