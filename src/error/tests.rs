//! Every message: what it says, and that it says it once.
use super::*;

fn status(grant: Grant) -> String {
    Error::Status {
        service: Service::Token(grant),
        url: "https://auth.carto.com/oauth/token".into(),
        status: 401,
        error: Some("access_denied".into()),
        error_description: Some("Unauthorized".into()),
    }
    .to_string()
}

#[test]
fn token_errors_give_the_hint_of_their_grant_only() {
    let m2m = status(Grant::ClientCredentials);
    assert!(m2m.contains("token endpoint"), "{m2m}");
    assert!(
        m2m.contains("HTTP 401 (access_denied: Unauthorized)"),
        "{m2m}"
    );
    assert!(
        m2m.contains("credentials file") && !m2m.contains("sign in again"),
        "{m2m}"
    );
    let code = status(Grant::AuthorizationCode);
    assert!(
        code.contains("sign in again") && !code.contains("credentials file"),
        "{code}"
    );
    let device = status(Grant::DeviceCode);
    assert!(
        device.contains("start the login again") && !device.contains("credentials"),
        "{device}"
    );
}

#[test]
fn credentials_errors_name_the_file_and_the_key() {
    let e = Error::CredentialsMissingKey {
        path: "/tmp/creds.json".into(),
        key: "client_secret",
    };
    let msg = e.to_string();
    assert!(
        msg.contains("/tmp/creds.json") && msg.contains("\"client_secret\""),
        "{msg}"
    );
}

#[test]
fn sql_errors_name_the_connection_and_what_to_check() {
    let e = |status| {
        Error::Sql {
            connection: "my_bq".into(),
            status,
            message: Some("Table not found".into()),
        }
        .to_string()
    };
    assert!(
        e(404).contains("no connection named \"my_bq\""),
        "{}",
        e(404)
    );
    assert!(
        e(403).contains("log in again") && e(403).contains("permissions"),
        "{}",
        e(403)
    );
    assert!(e(400).contains("Table not found"), "{}", e(400));
}

/// Every variant, every service and every optional part: the messages
/// a user can meet.
fn every_error() -> Vec<Error> {
    let services = [
        Service::Token(Grant::AuthorizationCode),
        Service::Token(Grant::ClientCredentials),
        Service::Token(Grant::DeviceCode),
        Service::DeviceAuthorization,
        Service::Accounts,
        Service::TenantConfig,
        Service::CartoDw,
        Service::SqlApi,
        Service::BigQuery,
    ];
    let url = || "https://example.carto.com/path".to_string();
    let errors = [None, Some("access_denied".to_string())];
    let descriptions = [None, Some("User cancelled".to_string())];
    let mut all = Vec::new();
    for service in services {
        all.push(Error::Network {
            service,
            url: url(),
            message: "error sending request: connection refused".into(),
            source: None,
        });
        for error in &errors {
            for error_description in &descriptions {
                all.push(Error::Status {
                    service,
                    url: url(),
                    status: 401,
                    error: error.clone(),
                    error_description: error_description.clone(),
                });
            }
        }
        all.push(Error::InvalidResponse {
            service,
            url: url(),
            expected: "JSON",
            got: "HTTP 200 and HTML (5 bytes)".into(),
        });
    }
    for description in [None, Some("User cancelled".to_string())] {
        all.push(Error::Authorization {
            error: "access_denied".into(),
            description,
        });
    }
    all.push(Error::IssuerMismatch {
        expected: "https://auth.carto.com/".into(),
        got: "https://evil.example/".into(),
    });
    all.push(Error::NoAnswer {
        hint: "Paste the address",
    });
    for reason in [None, Some("the token expired".to_string())] {
        all.push(Error::NoInput {
            reason,
            hint: "Use the two-step login",
        });
    }
    all.push(Error::NoCode { what: "no code=" });
    all.push(Error::LoginTimeout {
        redirect_uri: "http://localhost:10000/callback/".into(),
        waited: Duration::from_secs(120),
    });
    all.push(Error::DeviceCodeExpired {
        waited: Duration::from_secs(600),
    });
    for state in ["completed", "cancelled", "timed out"] {
        all.push(Error::LoginFinished { state });
    }
    all.push(Error::AccountChanged {
        expected: "auth0|ana".into(),
        got: "auth0|ben".into(),
    });
    for expired_secs_ago in [0, 30, 600, 10_000] {
        all.push(Error::TokenExpired {
            source_name: "in CARTO_API_TOKEN".into(),
            expired_secs_ago,
            remedy: "Get a new token",
        });
    }
    let path = || PathBuf::from("/tmp/creds.json");
    all.push(Error::CredentialsRead {
        path: path(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    });
    all.push(Error::CredentialsFormat {
        path: path(),
        message: "expected value at line 1 column 1".into(),
    });
    all.push(Error::CredentialsMissingKey {
        path: path(),
        key: "client_id",
    });
    all.push(Error::CredentialsEmptyValue {
        path: path(),
        key: "client_id",
    });
    for why in [None, Some("the accounts service failed".to_string())] {
        all.push(Error::NoApiBaseUrl { why });
    }
    for status in [400, 401, 403, 404, 500] {
        for message in [None, Some("Table not found".to_string())] {
            all.push(Error::Sql {
                connection: "carto_dw".into(),
                status,
                message: message.clone(),
            });
            all.push(Error::BigQuery {
                status,
                reason: message.as_ref().map(|_| "notFound".to_string()),
                message,
            });
        }
    }
    all.push(Error::InvalidSetting {
        what: "CARTO_API_BASE_URL".into(),
        value: "ftp://x".into(),
        reason: "an https URL was expected",
    });
    all.push(Error::Cache {
        path: "/tmp/token.json".into(),
        reason: "not JSON".into(),
        source: None,
    });
    all.push(Error::Deserialize {
        message: "missing field `id`".into(),
    });
    all.push(Error::Input(std::io::Error::from(
        std::io::ErrorKind::UnexpectedEof,
    )));
    all.push(Error::Setup {
        what: "the HTTP client",
        message: "no TLS roots".into(),
        source: None,
    });
    all
}

/// Where a message says a word twice in a row ("the CARTO CARTO Data
/// Warehouse") or has a run of spaces (a line continuation lost).
fn misprint(message: &str) -> Option<String> {
    if let Some(at) = message.find("  ") {
        return Some(format!("a run of spaces at {at}"));
    }
    let words: Vec<String> = message
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect();
    words
        .windows(2)
        .find(|pair| !pair[0].is_empty() && pair[0] == pair[1])
        .map(|pair| format!("{:?} twice", pair[0]))
}

#[test]
fn the_misprint_check_finds_what_it_looks_for() {
    assert!(misprint("the CARTO CARTO Data Warehouse").is_some());
    assert!(misprint("so  its token").is_some());
    assert!(misprint("the CARTO Data Warehouse (HTTP 401): log in").is_none());
}

#[test]
fn no_message_repeats_a_word_or_has_a_run_of_spaces() {
    let all = every_error();
    assert!(all.len() > 60, "{}", all.len());
    for error in all {
        let message = error.to_string();
        if let Some(what) = misprint(&message) {
            panic!("{what} in: {message}");
        }
    }
}

#[test]
fn no_input_says_why_a_sign_in_was_needed() {
    let e = Error::NoInput {
        reason: Some("the cached token is another account's".into()),
        hint: "use the two-step login",
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "Signing in to CARTO again is needed (the cached token is another account's)"
        ),
        "{msg}"
    );
}
