//! One cache file's content: the Python package's three keys, ours beside
//! them, both packages' clocks, and whose token it is.

use serde_json::{Map, Value};
use tz::TimeZone;

use crate::api_base_url::ApiBaseUrl;
use crate::clock::{EXPIRY_MARGIN_SECS, from_python, json_seconds, to_python};
use crate::secret::AccessToken;
use crate::token::Token;

/// Our key with the true Unix expiry. The Python package ignores it, and
/// drops it (with our other keys) whenever it rewrites the file: a file
/// without it was last written by the Python package.
const EXPIRATION_UNIX: &str = "expiration_unix";
/// Ours: the M2M client that made the token.
const CLIENT_ID: &str = "client_id";
/// Ours: the SSO organization name the login was made with.
const ORG: &str = "org";

/// A cached session as stored on disk.
#[derive(Debug, Clone)]
pub(crate) struct CacheEntry {
    pub(crate) api_base_url: Option<ApiBaseUrl>,
    /// Its expiration is real Unix time, whoever wrote the file.
    pub(crate) token: Token,
    /// Ours only: the M2M client that made the token.
    pub(crate) client_id: Option<String>,
    /// Ours only: the organization name the login used (`.org(..)`).
    pub(crate) org: Option<String>,
    /// No `expiration_unix`: the Python package wrote this file last.
    pub(crate) python_written: bool,
}

impl CacheEntry {
    /// An entry for a token this crate just obtained.
    pub(crate) fn new(api_base_url: Option<ApiBaseUrl>, token: Token) -> CacheEntry {
        CacheEntry {
            api_base_url,
            token,
            client_id: None,
            org: None,
            python_written: false,
        }
    }

    /// Not expired at `now` (margin included).
    pub(crate) fn is_fresh_at(&self, now: i64) -> bool {
        !self.token.is_expired_at(now)
    }

    /// Usable by a plain login at `now`: has an API base URL and is fresh
    /// (the Python package's rule, plus our margin).
    pub(crate) fn usable_at(&self, now: i64) -> bool {
        self.api_base_url.is_some() && self.is_fresh_at(now)
    }

    /// The file's JSON: the Python package's three keys, with `expiration`
    /// in its clock for `zone` and shortened by our margin (so that it
    /// renews when we would), then ours.
    pub(crate) fn to_json(&self, zone: &TimeZone) -> String {
        let mut map = Map::new();
        map.insert(
            "api_base_url".into(),
            self.api_base_url
                .as_ref()
                .map_or(Value::Null, |u| Value::String(u.to_string())),
        );
        map.insert(
            "access_token".into(),
            Value::String(self.token.access_token.secret().into()),
        );
        let python_deadline = self.token.expiration.saturating_sub(EXPIRY_MARGIN_SECS);
        map.insert(
            "expiration".into(),
            Value::from(to_python(python_deadline, zone)),
        );
        map.insert(EXPIRATION_UNIX.into(), Value::from(self.token.expiration));
        if let Some(id) = &self.client_id {
            map.insert(CLIENT_ID.into(), Value::String(id.clone()));
        }
        if let Some(org) = &self.org {
            map.insert(ORG.into(), Value::String(org.clone()));
        }
        Value::Object(map).to_string()
    }
}

