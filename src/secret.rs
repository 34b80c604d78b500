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
    /// let token = carto_auth::AccessToken::new("eyJhbGciOi.secret");
    /// assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
    /// assert_eq!(token.masked(), "eyJhbG…");
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

impl AccessToken {
    /// The first six characters and an ellipsis: enough to tell two tokens
    /// apart on a status line, far too little to use.
    pub fn masked(&self) -> String {
        let head: String = self.0.chars().take(6).collect();
        format!("{head}…")
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
    fn masked_keeps_six_characters_at_most() {
        assert_eq!(AccessToken::new("abcdefghijkl").masked(), "abcdef…");
        assert_eq!(AccessToken::new("abc").masked(), "abc…");
        // Characters, not bytes: a multi-byte token must not panic.
        assert_eq!(AccessToken::new("ééééééé").masked(), "éééééé…");
    }
}
