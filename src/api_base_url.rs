//! The API base URL: parsed once, where it enters (a builder option,
//! `CARTO_API_BASE_URL`, a credentials file, a cache file, discovery,
//! [`CartoAuth::from_token`](crate::CartoAuth::from_token)), into one type
//! that every request then trusts.
//!
//! Bearer tokens go to this address, so it must be `https://`. Plain
//! `http://` is allowed on this machine only (`localhost`, `127.0.0.0/8`,
//! `::1`): a local proxy, a test server.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use crate::error::{Error, Result};

/// How every message shows an API base URL that is right.
const EXAMPLE: &str = "https://gcp-us-east1.api.carto.com";

/// A checked API base URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiBaseUrl(String);

/// Where an API base URL came from, as an error names it.
pub(crate) enum Origin<'a> {
    /// `.api_base_url(..)` of a builder (or the CLI's `--api-base-url`).
    Builder,
    /// An environment variable.
    Variable(&'static str),
    /// The key `api_base_url` of a file.
    File(&'a Path),
    /// `apis.baseUrl` of a tenant's `config.yaml`, at this address.
    Discovery(&'a str),
    /// [`CartoAuth::from_token`](crate::CartoAuth::from_token).
    FromToken,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builder => f.write_str("given to .api_base_url(..) (--api-base-url)"),
            Origin::Variable(name) => write!(f, "in {name}"),
            Origin::File(path) => write!(f, "in {} (key \"api_base_url\")", path.display()),
            Origin::Discovery(url) => write!(f, "discovered in {url} (apis.baseUrl)"),
            Origin::FromToken => f.write_str("given to CartoAuth::from_token"),
        }
    }
}

/// Why a value is not an API base URL, and what it should be instead.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) what: &'static str,
    pub(crate) instead: String,
}

impl ApiBaseUrl {
    /// Checks `value` (surrounding blanks and trailing slashes dropped).
    ///
    /// # Errors
    /// [`Error::InvalidApiBaseUrl`], naming `origin`, saying what is wrong
    /// and how to write it.
    pub(crate) fn parse(value: &str, origin: Origin<'_>) -> Result<ApiBaseUrl> {
        Self::check(value).map_err(|problem| Error::InvalidApiBaseUrl {
            origin: origin.to_string(),
            value: value.to_string(),
            problem: problem.what,
            instead: problem.instead,
        })
    }