/// Parses a cache file's text, written in `zone`'s clock when the Python
/// package wrote it (asked for only when needed: a JWT says when it
/// expires). `Err` says why it does not count as a cache.
pub(crate) fn parse_entry(
    text: &str,
    zone: impl FnOnce() -> TimeZone,
) -> Result<CacheEntry, &'static str> {
    if text.trim().is_empty() {
        return Err("it is empty");
    }
    let value: Value = serde_json::from_str(text).map_err(|_| "it is not valid JSON")?;
    let map = value.as_object().ok_or("it is not a JSON object")?;
    // The Python package's rule: all three keys present, or no cache.
    let (Some(url), Some(token), Some(expiration)) = (
        map.get("api_base_url"),
        map.get("access_token"),
        map.get("expiration"),
    ) else {
        return Err("it lacks api_base_url, access_token or expiration");
    };
    let api_base_url = match url {
        Value::String(s) if s.trim().is_empty() => None,
        // A token is never sent where the file says unless it is https (or
        // this machine): any other address means no cache at all.
        Value::String(s) => Some(ApiBaseUrl::check(s).map_err(
            |_| "its api_base_url is not an https:// URL (plain http:// is for this machine only)",
        )?),
        Value::Null => None,
        _ => return Err("its api_base_url is not a string"),
    };
    let access_token = token
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("its access_token is not a string")?;
    let expiration = json_seconds(expiration).ok_or("its expiration is not a number")?;
    let ours = map.get(EXPIRATION_UNIX).and_then(json_seconds);
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    // A JWT's own `exp` wins over either number.
    let token = Token::with_fallback(AccessToken::new(access_token), || {
        ours.unwrap_or_else(|| from_python(expiration, &zone()))
    });
    Ok(CacheEntry {
        api_base_url,
        token,
        client_id: text(CLIENT_ID),
        org: text(ORG),
        python_written: ours.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc() -> TimeZone {
        TimeZone::utc()
    }

    use crate::jwt::test_token as jwt;

    use super::super::test_support::entry_for as entry;

    #[test]
    fn python_written_file_parses_in_its_clock() {
        let ny = TimeZone::from_posix_tz("America/New_York").unwrap();
        // Written at 2026-01-15 12:00 UTC + 1 h by Python under
        // TZ=America/New_York: its number is 5 h later than the real one.
        let real = 1_768_478_400 + 3600;
        let text = format!(
            r#"{{"api_base_url": "https://x", "access_token": "t", "expiration": {}}}"#,
            real + 5 * 3600
        );
        let e = parse_entry(&text, || ny.clone()).unwrap();
        assert_eq!(e.api_base_url.unwrap().as_str(), "https://x");
        assert_eq!(e.token.access_token.secret(), "t");
        assert_eq!(e.token.expiration, real);
        assert!(e.python_written);
        assert_eq!(e.client_id, None);
    }

    #[test]
    fn our_file_keeps_real_time_and_writes_python_time_minus_the_margin() {
        let kolkata = TimeZone::from_posix_tz("Asia/Kolkata").unwrap();
        let mut e = entry("tok", Some("https://x"), Some("A"));
        e.token.expiration = 1_784_116_800;
        e.org = Some("acme".into());
        let json: Value = serde_json::from_str(&e.to_json(&kolkata)).unwrap();
        assert_eq!(json["expiration_unix"], 1_784_116_800);
        assert_eq!(
            json["expiration"],
            1_784_116_800 - 60 - (5 * 3600 + 30 * 60)
        );
        assert_eq!(json["client_id"], "A");
        assert_eq!(json["org"], "acme");
        let back = parse_entry(&e.to_json(&kolkata), || kolkata.clone()).unwrap();
        assert_eq!(back.token.expiration, 1_784_116_800);
        assert!(!back.python_written);
        assert_eq!(back.org.as_deref(), Some("acme"));
    }

    #[test]
    fn a_jwt_exp_wins_over_both_numbers() {
        let token = jwt(&json!({"exp": 1_900_000_000, "sub": "auth0|1"}));
        let text = format!(
            r#"{{"api_base_url": "https://x", "access_token": "{token}", "expiration": 5, "expiration_unix": 6}}"#
        );
        assert_eq!(
            parse_entry(&text, utc).unwrap().token.expiration,
            1_900_000_000
        );
    }

    #[test]
    fn bad_files_count_as_no_cache_with_a_reason() {
        for (text, why) in [
            ("", "empty"),
            ("{\"api_base_url\": \"x\", \"access", "not valid JSON"),
            ("[1]", "not a JSON object"),
            (
                r#"{"api_base_url": "https://x", "access_token": "t"}"#,
                "lacks",
            ),
            (
                r#"{"api_base_url": 3, "access_token": "t", "expiration": 1}"#,
                "api_base_url",
            ),
            (
                r#"{"api_base_url": "https://x", "access_token": "", "expiration": 1}"#,
                "access_token",
            ),
            (
                r#"{"api_base_url": "https://x", "access_token": "t", "expiration": "soon"}"#,
                "expiration",
            ),
            // Bearer tokens never go to a URL the file could not be trusted
            // with: such a file is no cache.
            (
                r#"{"api_base_url": "gcp-us-east1.api.carto.com", "access_token": "t", "expiration": 99999999999}"#,
                "not an https:// URL",
            ),
            (
                r#"{"api_base_url": "http://gcp-us-east1.api.carto.com", "access_token": "t", "expiration": 99999999999}"#,
                "not an https:// URL",
            ),
        ] {
            let err = parse_entry(text, utc).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<CacheEntry, &'static str> {
        parse_entry(text, TimeZone::utc)
    }

    /// The fuzz seeds (fuzz/seeds/cache_file) and shapes the fuzzer kept:
    /// numbers beyond i64 saturate (and survive a rewrite), floats are read,
    /// overflow and lone surrogates are refused, never a panic.
    #[test]
    fn fuzz_seeds_and_findings_stay_fixed() {
        let exp = |e: &str| {
            parse(&format!(
                r#"{{"api_base_url": "https://x", "access_token": "t", "expiration": {e}}}"#
            ))
            .map(|e| e.token.expiration)
        };
        assert_eq!(exp("1.7e9"), Ok(1_700_000_000));
        assert_eq!(exp("18446744073709551615"), Ok(i64::MAX));
        assert_eq!(exp("-1e300"), Ok(i64::MIN));
        assert!(exp("-1e400").is_err());
        assert!(exp("1e99999").is_err());
        let max = parse(
            r#"{"api_base_url": "https://x", "access_token": "t", "expiration": 18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(
            parse(&max.to_json(&TimeZone::utc()))
                .unwrap()
                .token
                .expiration,
            i64::MAX
        );
        let deep = "{\"a\":".repeat(10_000);
        for text in [
            "\u{30c5}",
            "   ",
            "\"_j]1\\udac81",
            "{\"api_base_url\": \"\\udac8\", \"access_token\": \"t\", \"expiration\": 1}",
            deep.as_str(),
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        let dup = parse(
            r#"{"api_base_url": "https://x", "access_token": "a", "access_token": "b", "expiration": 1}"#,
        )
        .unwrap();
        assert_eq!(dup.token.access_token.secret(), "b");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("api_base_url".to_string()),
                        Just("access_token".to_string()),
                        Just("expiration".to_string()),
                        Just("expiration_unix".to_string()),
                        Just("client_id".to_string()),
                        Just("org".to_string()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn any_entry() -> impl Strategy<Value = CacheEntry> {
        (
            // A letter first: an all-digit host is an IPv4 address, and one
            // over 32 bits no URL at all.
            proptest::option::of("https://[a-z][a-z0-9-]{0,19}(\\.[a-z]{2,5})?(/[a-z]{1,8})?"),
            "\\PC{1,60}",
            any::<i64>(),
            proptest::option::of("\\PC{1,20}"),
            proptest::option::of("\\PC{1,20}"),
        )
            .prop_map(
                |(api_base_url, token, expiration, client_id, org)| CacheEntry {
                    client_id,
                    org,
                    ..CacheEntry::new(
                        api_base_url.map(|u| ApiBaseUrl::check(&u).unwrap()),
                        Token::new(AccessToken::new(token), expiration),
                    )
                },
            )
    }

    proptest! {
        #[test]
        fn any_json_is_loaded_or_refused_without_panic(value in json_value()) {
            if let Ok(e) = parse(&value.to_string()) {
                // Accepted only with the three keys, as the Python package.
                let map = value.as_object().unwrap();
                prop_assert!(map.contains_key("api_base_url") && map.contains_key("access_token") && map.contains_key("expiration"));
                prop_assert!(!e.token.access_token.secret().is_empty());
            }
        }

        #[test]
        fn what_is_saved_loads_back(e in any_entry()) {
            let back = parse(&e.to_json(&TimeZone::utc())).unwrap();
            prop_assert_eq!(back.api_base_url, e.api_base_url);
            prop_assert_eq!(back.token.access_token.secret(), e.token.access_token.secret());
            prop_assert_eq!(back.token.expiration, e.token.expiration);
            prop_assert_eq!(back.client_id, e.client_id);
            prop_assert_eq!(back.org, e.org);
        }

        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = parse_entry(&text, TimeZone::utc);
        }

        #[test]
        fn written_entries_read_back_equal_in_any_zone(
            url in proptest::option::of("https://[a-z]{1,10}\\.api\\.carto\\.com"),
            token in "[A-Za-z0-9_-]{1,80}",
            expiration in 0i64..=4_000_000_000,
            client in proptest::option::of("[a-zA-Z0-9]{1,20}"),
            zone in prop::sample::select(vec!["UTC", "America/New_York", "Europe/Madrid", "Asia/Kolkata"]),
        ) {
            let zone = TimeZone::from_posix_tz(zone).unwrap();
            let e = CacheEntry {
                client_id: client,
                ..CacheEntry::new(
                    url.map(|u| ApiBaseUrl::check(&u).unwrap()),
                    Token::new(AccessToken::new(token), expiration),
                )
            };
            let back = parse_entry(&e.to_json(&zone), || zone.clone()).unwrap();
            prop_assert_eq!(back.api_base_url, e.api_base_url);
            prop_assert_eq!(back.token.access_token.secret(), e.token.access_token.secret());
            prop_assert_eq!(back.token.expiration, e.token.expiration);
            prop_assert_eq!(back.client_id, e.client_id);
        }

        #[test]
        fn python_formatting_loads_too(url in "https://[a-z]{1,10}\\.api\\.carto\\.com", token in "[A-Za-z0-9_-]{1,80}", expiration in 0i64..=4_000_000_000) {
            // json.dump's separators, keys in the Python package's order.
            let text = format!(r#"{{"api_base_url": "{url}", "access_token": "{token}", "expiration": {expiration}}}"#);
            let e = parse_entry(&text, TimeZone::utc).unwrap();
            prop_assert_eq!(e.api_base_url.as_ref().map(ApiBaseUrl::as_str), Some(url.as_str()));
            prop_assert_eq!(e.token.access_token.secret(), token.as_str());
            prop_assert_eq!(e.token.expiration, expiration);
            prop_assert!(e.python_written);
        }
    }
}
