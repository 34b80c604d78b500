//! Machine-to-machine login: the credentials file and the client-credentials
//! grant.

use std::path::Path;

use serde_json::Value;

use crate::api_base_url::{ApiBaseUrl, Origin};
use crate::endpoints::Endpoints;
use crate::error::{Error, Grant, Result};
use crate::http::Http;
use crate::secret::ClientSecret;
use crate::token::Token;

/// The contents of a CARTO M2M credentials file.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) api_base_url: ApiBaseUrl,
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
}

impl Credentials {
    /// Reads and checks the file.
    pub(crate) fn from_file(path: &Path) -> Result<Credentials> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::CredentialsRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// A missing key and an empty value are both errors that name the key
    /// and the file.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Credentials> {
        let format = |message: String| Error::CredentialsFormat {
            path: path.to_path_buf(),
            message,
        };
        // serde_json's syntax errors give a position, never the content.
        let value: Value = serde_json::from_str(text).map_err(|e| format(e.to_string()))?;
        let map = value
            .as_object()
            .ok_or_else(|| format("the top level is not an object".into()))?;
        let field = |key: &'static str| -> Result<String> {
            match map.get(key) {
                None => Err(Error::CredentialsMissingKey {
                    path: path.to_path_buf(),
                    key,
                }),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(_) => Err(Error::CredentialsEmptyValue {
                    path: path.to_path_buf(),
                    key,
                }),
            }
        };
        Ok(Credentials {
            api_base_url: ApiBaseUrl::parse(&field("api_base_url")?, Origin::File(path))?,
            client_id: field("client_id")?,
            client_secret: ClientSecret::new(field("client_secret")?),
        })
    }
}