    /// [`parse`](Self::parse) without an origin: the problem alone.
    pub(crate) fn check(value: &str) -> Result<ApiBaseUrl, Problem> {
        let given = value.trim();
        let value = given.trim_end_matches('/');
        let generic = || EXAMPLE.to_string();
        let Some((_, rest)) = given.split_once("://") else {
            // "gcp-us-east1.api.carto.com": the usual slip, copied without
            // its scheme.
            let looks_like_a_host = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:/[]".contains(c));
            return Err(Problem {
                what: "it has no https:// in front",
                instead: if looks_like_a_host {
                    format!("https://{value}")
                } else {
                    generic()
                },
            });
        };
        let url = url::Url::parse(value).map_err(|_| Problem {
            what: "it is not a URL",
            instead: generic(),
        })?;
        let host = url.host().ok_or_else(|| Problem {
            what: "it names no host",
            instead: generic(),
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Problem {
                what: "it holds a user name or password",
                instead: generic(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Problem {
                what: "it has a query (?) or fragment (#)",
                instead: generic(),
            });
        }
        let as_https = || format!("https://{}", rest.trim_end_matches('/'));
        match url.scheme() {
            "https" => Ok(ApiBaseUrl(value.to_string())),
            "http" if is_loopback(&host) => Ok(ApiBaseUrl(value.to_string())),
            "http" => Err(Problem {
                what: "http:// would send the access token unencrypted (only this machine, \
                       localhost or 127.0.0.1, may use http://)",
                instead: as_https(),
            }),
            _ => Err(Problem {
                what: "only https:// URLs are accepted",
                instead: as_https(),
            }),
        }
    }

    /// The URL, e.g. `https://gcp-us-east1.api.carto.com`.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// `{api}/{segments}`, each segment encoded as one path segment (a `/` or
/// `?` in a connection name cannot reach another endpoint), the API's own
/// path kept.
pub(crate) fn endpoint(api_base_url: &str, segments: &[&str]) -> Result<String> {
    let invalid = |reason| Error::InvalidSetting {
        what: "the API base URL".into(),
        value: api_base_url.into(),
        reason,
    };
    let mut url = url::Url::parse(api_base_url).map_err(|_| {
        invalid("an http(s) URL such as https://gcp-us-east1.api.carto.com was expected")
    })?;
    url.path_segments_mut()
        .map_err(|()| invalid("it cannot have a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url.to_string())
}

impl fmt::Display for ApiBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> String {
        ApiBaseUrl::check(value)
            .unwrap_or_else(|p| panic!("{value}: {p:?}"))
            .as_str()
            .to_string()
    }

    fn problem(value: &str) -> Problem {
        ApiBaseUrl::check(value).unwrap_err()
    }

    #[test]
    fn https_anywhere_and_http_on_this_machine_only() {
        assert_eq!(
            ok(" https://gcp-us-east1.api.carto.com// "),
            "https://gcp-us-east1.api.carto.com"
        );
        assert_eq!(
            ok("https://api.example/prefix/"),
            "https://api.example/prefix"
        );
        for local in [
            "http://127.0.0.1:8080/api",
            "http://127.5.4.3",
            "http://localhost:9",
            "http://LOCALHOST",
            "http://[::1]:5000",
        ] {
            assert_eq!(ok(local), local.trim_end_matches('/'));
        }
        for remote in [
            "http://gcp-us-east1.api.carto.com",
            "http://localhost.evil.com",
            "http://10.0.0.1",
            "http://[::2]",
        ] {
            let p = problem(remote);
            assert!(p.what.contains("unencrypted"), "{remote}: {p:?}");
            assert!(p.instead.starts_with("https://"), "{remote}: {p:?}");
        }
        assert_eq!(
            problem("http://gcp-us-east1.api.carto.com").instead,
            "https://gcp-us-east1.api.carto.com"
        );
    }

    #[test]
    fn a_missing_scheme_is_named_and_the_fix_written_out() {
        let p = problem("gcp-us-east1.api.carto.com");
        assert_eq!(p.what, "it has no https:// in front");
        assert_eq!(p.instead, "https://gcp-us-east1.api.carto.com");
        // Not a host either: the example instead of an echo of junk.
        assert_eq!(problem("not a url at all").instead, EXAMPLE);
        assert_eq!(problem("").instead, EXAMPLE);
    }

    #[test]
    fn other_shapes_are_refused_with_a_reason() {
        for (value, what) in [
            ("ftp://api.example", "only https://"),
            ("https://user:pw@api.example", "user name or password"),
            ("https://api.example/?x=1", "query"),
            ("https://api.example/#top", "fragment"),
            ("https://", "not a URL"),
            ("https://exa mple.com", "not a URL"),
        ] {
            let p = problem(value);
            assert!(p.what.contains(what), "{value}: {p:?}");
        }
    }

    #[test]
    fn errors_name_where_the_value_came_from_and_how_to_write_it() {
        let path = Path::new("/tmp/creds.json");
        let e = ApiBaseUrl::parse("gcp-us-east1.api.carto.com", Origin::File(path))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/tmp/creds.json (key \"api_base_url\")")
                && e.contains("Write it as https://gcp-us-east1.api.carto.com"),
            "{e}"
        );
        for (origin, name) in [
            (Origin::Variable("CARTO_API_BASE_URL"), "CARTO_API_BASE_URL"),
            (Origin::Builder, ".api_base_url(..)"),
            (
                Origin::Discovery("https://acme.app.carto.com/config.yaml"),
                "https://acme.app.carto.com/config.yaml",
            ),
            (Origin::FromToken, "CartoAuth::from_token"),
        ] {
            let e = ApiBaseUrl::parse("http://api.example", origin)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(name) && e.contains("Write it as https://api.example"),
                "{e}"
            );
        }
    }
}
