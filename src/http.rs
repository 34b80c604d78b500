//! The one place requests are sent and answers are judged.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt as _;

use serde_json::Value;

use crate::error::{Error, Result, Service};
use crate::secret::AccessToken;

/// Default for both the whole request and (capped at 10 s) the connection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A configured HTTP client. Built lazily: a cached token never pays for TLS
/// set-up.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Http> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            // Each blocking call runs on a runtime of its own; a pooled
            // connection would outlive the runtime that drives it.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("carto-auth-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Setup {
                what: "the HTTP client",
                message: chain(&e),
                source: Some(Box::new(e)),
            })?;
        Ok(Http { client, timeout })
    }

    /// `GET`, optionally with a bearer token, expecting JSON.
    pub(crate) async fn get_json(
        &self,
        service: Service,
        url: &str,
        bearer: Option<&AccessToken>,
    ) -> Result<Value> {
        let mut request = self.client.get(url);
        if let Some(token) = bearer {
            // bearer_auth marks the header sensitive, so it is never logged.
            request = request.bearer_auth(token.secret());
        }
        let (status, body) = self.send(service, url, request).await?;
        json_answer(service, url, status, &body)
    }

    /// `POST` of a form, expecting JSON.
    pub(crate) async fn post_form(
        &self,
        service: Service,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Value> {
        let (status, body) = self
            .send(service, url, self.client.post(url).form(form))
            .await?;
        json_answer(service, url, status, &body)
    }

    /// `POST` of a form; the status and body as they came, for protocols
    /// whose 4xx answers carry meaning (the device flow's polling).
    pub(crate) async fn post_form_raw(
        &self,
        service: Service,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>)> {
        self.send(service, url, self.client.post(url).form(form))
            .await
    }

    /// `POST` of a JSON body with a bearer token; the status and body as
    /// they came (the SQL API's errors are its own).
    pub(crate) async fn post_json_raw(
        &self,
        service: Service,
        url: &str,
        bearer: &AccessToken,
        body: &Value,
    ) -> Result<(u16, Vec<u8>)> {
        let request = self
            .client
            .post(url)
            .bearer_auth(bearer.secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.send(service, url, request).await
    }

    /// `GET` of a text document.
    pub(crate) async fn get_text(&self, service: Service, url: &str) -> Result<String> {
        let (status, body) = self.send(service, url, self.client.get(url)).await?;
        if !(200..300).contains(&status) {
            return Err(status_error(service, url, status, &body));
        }
        // A gateway's or captive portal's page, or nothing, is no document:
        // say so rather than "YAML without apis".
        let shape = describe_body(&body);
        if shape.starts_with("HTML") || shape == "an empty body" {
            return Err(Error::InvalidResponse {
                service,
                url: without_query(url),
                expected: "a YAML document",
                got: format!("HTTP {status} and {shape}"),
            });
        }
        String::from_utf8(body).map_err(|_| Error::InvalidResponse {
            service,
            url: without_query(url),
            expected: "a UTF-8 text document",
            got: "binary data".into(),
        })
    }

    async fn send(
        &self,
        service: Service,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>)> {
        let network = |e: reqwest::Error| {
            // Our URLs can carry a code or a state: drop them from the error,
            // which is kept as the cause.
            let e = e.without_url();
            Error::Network {
                service,
                url: without_query(url),
                message: if e.is_timeout() {
                    format!("no answer within {} s", seconds(self.timeout))
                } else {
                    chain(&e)
                },
                source: Some(Box::new(e)),
            }
        };
        let response = request.send().await.map_err(network)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(network)?;
        log::debug!("{service} answered HTTP {status} ({} bytes)", body.len());
        Ok((status, body.to_vec()))
    }

    /// `GET`, optionally with a bearer token; the status and body as they
    /// came (BigQuery's errors are its own).
    #[cfg_attr(not(feature = "carto-dw"), allow(dead_code))]
    pub(crate) async fn get_raw(
        &self,
        service: Service,
        url: &str,
        bearer: Option<&AccessToken>,
    ) -> Result<(u16, Vec<u8>)> {
        let mut request = self.client.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token.secret());
        }
        self.send(service, url, request).await
    }
}

/// This crate's TLS set-up: rustls with the *ring* provider and the
/// platform's roots, made once per process. It is handed to reqwest as is,
/// so the process-wide default provider stays unset for the host program
/// (and any other `:dep` of the same kernel) to install its own.
pub(crate) fn tls_config() -> Result<rustls::ClientConfig> {
    static CONFIG: OnceLock<std::result::Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .and_then(|b| b.with_platform_verifier())
                .map(|b| b.with_no_client_auth())
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|message| Error::Setup {
            what: "TLS (rustls with the platform's certificate roots)",
            message,
            source: None,
        })
}

