//! Types for the values that must never be printed.
//!
//! Each secret is a newtype whose `Debug` prints `Name([redacted])` and that
//! has no `Display`: "never log a token" then holds by construction, and the
//! raw value is only reachable through a method whose name says so.

use std::fmt;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident $(, $derive:ident)*) => {
        $(#[$doc])*
        #[derive($($derive),*)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The raw value. Call this only to send it where it belongs.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// A CARTO access token (a JWT), sent as `Authorization: Bearer`.
    ///
    /// ```
    /// let token = carto_auth::AccessToken::new("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.Xk2q9ZsT4w");
    /// assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
    /// assert_eq!(token.masked(), "…9ZsT4w");
    /// ```
    AccessToken, Clone, PartialEq, Eq
);

secret_type!(
    /// The client secret of an M2M application, from its credentials file.
    ClientSecret, Clone
);

secret_type!(
    /// A PKCE code verifier (RFC 7636). Used once, so it is not `Clone`.
    CodeVerifier
);

secret_type!(
    /// An OAuth authorization code, exchanged once for a token.
    AuthorizationCode
);

secret_type!(
    /// The device code of a device-flow login (RFC 8628): whoever holds it
    /// gets the token once the user approves, so it is never shown. (The
    /// user code, which the user types, is not secret.)
    DeviceCode
);

/// Tokens shorter than this show nothing of themselves when masked.
const MASK_MIN_LEN: usize = 20;

impl AccessToken {
    /// An ellipsis and the last six characters: enough to tell two tokens
    /// apart on a status line, far too little to use. (Every JWT starts with
    /// the same `eyJhbG`, so the start tells nothing; the end of a JWT is
    /// its signature.) A token too short to spare six characters shows none.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < MASK_MIN_LEN {
            return "…".into();
        }
        let tail: String = chars[chars.len() - 6..].iter().collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_for_every_secret() {
        assert_eq!(
            format!("{:?}", AccessToken::new("tok-123")),
            "AccessToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", ClientSecret::new("s3cr3t")),
            "ClientSecret([redacted])"
        );
        assert_eq!(
            format!("{:?}", CodeVerifier::new("verif")),
            "CodeVerifier([redacted])"
        );
        assert_eq!(
            format!("{:?}", AuthorizationCode::new("c0de")),
            "AuthorizationCode([redacted])"
        );
        assert!(!format!("{:#?}", Some(AccessToken::new("tok-123"))).contains("tok-123"));
    }

    #[test]
    fn masked_shows_the_last_six_characters_of_long_tokens_only() {
        let a = AccessToken::new("eyJhbGciOiJSUzI1NiJ9.payload.signatureAAAAAA");
        let b = AccessToken::new("eyJhbGciOiJSUzI1NiJ9.payload.signatureBBBBBB");
        assert_eq!(a.masked(), "…AAAAAA");
        assert_ne!(a.masked(), b.masked(), "two JWTs must be told apart");
        assert_eq!(AccessToken::new("abcdefghijkl").masked(), "…");
        // Characters, not bytes: a multi-byte token must not panic.
        assert_eq!(AccessToken::new("é".repeat(25)).masked(), "…éééééé");
        assert_eq!(
            format!("{:?}", DeviceCode::new("dev-123")),
            "DeviceCode([redacted])"
        );
    }
}
