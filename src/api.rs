//! What comes after the login: the API base URL, CARTO Data Warehouse
//! credentials, and deck.gl layer credentials.

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

use crate::api_base_url::{ApiBaseUrl, Origin};
use crate::endpoints::{Endpoints, tenant_config_url};
use crate::error::{Error, Result, Service};
use crate::http::{Http, describe_json};
use crate::secret::AccessToken;

/// Finds the API base URL of the signed-in user: the accounts service names
/// the tenant, whose `config.yaml` names the API. `Ok(None)` when the
/// account has no `tenant_domain`: the Python package then goes on without
/// an API base URL, and so does this crate.
pub(crate) fn discover_api_base_url(
    http: &Http,
    endpoints: &Endpoints,
    token: &AccessToken,
) -> Result<Option<ApiBaseUrl>> {
    let accounts_url = endpoints.accounts_endpoint();
    let account = http.get_json(Service::Accounts, &accounts_url, Some(token))?;
    if let Some(error) = account.get("error").filter(|e| !e.is_null()) {
        return Err(Error::Status {
            service: Service::Accounts,
            url: accounts_url,
            status: 200,
            error: Some(
                error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_string),
            ),
            error_description: account
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    let Some(tenant) = account
        .get("tenant_domain")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    else {
        log::info!(
            "the accounts service names no tenant_domain ({})",
            describe_json(&account)
        );
        return Ok(None);
    };
    let config_url = tenant_config_url(tenant)?;
    let text = http.get_text(Service::TenantConfig, &config_url)?;
    let base_url = api_base_url_from_config(&text).map_err(|got| Error::InvalidResponse {
        service: Service::TenantConfig,
        url: config_url.clone(),
        expected: "YAML with apis.baseUrl",
        got,
    })?;
    let base_url = ApiBaseUrl::parse(&base_url, Origin::Discovery(&config_url))?;
    log::info!("discovered the API base URL {base_url}");
    Ok(Some(base_url))
}

/// The API base URL of a new sign-in, trying discovery twice; `None` and
/// why when it stays unknown.
pub(crate) fn discover(
    http: &Http,
    endpoints: &Endpoints,
    token: &AccessToken,
) -> (Option<ApiBaseUrl>, Option<String>) {
    let mut last = None;
    for attempt in 1..=2 {
        match discover_api_base_url(http, endpoints, token) {
            Ok(Some(url)) => return (Some(url), None),
            Ok(None) => {
                return (
                    None,
                    Some("the accounts service names no tenant for this user".into()),
                );
            }
            Err(e) => {
                log::info!("API base URL discovery failed (attempt {attempt} of 2): {e}");
                last = Some(e.to_string());
            }
        }
    }
    (None, last)
}

/// `apis.baseUrl` of a tenant's `config.yaml`, as written there (checked by
/// [`ApiBaseUrl::parse`] next).
pub(crate) fn api_base_url_from_config(text: &str) -> Result<String, String> {
    let docs =
        yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| format!("malformed YAML ({e})"))?;
    let doc = docs.first().ok_or("an empty document")?;
    let base = doc["apis"]["baseUrl"]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match base {
        Some(url) => Ok(url.to_string()),
        None if doc["apis"].is_badvalue() => Err("a document without apis".into()),
        None => Err("a document without apis.baseUrl".into()),
    }
}

/// `(project id, token)` of the CARTO Data Warehouse.
pub(crate) fn carto_dw_credentials(
    http: &Http,
    api_base_url: &str,
    token: &AccessToken,
) -> Result<(String, String)> {
    let url = format!(
        "{}/v3/connections/carto-dw/token",
        api_base_url.trim_end_matches('/')
    );
    let answer = http.get_json(Service::CartoDw, &url, Some(token))?;
    match (
        answer.get("projectId").and_then(Value::as_str),
        answer.get("token").and_then(Value::as_str),
    ) {
        (Some(project), Some(dw_token)) if !project.is_empty() && !dw_token.is_empty() => {
            Ok((project.to_string(), dw_token.to_string()))
        }
        _ => Err(Error::InvalidResponse {
            service: Service::CartoDw,
            url,
            expected: "JSON with projectId and token",
            got: describe_json(&answer),
        }),
    }
}

/// What deck.gl's `CartoLayer` takes as `credentials`. Serializes to exactly
/// `{"apiVersion":"v3","apiBaseUrl":...,"accessToken":...}`.
///
/// ```
/// let creds = carto_auth::LayerCredentials::new("https://api", "tok");
/// assert_eq!(
///     serde_json::to_string(&creds).unwrap(),
///     r#"{"apiVersion":"v3","apiBaseUrl":"https://api","accessToken":"tok"}"#
/// );
/// assert!(!format!("{creds:?}").contains("tok\""));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct LayerCredentials {
    api_version: &'static str,
    api_base_url: String,
    access_token: String,
}

impl LayerCredentials {
    /// Layer credentials for an API base URL and a token.
    pub fn new(api_base_url: impl Into<String>, access_token: impl Into<String>) -> Self {
        LayerCredentials {
            api_version: "v3",
            api_base_url: api_base_url.into(),
            access_token: access_token.into(),
        }
    }

    /// The API base URL.
    pub fn api_base_url(&self) -> &str {
        &self.api_base_url
    }

    /// The access token, to hand to deck.gl.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The JSON deck.gl takes, e.g. to paste into a JavaScript cell.
    pub fn to_json(&self) -> String {
        // Serializing three strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

// By hand rather than derived: serde's derive macro would be the only user of
// serde_derive in the tree, seconds of every notebook user's first `:dep`.
impl Serialize for LayerCredentials {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("LayerCredentials", 3)?;
        s.serialize_field("apiVersion", self.api_version)?;
        s.serialize_field("apiBaseUrl", &self.api_base_url)?;
        s.serialize_field("accessToken", &self.access_token)?;
        s.end()
    }
}

impl std::fmt::Debug for LayerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerCredentials")
            .field("api_version", &self.api_version)
            .field("api_base_url", &self.api_base_url)
            .field("access_token", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_yaml_gives_apis_base_url() {
        let yaml =
            "version: 1\napis:\n  baseUrl: https://gcp-us-east1.api.carto.com/\n  other: x\n";
        assert_eq!(
            api_base_url_from_config(yaml).unwrap(),
            "https://gcp-us-east1.api.carto.com/"
        );
    }

    #[test]
    fn bad_config_yaml_is_an_error_saying_what_is_missing() {
        assert!(
            api_base_url_from_config("apis: [unclosed")
                .unwrap_err()
                .contains("malformed")
        );
        assert!(api_base_url_from_config("").unwrap_err().contains("empty"));
        assert!(
            api_base_url_from_config("foo: 1")
                .unwrap_err()
                .contains("without apis")
        );
        assert!(
            api_base_url_from_config("apis:\n  other: 1")
                .unwrap_err()
                .contains("apis.baseUrl")
        );
    }
}
