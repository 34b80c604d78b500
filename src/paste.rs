//! The answer a user pastes in the paste flow: the whole address CARTO
//! sent them to, or the code on it, read without trusting it.

use crate::endpoints::same_issuer;
use crate::error::{Error, Result};
use crate::oauth::is_code_like;
use crate::secret::AuthorizationCode;

/// Reads what a user pasted: the whole address CARTO sent them to (its `code`
/// parameter is taken; an `error` parameter is an error; an `iss` parameter
/// must name this login's issuer) or the bare code.
pub(crate) fn parse_pasted(input: &str, issuer: &str) -> Result<AuthorizationCode> {
    let text = input
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '<' | '>'))
        .trim();
    if text.is_empty() {
        return Err(Error::NoCode {
            what: "it was empty",
        });
    }
    // `key=value` pairs mean an address (or its query); an `=` that only
    // ends the text is a bare code's base64 padding, which `is_code_like`
    // accepts.
    let has_pairs = text.trim_end_matches('=').contains('=')
        || text.starts_with("code=")
        || text.starts_with("error=");
    let looks_like_url = text.contains("://") || text.contains('?') || has_pairs;
    if !looks_like_url {
        return if is_code_like(text) {
            Ok(AuthorizationCode::new(text))
        } else {
            Err(Error::NoCode {
                what: "it is neither an address nor a code: codes are one word",
            })
        };
    }
    // Parameters may sit in the query or, with some front ends, the fragment.
    let after_question = text.split_once('?').map_or(text, |(_, rest)| rest);
    let (query, fragment) = after_question
        .split_once('#')
        .unwrap_or((after_question, ""));
    let (mut code, mut error, mut description, mut iss) = (None, None, None, None);
    for part in [query, fragment] {
        for (key, value) in url::form_urlencoded::parse(part.as_bytes()) {
            match &*key {
                "code" if code.is_none() => code = Some(value.into_owned()),
                "error" if error.is_none() => error = Some(value.into_owned()),
                "error_description" if description.is_none() => {
                    description = Some(value.into_owned())
                }
                "iss" if iss.is_none() => iss = Some(value.into_owned()),
                _ => {}
            }
        }
    }
    if let Some(got) = iss.filter(|i| !same_issuer(i, issuer)) {
        return Err(Error::IssuerMismatch {
            expected: issuer.to_string(),
            got,
        });
    }
    if let Some(error) = error {
        return Err(Error::Authorization { error, description });
    }
    match code {
        Some(code) if is_code_like(&code) => Ok(AuthorizationCode::new(code)),
        Some(_) => Err(Error::NoCode {
            what: "its code parameter is empty or malformed",
        }),
        None => Err(Error::NoCode {
            what: "the address has no code parameter",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://auth.carto.com/";

    #[test]
    fn pasted_full_url_bare_code_and_quotes() {
        let code = |s: &str| parse_pasted(s, ISS).map(|c| c.secret().to_string());
        assert_eq!(
            code("https://app.carto.com/auth/token?code=AbC-12_x&state=z").unwrap(),
            "AbC-12_x"
        );
        assert_eq!(code("  AbC-12_x \n").unwrap(), "AbC-12_x");
        assert_eq!(code("\"AbC-12_x\"").unwrap(), "AbC-12_x");
        assert_eq!(code("https://x/cb#code=frag").unwrap(), "frag");
        assert_eq!(code("?code=q").unwrap(), "q");
    }

    #[test]
    fn pasted_errors_are_clear() {
        match parse_pasted(
            "https://app.carto.com/auth/token?error=access_denied&error_description=User%20cancelled",
            ISS,
        ) {
            Err(Error::Authorization { error, description }) => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.as_deref(), Some("User cancelled"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_pasted("", ISS), Err(Error::NoCode { .. })));
        assert!(matches!(
            parse_pasted("https://app.carto.com/auth/token", ISS),
            Err(Error::NoCode { .. })
        ));
        assert!(matches!(
            parse_pasted("https://app.carto.com/?code=", ISS),
            Err(Error::NoCode { .. })
        ));
        assert!(matches!(
            parse_pasted("two words", ISS),
            Err(Error::NoCode { .. })
        ));
    }

    #[test]
    fn an_answer_that_names_another_issuer_is_refused() {
        match parse_pasted(
            "https://app.carto.com/auth/token?code=abc&iss=https%3A%2F%2Fevil.example",
            ISS,
        ) {
            Err(Error::IssuerMismatch { expected, got }) => {
                assert_eq!(
                    (expected.as_str(), got.as_str()),
                    (ISS, "https://evil.example")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse_pasted(
                "https://app.carto.com/auth/token?code=abc&iss=https%3A%2F%2Fauth.carto.com%2F",
                ISS
            )
            .is_ok()
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const ISS: &str = "https://auth.carto.com/";
    /// Authorization codes as `is_code_like` allows them.
    const CODE: &str = "[A-Za-z0-9._~+/=-]{1,120}";

    use crate::oauth::test_form as query;

    /// The fuzz seeds (fuzz/seeds/pasted_answer), shapes the fuzzer kept,
    /// and the case proptest found: a bare code ending in base64 padding.
    #[test]
    fn fuzz_seeds_and_findings_stay_fixed() {
        let code = |s: &str| parse_pasted(s, ISS).map(|c| c.secret().to_string()).ok();
        assert_eq!(code("AbC12=="), Some("AbC12==".into()));
        assert_eq!(code("="), Some("=".into()));
        assert_eq!(
            code("https://app.carto.com/auth/token?code=AbC-12_x&state=z").as_deref(),
            Some("AbC-12_x")
        );
        assert_eq!(code("  <AbC>  ").as_deref(), Some("AbC"));
        for no_code in [
            "code=",
            "error=",
            "'''''''''''''''')'",
            "  <  ",
            "'=++2Z+e=+",
            "sax:2// :D/':://]-",
            "' \u{fffd}",
            "\u{30c5}",
            "?",
            "#",
            "://",
        ] {
            assert_eq!(code(no_code), None, "{no_code:?}");
        }
        assert!(matches!(
            parse_pasted("error=x&code=y", ISS),
            Err(Error::Authorization { .. })
        ));
        assert!(matches!(
            parse_pasted(&format!("?code={}", "a".repeat(5000)), ISS),
            Err(Error::NoCode { .. })
        ));
    }

    proptest! {
        #[test]
        fn pasted_text_never_panics(input in any::<String>()) {
            let _ = parse_pasted(&input, ISS);
        }

        #[test]
        fn url_like_pasted_text_never_panics(input in "[a-z0-9:/?&=#%+. \"'<>-]{0,80}") {
            let _ = parse_pasted(&input, ISS);
        }

        #[test]
        fn a_url_built_with_a_code_gives_that_code_back(
            code in CODE,
            state in "[A-Za-z0-9_-]{0,30}",
            host in "[a-z]{1,12}(\\.[a-z]{2,5})?",
            in_fragment in any::<bool>(),
            pad in "[ \t\r\n]{0,3}",
        ) {
            let params = query(&[("code", &code), ("state", &state)]);
            let sep = if in_fragment { '#' } else { '?' };
            let url = format!("{pad}https://{host}/auth/token{sep}{params}{pad}");
            let got = parse_pasted(&url, ISS).map(|c| c.secret().to_string());
            prop_assert_eq!(got.ok(), Some(code));
        }

        #[test]
        fn a_bare_code_gives_that_code_back(code in "[A-Za-z0-9._~+/-]{1,120}={0,2}", quote in "[\"'<]?", pad in "[ \t\n]{0,3}") {
            let close = if quote == "<" { ">".to_string() } else { quote.clone() };
            let pasted = format!("{pad}{quote}{code}{close}{pad}");
            let got = parse_pasted(&pasted, ISS).map(|c| c.secret().to_string());
            prop_assert_eq!(got.ok(), Some(code));
        }

        #[test]
        fn an_error_in_the_url_is_that_error(error in "\\PC{0,40}", description in "\\PC{0,40}", code in proptest::option::of(CODE)) {
            let mut pairs = vec![("error", error.as_str()), ("error_description", description.as_str())];
            if let Some(code) = &code {
                pairs.push(("code", code));
            }
            let url = format!("https://app.carto.com/auth/token?{}", query(&pairs));
            match parse_pasted(&url, ISS) {
                Err(Error::Authorization { error: e, description: d }) => {
                    prop_assert_eq!(e, error);
                    prop_assert_eq!(d, Some(description));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
