//! The OAuth 2.0 authorization-code + PKCE protocol pieces, as pure
//! functions (the flow that drives them is in `login.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::endpoints::{Endpoints, same_issuer};
use crate::error::{Error, Grant, Result};
use crate::http::{Http, form_body};
use crate::secret::{AuthorizationCode, CodeVerifier};
use crate::token::{Token, request_token};

/// A fresh PKCE pair (RFC 7636, method `S256`).
pub(crate) struct Pkce {
    pub(crate) verifier: CodeVerifier,
    pub(crate) challenge: String,
}

impl Pkce {
    pub(crate) fn generate() -> Result<Pkce> {
        // 64 random bytes give an 86-character verifier, inside RFC 7636's
        // 43..=128 and with 512 bits of entropy.
        let verifier = random_urlsafe(64)?;
        let challenge = challenge_for(&verifier);
        Ok(Pkce {
            verifier: CodeVerifier::new(verifier),
            challenge,
        })
    }
}

/// base64url(SHA-256(verifier)), unpadded.
pub(crate) fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// `bytes` random bytes from the OS, base64url without padding.
pub(crate) fn random_urlsafe(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| Error::Setup {
            what: "the system random number generator",
            message: "no random bytes".into(),
            source: None,
        })?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// The authorize URL, with the Python package's parameters in its order
/// (`scope=None` included: it is what the service has always been sent),
/// then ours. `force_login` adds `prompt=login` (OpenID Connect, honoured
/// by Auth0): the sign-in form is shown even to a browser that is signed
/// in, which is how a user switches accounts.
pub(crate) fn authorize_url(
    endpoints: &Endpoints,
    redirect_uri: &str,
    code_challenge: &str,
    state: Option<&str>,
    org: Option<&str>,
    force_login: bool,
) -> String {
    let mut query = vec![
        ("client_id", endpoints.client_id.as_str()),
        ("response_type", "code"),
        ("scope", "None"),
        ("audience", endpoints.audience.as_str()),
        ("redirect_uri", redirect_uri),
        ("code_challenge_method", "S256"),
        ("code_challenge", code_challenge),
    ];
    query.extend(state.map(|state| ("state", state)));
    query.extend(org.map(|org| ("organization", org)));
    if force_login {
        query.push(("prompt", "login"));
    }
    // Encoded as the Python package encodes it (`urlencode`).
    format!("{}?{}", endpoints.authorize_url(), form_body(&query))
}

/// What a request to the local callback carried.
#[derive(Debug)]
pub(crate) enum CallbackOutcome {
    /// A code for this login.
    Code(AuthorizationCode),
    /// An OAuth error for this login.
    Denied {
        error: String,
        description: Option<String>,
    },
    /// This login's `state`, from another issuer (RFC 9207): a mix-up.
    WrongIssuer(String),
    /// Anything else (no or wrong `state`, no code): not ours, ignored.
    Stray,
}

/// Judges a callback's query string against the `state` this login sent
/// and, when the answer names its issuer (`iss`, RFC 9207), the issuer it
/// must come from.
pub(crate) fn parse_callback_query(
    query: &str,
    expected_state: &str,
    issuer: &str,
) -> CallbackOutcome {
    let (mut code, mut state, mut error, mut description, mut iss) = (None, None, None, None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            "iss" => iss = Some(value.into_owned()),
            _ => {}
        }
    }
    if !state.is_some_and(|s| states_match(&s, expected_state)) {
        return CallbackOutcome::Stray;
    }
    if let Some(iss) = iss.filter(|i| !same_issuer(i, issuer)) {
        return CallbackOutcome::WrongIssuer(iss);
    }
    match (error, code) {
        (Some(error), _) => CallbackOutcome::Denied { error, description },
        (None, Some(code)) if is_code_like(&code) => {
            CallbackOutcome::Code(AuthorizationCode::new(code))
        }
        _ => CallbackOutcome::Stray,
    }
}

/// Compares `state` in constant time, so that timing tells a forger nothing.
pub(crate) fn states_match(got: &str, expected: &str) -> bool {
    got.len() == expected.len() && bool::from(got.as_bytes().ct_eq(expected.as_bytes()))
}

/// Authorization codes are one URL-safe word; anything else is a paste slip.
pub(crate) fn is_code_like(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 4096
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c))
}

/// Exchanges a code for a token, with exactly the Python package's form.
pub(crate) fn exchange_code(
    http: &Http,
    endpoints: &Endpoints,
    code: &AuthorizationCode,
    redirect_uri: &str,
    verifier: &CodeVerifier,
) -> Result<Token> {
    let form = [
        ("client_id", endpoints.client_id.as_str()),
        ("grant_type", "authorization_code"),
        ("audience", endpoints.audience.as_str()),
        ("code", code.secret()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier.secret()),
    ];
    request_token(http, endpoints, &form, Grant::AuthorizationCode)
}

