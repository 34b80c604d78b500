//! The token a map's page carries: a CARTO API Access Token that can only
//! read the map's own sources through the Maps API, and that expires.
//! Feature `notebook`.
//!
//! `POST {api}/v3/tokens` with the session's bearer and
//! `{"grants": [{"connection_name", "source"}], "referers": [],
//! "allowed_apis": ["maps"], "expiration_date": ...}`; the answer's `token`
//! is the new token. CARTO does not document the format of
//! `expiration_date` publicly: ISO 8601 in UTC is the assumption, written
//! by [`expiration_date`] alone.

use serde_json::{Value, json};

use crate::api_base_url::endpoint;
use crate::error::{Error, Result, Service};
use crate::http::{Http, describe_body, describe_json};
use crate::map::layer::Layer;
use crate::secret::AccessToken;

/// `expiration_date` as it is sent: ISO 8601 in UTC to the second,
/// `2026-12-04T12:00:00Z` (tz-rs's own `Display` writes nine fractional
/// digits, which not every parser takes).
pub(crate) fn expiration_date(unix: i64) -> String {
    match tz::UtcDateTime::from_timespec(unix, 0) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.month_day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        // Beyond year ±2^31: never a lifetime anyone sets; say so plainly.
        Err(_) => "9999-12-31T23:59:59Z".into(),
    }
}

/// The grants of a map: one per distinct connection and source.
pub(crate) fn grants(layers: &[Layer]) -> Vec<Value> {
    let mut grants: Vec<Value> = Vec::new();
    for layer in layers {
        let grant = json!({"connection_name": layer.connection(), "source": layer.source()});
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    grants
}

/// The body of the token request.
pub(crate) fn request_body(layers: &[Layer], expires_at: i64) -> Value {
    json!({
        "grants": grants(layers),
        "referers": [],
        "allowed_apis": ["maps"],
        "expiration_date": expiration_date(expires_at),
    })
}

/// `{api}/v3/tokens`.
fn tokens_url(api_base_url: &str) -> Result<String> {
    endpoint(api_base_url, &["v3", "tokens"])
}

/// Creates the map's token with the session's `bearer`.
///
/// # Errors
/// [`Error::MapTokenRefused`] for 401 and 403 (it names the opt-in to the
/// session's own token); [`Error::Status`] for other statuses;
/// [`Error::InvalidResponse`] for an answer without a token.
pub(crate) fn create(
    http: &Http,
    api_base_url: &str,
    bearer: &AccessToken,
    layers: &[Layer],
    expires_at: i64,
) -> Result<AccessToken> {
    let url = tokens_url(api_base_url)?;
    let body = request_body(layers, expires_at);
    let (status, answer) = http.post_json_raw(Service::Tokens, &url, bearer, &body)?;
    if status == 401 || status == 403 {
        return Err(Error::MapTokenRefused {
            status,
            message: error_text(&answer),
        });
    }
    if !(200..300).contains(&status) {
        return Err(crate::http::status_error(
            Service::Tokens,
            &url,
            status,
            &answer,
        ));
    }
    let json: Value = serde_json::from_slice(&answer).map_err(|_| Error::InvalidResponse {
        service: Service::Tokens,
        url: url.clone(),
        expected: "JSON with a token",
        got: format!("HTTP {status} and {}", describe_body(&answer)),
    })?;
    match json.get("token").and_then(Value::as_str) {
        Some(token) if !token.is_empty() => {
            log::info!(
                "created a map token for {} source(s), expiring at {}",
                grants(layers).len(),
                expiration_date(expires_at)
            );
            Ok(AccessToken::new(token))
        }
        _ => Err(Error::InvalidResponse {
            service: Service::Tokens,
            url,
            expected: "JSON with a token",
            got: describe_json(&json),
        }),
    }
}

/// The `error` (or `message`) text of a refusal, shortened.
fn error_text(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let text = json
        .get("error")
        .or_else(|| json.get("message"))
        .and_then(Value::as_str)?;
    Some(text.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_dates_are_iso_8601_utc_to_the_second() {
        assert_eq!(expiration_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(expiration_date(1_796_392_800), "2026-12-04T14:00:00Z");
        assert_eq!(expiration_date(951_825_600), "2000-02-29T12:00:00Z");
    }

    #[test]
    fn the_body_grants_each_source_once_for_the_maps_api_only() {
        let layers = [
            Layer::vector_query("carto_dw", "SELECT * FROM a"),
            Layer::h3_table("carto_dw", "p.d.cells", "SUM(n) AS n"),
            Layer::vector_query("carto_dw", "SELECT * FROM a").fill_color([1, 2, 3]),
        ];
        assert_eq!(
            request_body(&layers, 86_400),
            json!({
                "grants": [
                    {"connection_name": "carto_dw", "source": "SELECT * FROM a"},
                    {"connection_name": "carto_dw", "source": "p.d.cells"},
                ],
                "referers": [],
                "allowed_apis": ["maps"],
                "expiration_date": "1970-01-02T00:00:00Z",
            })
        );
    }

    #[test]
    fn the_tokens_url_keeps_the_api_path() {
        assert_eq!(
            tokens_url("http://127.0.0.1:9/api/").unwrap(),
            "http://127.0.0.1:9/api/v3/tokens"
        );
        assert!(tokens_url("not a url").is_err());
    }
}
