//! Access tokens as CARTO's Auth0 tenant issues them: JWTs with the
//! standard claims. The signature is random bytes: the crate never checks
//! it (the API does), and the fake's API recognises the tokens it issued.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Who a token is for.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A person who signed in (authorization code or device flow).
    User { sub: String, org_id: Option<String> },
    /// An M2M application.
    Client { client_id: String },
}

/// How every token the fake issues begins: its header, `{"alg":"RS256",`,
/// in base64url.
pub const PREFIX: &str = "eyJhbGciOiJSUzI1NiIs";

impl Subject {
    /// A person without an organization.
    pub fn user(sub: &str) -> Subject {
        Subject::User {
            sub: sub.into(),
            org_id: None,
        }
    }
}

/// A JWT with `iss`, `sub`, `aud`, `iat`, `exp`, `azp` (and `gty` for M2M,
/// `org_id` when an organization was used), as Auth0 writes them.
pub fn issue(
    issuer: &str,
    audience: &str,
    azp: &str,
    subject: &Subject,
    iat: i64,
    exp: i64,
) -> String {
    let mut claims = json!({
        "iss": issuer,
        "aud": [audience, format!("{}userinfo", issuer)],
        "iat": iat,
        "exp": exp,
        "azp": azp,
        "scope": "openid profile email",
    });
    match subject {
        Subject::User { sub, org_id } => {
            claims["sub"] = sub.clone().into();
            if let Some(org) = org_id {
                claims["org_id"] = org.clone().into();
            }
        }
        Subject::Client { client_id } => {
            claims["sub"] = format!("{client_id}@clients").into();
            claims["gty"] = "client-credentials".into();
            claims["aud"] = audience.into();
            claims.as_object_mut().unwrap().remove("scope");
        }
    }
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "fake-key-1"});
    format!(
        "{}.{}.{}",
        encode(&header),
        encode(&claims),
        super::random_word() + &super::random_word() + &super::random_word()
    )
}

fn encode(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The claims of a token the fake issued (no checks: it is ours).
pub fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}