/// A URL for an error message: a query can carry a code or a state.
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_string()
}

/// "30", "0.5": whole seconds without a fraction.
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

/// An error and all its causes on one line: reqwest's own message alone
/// ("error sending request") does not say what to fix.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn json_answer(service: Service, url: &str, status: u16, body: &[u8]) -> Result<Value> {
    if !(200..300).contains(&status) {
        return Err(status_error(service, url, status, body));
    }
    serde_json::from_slice(body).map_err(|_| Error::InvalidResponse {
        service,
        url: without_query(url),
        expected: "JSON",
        got: format!("HTTP {status} and {}", describe_body(body)),
    })
}

pub(crate) fn status_error(service: Service, url: &str, status: u16, body: &[u8]) -> Error {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(Value::as_str)
            .map(|s| s.chars().take(300).collect::<String>())
    };
    Error::Status {
        service,
        url: without_query(url),
        status,
        error: field("error"),
        error_description: field("error_description").or_else(|| field("message")),
    }
}

/// The shape of a body that is not JSON, for an error message.
pub(crate) fn describe_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        "an empty body".into()
    } else if trimmed.starts_with('<') {
        format!("HTML ({} bytes)", body.len())
    } else {
        format!("non-JSON text ({} bytes)", body.len())
    }
}

/// The shape of a JSON value (its keys, never its values), for an error
/// message: a token endpoint's odd answer may still hold a token.
pub(crate) fn describe_json(value: &Value) -> String {
    match value {
        Value::Object(map) if map.is_empty() => "an empty JSON object".into(),
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            format!("a JSON object with keys {}", keys.join(", "))
        }
        Value::Array(_) => "a JSON array".into(),
        Value::String(_) => "a JSON string".into(),
        Value::Number(_) => "a JSON number".into(),
        Value::Bool(_) => "a JSON boolean".into(),
        Value::Null => "JSON null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn non_json_bodies_are_described_by_shape() {
        assert_eq!(describe_body(b""), "an empty body");
        assert_eq!(describe_body(b"  <html>hi</html>"), "HTML (17 bytes)");
        assert_eq!(describe_body(b"oops"), "non-JSON text (4 bytes)");
    }

    #[test]
    fn json_is_described_by_keys_not_values() {
        let d = describe_json(&json!({"token": "sekret", "x": 1}));
        assert_eq!(d, "a JSON object with keys token, x");
    }

    #[test]
    fn status_errors_carry_the_servers_words() {
        let body = br#"{"error":"access_denied","error_description":"Unauthorized"}"#;
        match status_error(
            Service::Token(crate::error::Grant::ClientCredentials),
            "u",
            403,
            body,
        ) {
            Error::Status {
                status,
                error,
                error_description,
                ..
            } => {
                assert_eq!(status, 403);
                assert_eq!(error.as_deref(), Some("access_denied"));
                assert_eq!(error_description.as_deref(), Some("Unauthorized"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_2xx_non_json_answer_is_an_invalid_response() {
        let err = json_answer(Service::Accounts, "u", 200, b"<html>")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTP 200 and HTML") && err.contains("not JSON"),
            "{err}"
        );
    }

    #[test]
    fn the_process_default_crypto_provider_is_left_alone() {
        let http = Http::new(DEFAULT_TIMEOUT);
        assert!(http.is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    }

    /// A loopback server that takes each connection and closes it unanswered.
    fn hanging_up_server() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                drop(stream);
            }
        });
        (addr, server)
    }

    #[tokio::test]
    async fn a_network_error_keeps_the_http_clients_error_without_its_url() {
        use std::error::Error as _;
        let (addr, server) = hanging_up_server();
        let url = format!("http://{addr}/callback?code=the-code&state=the-state");
        let err = Http::new(DEFAULT_TIMEOUT)
            .unwrap()
            .get_json(Service::Accounts, &url, None)
            .await
            .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        let cause = err
            .source()
            .and_then(|s| s.downcast_ref::<reqwest::Error>())
            .unwrap_or_else(|| panic!("no reqwest::Error as the source of {err:?}"));
        assert!(cause.url().is_none(), "{cause:?}");
        let cause_text = cause.to_string();
        assert!(!cause_text.contains(&addr.to_string()), "{cause_text}");
        // Neither the code nor the state of the URL, anywhere.
        for text in [err.to_string(), format!("{err:?}"), cause_text] {
            assert!(
                !text.contains("the-code") && !text.contains("the-state"),
                "{text}"
            );
        }
    }

    #[test]
    fn timeouts_are_said_in_seconds_with_a_fraction_when_needed() {
        assert_eq!(seconds(Duration::from_secs(30)), "30");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
    }
}