/// A query string of these pairs, form-encoded, for tests.
#[cfg(test)]
pub(crate) fn test_form(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://auth.carto.com/";

    #[test]
    fn challenge_matches_the_python_package() {
        // Computed independently with Python's hashlib and base64, as the
        // Python package does it.
        assert_eq!(
            challenge_for("dBjftJeZ4CVP-mJ92K1ZHU4fj6kO3rp6iKQDlE8p1V0"),
            "c6NLZfDhD_o-RICKMBCpm1PWNm4eRELFPAK57mfSJYk"
        );
    }

    #[test]
    fn generated_verifiers_are_fresh_urlsafe_and_of_legal_length() {
        let a = Pkce::generate().unwrap();
        let b = Pkce::generate().unwrap();
        let v = a.verifier.secret();
        assert!((43..=128).contains(&v.len()), "{}", v.len());
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(v, b.verifier.secret());
        assert_eq!(a.challenge, challenge_for(v));
        assert!(!a.challenge.contains('='));
    }

    #[test]
    fn authorize_url_has_python_parameters_in_order() {
        let url = authorize_url(
            &Endpoints::carto(),
            "http://localhost:10000/callback/",
            "CH",
            None,
            None,
            false,
        );
        assert_eq!(
            url,
            "https://auth.carto.com/authorize?client_id=0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u\
             &response_type=code&scope=None&audience=carto-cloud-native-api\
             &redirect_uri=http%3A%2F%2Flocalhost%3A10000%2Fcallback%2F\
             &code_challenge_method=S256&code_challenge=CH"
        );
        let with = authorize_url(
            &Endpoints::carto(),
            "r",
            "CH",
            Some("st"),
            Some("acme corp~*"),
            false,
        );
        // `~` as is and `*` encoded, as Python's `urlencode` writes them.
        assert!(
            with.ends_with("&code_challenge=CH&state=st&organization=acme+corp~%2A"),
            "{with}"
        );
        let forced = authorize_url(&Endpoints::carto(), "r", "CH", None, None, true);
        assert!(
            forced.ends_with("&code_challenge=CH&prompt=login"),
            "{forced}"
        );
    }

    #[test]
    fn an_answer_from_another_issuer_is_refused() {
        assert!(matches!(
            parse_callback_query(
                "code=abc&state=S1&iss=https%3A%2F%2Fauth.carto.com%2F",
                "S1",
                ISS
            ),
            CallbackOutcome::Code(_)
        ));
        assert!(matches!(
            parse_callback_query(
                "code=abc&state=S1&iss=https%3A%2F%2Fauth.carto.com",
                "S1",
                ISS
            ),
            CallbackOutcome::Code(_)
        ));
        assert!(matches!(
            parse_callback_query("code=abc&state=S1&iss=https%3A%2F%2Fevil.example%2F", "S1", ISS),
            CallbackOutcome::WrongIssuer(i) if i == "https://evil.example/"
        ));
        // Without this login's state it is still only a stray.
        assert!(matches!(
            parse_callback_query(
                "code=abc&state=S2&iss=https%3A%2F%2Fevil.example%2F",
                "S1",
                ISS
            ),
            CallbackOutcome::Stray
        ));
    }

    #[test]
    fn callback_needs_the_right_state() {
        assert!(
            matches!(parse_callback_query("code=abc&state=S1", "S1", ISS), CallbackOutcome::Code(c) if c.secret() == "abc")
        );
        assert!(matches!(
            parse_callback_query("code=abc&state=S2", "S1", ISS),
            CallbackOutcome::Stray
        ));
        assert!(matches!(
            parse_callback_query("code=abc", "S1", ISS),
            CallbackOutcome::Stray
        ));
        assert!(matches!(
            parse_callback_query("state=S1", "S1", ISS),
            CallbackOutcome::Stray
        ));
        assert!(matches!(
            parse_callback_query("", "S1", ISS),
            CallbackOutcome::Stray
        ));
        assert!(matches!(
            parse_callback_query("error=access_denied&error_description=no&state=S1", "S1", ISS),
            CallbackOutcome::Denied { error, description } if error == "access_denied" && description.as_deref() == Some("no")
        ));
        assert!(matches!(
            parse_callback_query("error=access_denied&state=X", "S1", ISS),
            CallbackOutcome::Stray
        ));
    }

    #[test]
    fn state_comparison() {
        assert!(states_match("abc", "abc"));
        assert!(!states_match("abc", "abd"));
        assert!(!states_match("abc", "abcd"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;

    const ISS: &str = "https://auth.carto.com/";
    use proptest::prelude::*;

    /// Authorization codes as `is_code_like` allows them.
    const CODE: &str = "[A-Za-z0-9._~+/=-]{1,120}";

    use super::test_form as query;

    proptest! {
        #[test]
        fn callback_query_never_panics(query in any::<String>(), state in any::<String>()) {
            let _ = parse_callback_query(&query, &state, ISS);
        }

        #[test]
        fn a_callback_with_this_state_and_a_code_gives_the_code(
            code in CODE,
            state in "[A-Za-z0-9_-]{1,40}",
            noise in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,10}"), 0..4),
        ) {
            let mut pairs: Vec<(&str, &str)> = noise
                .iter()
                .filter(|(k, _)| !["code", "state", "error", "error_description"].contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            pairs.push(("code", &code));
            pairs.push(("state", &state));
            let got = parse_callback_query(&query(&pairs), &state, ISS);
            prop_assert!(matches!(&got, CallbackOutcome::Code(c) if c.secret() == code), "{:?}", got);
        }

        #[test]
        fn without_this_state_nothing_ends_the_login(
            pairs in proptest::collection::vec(("(code|state|error|error_description|x)", "\\PC{0,20}"), 0..6),
            expected in "[A-Za-z0-9_-]{32}",
        ) {
            // Random values never equal a 32-character state by chance.
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let got = parse_callback_query(&query(&pairs), &expected, ISS);
            prop_assert!(matches!(got, CallbackOutcome::Stray), "{:?}", got);
        }
    }
}