/// Requests a token with exactly the Python package's form.
pub(crate) fn request_token(
    http: &Http,
    endpoints: &Endpoints,
    credentials: &Credentials,
) -> Result<Token> {
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", endpoints.audience.as_str()),
        ("client_id", credentials.client_id.as_str()),
        ("client_secret", credentials.client_secret.secret()),
    ];
    crate::token::request_token(http, endpoints, &form, Grant::ClientCredentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Credentials> {
        Credentials::parse(Path::new("creds.json"), text)
    }

    #[test]
    fn a_good_file() {
        let c =
            parse(r#"{"api_base_url":"https://a/","client_id":"id","client_secret":"s"}"#).unwrap();
        assert_eq!(
            (
                c.api_base_url.as_str(),
                c.client_id.as_str(),
                c.client_secret.secret()
            ),
            ("https://a", "id", "s")
        );
    }

    #[test]
    fn an_api_base_url_without_https_is_refused_naming_the_file_and_key() {
        for (url, fix) in [
            (
                "gcp-us-east1.api.carto.com",
                "Write it as https://gcp-us-east1.api.carto.com",
            ),
            (
                "http://gcp-us-east1.api.carto.com",
                "Write it as https://gcp-us-east1.api.carto.com",
            ),
        ] {
            let err = parse(&format!(
                r#"{{"api_base_url":"{url}","client_id":"id","client_secret":"s"}}"#
            ))
            .unwrap_err();
            assert!(matches!(err, Error::InvalidApiBaseUrl { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains("creds.json (key \"api_base_url\")") && msg.contains(fix),
                "{msg}"
            );
        }
        // On this machine plain http is fine (a local proxy, a test server).
        let c = parse(
            r#"{"api_base_url":"http://127.0.0.1:9/api","client_id":"id","client_secret":"s"}"#,
        )
        .unwrap();
        assert_eq!(c.api_base_url.as_str(), "http://127.0.0.1:9/api");
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
        let err = parse(r#"{"client_secret": "topsecret", "#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("creds.json") && !err.contains("topsecret"),
            "{err}"
        );
        assert!(matches!(parse("[]"), Err(Error::CredentialsFormat { .. })));
        assert!(matches!(
            parse(r#"{"api_base_url":1,"client_id":"a","client_secret":"b"}"#),
            Err(Error::CredentialsEmptyValue {
                key: "api_base_url",
                ..
            })
        ));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// The fuzz seeds (fuzz/seeds/credentials_file) and shapes the fuzzer
    /// kept: deep nesting stops at serde_json's recursion limit, escapes and
    /// lone surrogates are refused or read, never a panic.
    #[test]
    fn fuzz_seeds_and_findings_stay_fixed() {
        assert!(matches!(
            parse(&"[".repeat(100_000)),
            Err(Error::CredentialsFormat { .. })
        ));
        assert!(matches!(
            parse(&format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000))),
            Err(Error::CredentialsFormat { .. })
        ));
        for text in [
            "",
            "{}",
            "\"\\udac8\"",
            "[3e'   ",
            " 1.1e0",
            "\"\\",
            "{\"api_base_url\": \"\\udac8\"}",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        let c = parse(r#"{"api_base_url": " https://a ", "client_id": "\u0041", "client_secret": "b", "extra": {"n": [1, 2.5e10, null]}}"#).unwrap();
        assert_eq!(
            (
                c.api_base_url.as_str(),
                c.client_id.as_str(),
                c.client_secret.secret()
            ),
            ("https://a", "A", "b")
        );
        // Duplicate keys: the last wins, as in Python's json module.
        let c = parse(
            r#"{"api_base_url": "https://x", "client_id": "", "client_id": "B", "client_secret": "s"}"#,
        )
        .unwrap();
        assert_eq!(c.client_id, "B");
    }

    fn parse(text: &str) -> Result<Credentials> {
        Credentials::parse(Path::new("creds.json"), text)
    }

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panic(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn json_like_text_is_parsed_or_refused_without_panic(text in "[{}\\[\\]\":, a-z_0-9.\\\\]{0,60}") {
            let _ = parse(&text);
        }

        #[test]
        fn a_valid_file_round_trips(
            api in "https://[a-z]{1,12}(\\.[a-z]{2,5})?(:[0-9]{2,4})?(/[a-z]{1,8})?",
            id in "\\PC{1,40}",
            secret in "\\PC{1,40}",
            extra in proptest::option::of(("[a-z_]{1,10}", "\\PC{0,10}")),
        ) {
            prop_assume!(!id.trim().is_empty() && !secret.trim().is_empty());
            let mut json = serde_json::json!({"api_base_url": api, "client_id": id, "client_secret": secret});
            if let Some((k, v)) = extra
                && !["api_base_url", "client_id", "client_secret"].contains(&k.as_str())
            {
                json[k] = v.into();
            }
            let c = parse(&serde_json::to_string_pretty(&json).unwrap()).unwrap();
            prop_assert_eq!(c.api_base_url.as_str(), api.as_str());
            prop_assert_eq!(c.client_id.as_str(), id.trim());
            prop_assert_eq!(c.client_secret.secret(), secret.trim());
            let debug = format!("{c:?}");
            prop_assert!(debug.contains("ClientSecret([redacted])"), "{}", debug);
        }

        #[test]
        fn a_broken_file_never_echoes_its_secret(secret in "[A-Za-z0-9]{16,40}", cut in 0usize..200, junk in "[^\"]{0,5}") {
            let text = format!(r#"{{"api_base_url": "https://a", "client_id": "id", "client_secret": "{secret}"{junk}"#);
            let text: String = text.chars().take(cut).collect();
            if let Err(e) = parse(&text) {
                prop_assert!(!e.to_string().contains(&secret), "{}", e);
                prop_assert!(e.to_string().contains("creds.json"), "{}", e);
            }
        }

        #[test]
        fn a_missing_or_empty_key_is_named(key in prop::sample::select(vec!["api_base_url", "client_id", "client_secret"]), blank in "[ \t]{0,3}", drop in any::<bool>()) {
            let mut json = serde_json::json!({"api_base_url": "https://a", "client_id": "id", "client_secret": "s"});
            if drop {
                json.as_object_mut().unwrap().remove(key);
            } else {
                json[key] = blank.into();
            }
            match parse(&json.to_string()) {
                Err(Error::CredentialsMissingKey { key: k, .. }) => prop_assert!(drop && k == key),
                Err(Error::CredentialsEmptyValue { key: k, .. }) => prop_assert!(!drop && k == key),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
