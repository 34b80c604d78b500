//! The one place requests are sent and answers are judged: ureq, blocking,
//! one agent per session so that connections are reused from call to call
//! (and from notebook cell to notebook cell: ureq needs no runtime).

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::error::{Error, Result, Service};
use crate::secret::AccessToken;

/// Default for both the whole request and (capped at 10 s) the connection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longer than this is no deadline at all: a timer that far off could
/// overflow an `Instant`.
const NO_DEADLINE_BEYOND: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A timeout as ureq takes it: `None` for none.
fn within(timeout: Duration) -> Option<Duration> {
    (timeout < NO_DEADLINE_BEYOND).then_some(timeout)
}

/// A configured HTTP agent. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
    timeout: Duration,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// An agent with rustls on the *ring* provider and the platform's
    /// certificate verifier, set on this agent only: the process-wide
    /// default provider is left to the host program (and any other `:dep`
    /// of the same kernel), and one it installs never replaces ours. The
    /// proxy is [`proxy_from_env`]'s.
    pub(crate) fn new(timeout: Duration) -> Http {
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::PlatformVerifier)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            // The whole request's timeout is set on each request (`timed`).
            .timeout_connect(within(timeout.min(Duration::from_secs(10))))
            // A 4xx answer is judged here: its body often says why.
            .http_status_as_error(false)
            .proxy(proxy_from_env())
            .user_agent(concat!("carto-auth-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http { agent, timeout }
    }

    /// The same agent and connections, with a request timeout of at least
    /// `timeout` (the SQL API's queries run for up to a minute).
    pub(crate) fn at_least(&self, timeout: Duration) -> Http {
        self.with_timeout(self.timeout.max(timeout))
    }

    /// The same agent and connections, with this request timeout (what is
    /// left of a BigQuery query's time).
    pub(crate) fn with_timeout(&self, timeout: Duration) -> Http {
        Http {
            agent: self.agent.clone(),
            timeout,
        }
    }

    /// The request timeout of this handle, set on each request: handles of
    /// one agent may differ.
    fn timed<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        request
            .config()
            .timeout_global(within(self.timeout))
            .build()
    }

    /// `GET`, optionally with a bearer token, expecting JSON.
    pub(crate) fn get_json(
        &self,
        service: Service,
        url: &str,
        bearer: Option<&AccessToken>,
    ) -> Result<Value> {
        let (status, body) = self.get_raw(service, url, bearer)?;
        json_answer(service, url, status, &body)
    }

    /// `GET`, optionally with a bearer token; the status and body as they
    /// came.
    pub(crate) fn get_raw(
        &self,
        service: Service,
        url: &str,
        bearer: Option<&AccessToken>,
    ) -> Result<(u16, Vec<u8>)> {
        self.send(service, url, || {
            let mut request = self.timed(self.agent.get(url));
            if let Some(token) = bearer {
                request = request.header("Authorization", bearer_header(token));
            }
            request.call()
        })
    }

    /// `POST` of a form, expecting JSON.
    pub(crate) fn post_form(
        &self,
        service: Service,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Value> {
        let (status, body) = self.post_form_raw(service, url, form)?;
        json_answer(service, url, status, &body)
    }

    /// `POST` of a form; the status and body as they came, for protocols
    /// whose 4xx answers carry meaning (the device flow's polling).
    pub(crate) fn post_form_raw(
        &self,
        service: Service,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>)> {
        let body = form_body(form);
        self.send(service, url, || {
            self.timed(self.agent.post(url))
                .content_type("application/x-www-form-urlencoded")
                .send(body.as_bytes())
        })
    }

    /// `POST` of a JSON body with a bearer token; the status and body as
    /// they came (the SQL API's errors are its own).
    pub(crate) fn post_json_raw(
        &self,
        service: Service,
        url: &str,
        bearer: &AccessToken,
        body: &Value,
    ) -> Result<(u16, Vec<u8>)> {
        let body = body.to_string();
        self.send(service, url, || {
            self.timed(self.agent.post(url))
                .header("Authorization", bearer_header(bearer))
                .content_type("application/json")
                .send(body.as_bytes())
        })
    }

    /// `GET` of a text document.
    pub(crate) fn get_text(&self, service: Service, url: &str) -> Result<String> {
        let (status, body) = self.get_raw(service, url, None)?;
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

    fn send(
        &self,
        service: Service,
        url: &str,
        request: impl FnOnce() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Vec<u8>)> {
        let network = |e: ureq::Error| {
            let timed_out = matches!(e, ureq::Error::Timeout(_));
            let message = if timed_out {
                format!("no answer within {} s", seconds(self.timeout))
            } else {
                chain(&e)
            };
            // A bad URI error quotes the URI, which can carry a code or a
            // state: neither its text nor it as the cause.
            let (message, source): (String, Option<Box<dyn std::error::Error + Send + Sync>>) =
                match e {
                    ureq::Error::BadUri(_) => ("not a valid URL".into(), None),
                    e => (message, Some(Box::new(e))),
                };
            Error::Network {
                service,
                url: without_query(url),
                message,
                source,
            }
        };
        let mut response = request().map_err(network)?;
        let status = response.status().as_u16();
        // No size limit of ours: a query's answer may be large.
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(network)?;
        log::debug!("{service} answered HTTP {status} ({} bytes)", body.len());
        Ok((status, body))
    }
}

/// The proxy for this crate's requests, which are all HTTPS but on
/// loopback: `ALL_PROXY` or `HTTPS_PROXY` (either case), with `NO_PROXY`,
/// as curl and the Python package's requests read them. `HTTP_PROXY` alone
/// is for plain-HTTP traffic, so it is not used (ureq alone would send
/// HTTPS through it too).
fn proxy_from_env() -> Option<ureq::Proxy> {
    let set: Vec<&str> = ["ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"]
        .into_iter()
        .filter(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        .collect();
    if set.is_empty() {
        return None;
    }
    let proxy = ureq::Proxy::try_from_env();
    if proxy.is_none() {
        log::warn!(
            "{} is not a proxy address (http://host:port, https://, socks5://): requests go direct",
            set.join(" / ")
        );
    }
    proxy
}

fn bearer_header(token: &AccessToken) -> String {
    format!("Bearer {}", token.secret())
}

/// `application/x-www-form-urlencoded`, byte for byte as the Python
/// package sends it (requests encodes a form, and the package its authorize
/// URL, with `urllib.parse.urlencode`, that is `quote_plus`): RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) as they are, a space as
/// `+`, every other byte of the UTF-8 as `%XX` in upper case. The WHATWG
/// serializer of `url` (and of reqwest) differs on two characters, writing
/// `~` as `%7E` and leaving `*` as it is; a server decodes both alike, but
/// the bytes are the Python package's so that the two can be compared
/// request for request (tests/wire.rs).
pub(crate) fn form_body(form: &[(&str, &str)]) -> String {
    const QUOTE_PLUS: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    // A space is encoded `%20` first, then written `+`: a literal `%20` in
    // the text is `%2520` by then, so nothing else turns into `+`.
    let quote = |text: &str| {
        utf8_percent_encode(text, QUOTE_PLUS)
            .to_string()
            .replace("%20", "+")
    };
    form.iter()
        .map(|(key, value)| format!("{}={}", quote(key), quote(value)))
        .collect::<Vec<_>>()
        .join("&")
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

/// An error and all its causes on one line: the outer message alone does
/// not always say what to fix.
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

    /// A loopback server that takes each of `n` connections and closes it
    /// unanswered.
    fn hanging_up_server(n: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..n {
                if let Ok((stream, _)) = listener.accept() {
                    drop(stream);
                }
            }
        });
        (addr, server)
    }

    #[test]
    fn the_process_default_crypto_provider_is_left_alone() {
        // An https request makes ureq build its TLS set-up from ours.
        let (addr, server) = hanging_up_server(1);
        let err = Http::new(DEFAULT_TIMEOUT)
            .get_json(Service::Accounts, &format!("https://{addr}/"), None)
            .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    }

    #[test]
    fn a_network_error_keeps_the_http_clients_error_without_its_url() {
        use std::error::Error as _;
        let (addr, server) = hanging_up_server(1);
        let url = format!("http://{addr}/callback?code=the-code&state=the-state");
        let err = Http::new(DEFAULT_TIMEOUT)
            .get_json(Service::Accounts, &url, None)
            .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        let cause = err
            .source()
            .and_then(|s| s.downcast_ref::<ureq::Error>())
            .unwrap_or_else(|| panic!("no ureq::Error as the source of {err:?}"));
        // Neither the code nor the state of the URL, anywhere.
        for text in [
            err.to_string(),
            format!("{err:?}"),
            cause.to_string(),
            format!("{cause:?}"),
        ] {
            assert!(
                !text.contains("the-code") && !text.contains("the-state"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_url_that_cannot_be_sent_is_not_quoted() {
        let err = Http::new(DEFAULT_TIMEOUT)
            .get_json(Service::Accounts, "http://exa mple/cb?code=the-code", None)
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("the-code"), "{text}");
    }

    #[test]
    fn a_silent_server_is_a_timeout_in_the_sessions_seconds() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepted by the kernel's backlog, never answered.
        let err = Http::new(Duration::from_millis(300))
            .get_json(Service::Accounts, &format!("http://{addr}/"), None)
            .unwrap_err()
            .to_string();
        drop(listener);
        assert!(err.contains("no answer within 0.3 s"), "{err}");
    }

    #[test]
    fn timeouts_too_long_for_a_clock_mean_no_deadline_not_a_panic() {
        let (addr, server) = hanging_up_server(1);
        let err = Http::new(Duration::MAX)
            .get_json(Service::Accounts, &format!("http://{addr}/"), None)
            .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
    }

    #[test]
    fn forms_are_encoded_as_the_python_package_encodes_them() {
        assert_eq!(
            form_body(&[("grant_type", "authorization_code"), ("x", "a b&c=d+é/")]),
            "grant_type=authorization_code&x=a+b%26c%3Dd%2B%C3%A9%2F"
        );
        // What requests 2.x on Python 3 sent for every printable ASCII
        // character and some beyond (tests/wire.rs): `~` as it is, `*` as
        // `%2A`, where the WHATWG serializer does the reverse.
        let ascii: String = ('!'..='~').collect();
        assert_eq!(
            form_body(&[("k~*", &format!("a b{ascii}é€😀"))]),
            "k~%2A=a+b%21%22%23%24%25%26%27%28%29%2A%2B%2C-.%2F0123456789%3A%3B%3C%3D%3E%3F%40\
             ABCDEFGHIJKLMNOPQRSTUVWXYZ%5B%5C%5D%5E_%60abcdefghijklmnopqrstuvwxyz%7B%7C%7D~\
             %C3%A9%E2%82%AC%F0%9F%98%80"
        );
        assert_eq!(form_body(&[]), "");
        assert_eq!(form_body(&[("", "")]), "=");
    }

    proptest::proptest! {
        /// Whatever the pairs, a form decoder gives them back, in order.
        #[test]
        fn any_form_decodes_to_its_pairs(pairs in proptest::collection::vec((".*", ".*"), 0..5)) {
            let form: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let body = form_body(&form);
            let back: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            proptest::prop_assert_eq!(back, pairs);
        }
    }

    #[test]
    fn timeouts_are_said_in_seconds_with_a_fraction_when_needed() {
        assert_eq!(seconds(Duration::from_secs(30)), "30");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
    }
}
