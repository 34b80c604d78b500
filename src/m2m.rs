//! Machine-to-machine login: the credentials file and the client-credentials
//! grant.

use std::path::Path;

use serde_json::Value;

use crate::endpoints::Endpoints;
use crate::error::{Error, Result, Service};
use crate::http::Http;
use crate::secret::ClientSecret;
use crate::token::{Token, now_unix};

/// The contents of a CARTO M2M credentials file.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) api_base_url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
}

impl Credentials {
    /// Reads and checks the file.
    pub(crate) fn from_file(path: &Path) -> Result<Credentials> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::CredentialsRead { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// A missing key and an empty value are both errors that name the key
    /// and the file.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Credentials> {
        let format = |message: String| Error::CredentialsFormat { path: path.to_path_buf(), message };
        // serde_json's syntax errors give a position, never the content.
        let value: Value = serde_json::from_str(text).map_err(|e| format(e.to_string()))?;
        let map = value.as_object().ok_or_else(|| format("the top level is not an object".into()))?;
        let field = |key: &'static str| -> Result<String> {
            match map.get(key) {
                None => Err(Error::CredentialsMissingKey { path: path.to_path_buf(), key }),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(_) => Err(Error::CredentialsEmptyValue { path: path.to_path_buf(), key }),
            }
        };
        Ok(Credentials {
            api_base_url: field("api_base_url")?,
            client_id: field("client_id")?,
            client_secret: ClientSecret::new(field("client_secret")?),
        })
    }
}

/// Requests a token with exactly the Python package's form.
pub(crate) async fn request_token(http: &Http, endpoints: &Endpoints, credentials: &Credentials) -> Result<Token> {
    let url = endpoints.token_url();
    let answer = http
        .post_form(
            Service::Token,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("audience", &endpoints.audience),
                ("client_id", &credentials.client_id),
                ("client_secret", credentials.client_secret.secret()),
            ],
        )
        .await?;
    log::info!("token endpoint issued an M2M token");
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

    fn parse(text: &str) -> Result<Credentials> {
        Credentials::parse(Path::new("creds.json"), text)
    }

    #[test]
    fn a_good_file() {
        let c = parse(r#"{"api_base_url":"https://a","client_id":"id","client_secret":"s"}"#).unwrap();
        assert_eq!((c.api_base_url.as_str(), c.client_id.as_str(), c.client_secret.secret()), ("https://a", "id", "s"));
    }

    #[test]
    fn each_missing_or_empty_key_is_named() {
        for key in ["api_base_url", "client_id", "client_secret"] {
            let mut map = serde_json::json!({"api_base_url":"https://a","client_id":"id","client_secret":"s"});
            map.as_object_mut().unwrap().remove(key);
            match parse(&map.to_string()) {
                Err(Error::CredentialsMissingKey { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
            map[key] = "".into();
            match parse(&map.to_string()) {
                Err(Error::CredentialsEmptyValue { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn broken_json_does_not_echo_the_secret() {
        let err = parse(r#"{"client_secret": "topsecret", "#).unwrap_err().to_string();
        assert!(err.contains("creds.json") && !err.contains("topsecret"), "{err}");
        assert!(matches!(parse("[]"), Err(Error::CredentialsFormat { .. })));
        assert!(matches!(parse(r#"{"api_base_url":1,"client_id":"a","client_secret":"b"}"#), Err(Error::CredentialsEmptyValue { key: "api_base_url", .. })));
    }
}
