//! The OAuth 2.0 device authorization grant (RFC 8628) as CARTO's Auth0
//! tenant speaks it: the device authorization request, the reading of its
//! answer, and the polling of the token endpoint.
//!
//! Auth0 enables the grant per application; whether CARTO enabled it for
//! its public client is unknown, so it is only tried when asked for, and a
//! refusal makes the login fall back to the browser or paste flow.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cancel::{Cancel, Cancelled, pause};
use crate::clock::json_seconds;
use crate::endpoints::Endpoints;
use crate::error::{Error, Grant, Result, Service};
use crate::http::{Http, describe_json, status_error};
use crate::secret::DeviceCode;
use crate::token::{Token, token_from_answer};

/// The grant type of the polling requests.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628's default polling interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What `slow_down` adds to the interval (RFC 8628, 3.5).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// A started device login: what the user needs and what the poller needs.
#[derive(Debug)]
pub(crate) struct DeviceAuthorization {
    pub(crate) device_code: DeviceCode,
    /// What the user types at the verification page (not secret).
    pub(crate) user_code: String,
    pub(crate) verification_uri: String,
    /// The page with the code filled in, when the server gives one.
    pub(crate) verification_uri_complete: Option<String>,
    pub(crate) expires_in: Duration,
    pub(crate) interval: Duration,
}

impl DeviceAuthorization {
    /// The address to open: the complete one when there is one.
    pub(crate) fn link(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// Asks for a device code, with the same `client_id`, `audience` and
/// `organization` as the authorize URL. `Err` is the reason the login then
/// falls back to another flow, said to the user in one line.
pub(crate) fn request_device_code(
    http: &Http,
    endpoints: &Endpoints,
    org: Option<&str>,
) -> Result<DeviceAuthorization, String> {
    let url = endpoints.device_authorization_url();
    let mut form = vec![
        ("client_id", endpoints.client_id.as_str()),
        ("audience", endpoints.audience.as_str()),
    ];
    if let Some(org) = org {
        form.push(("organization", org));
    }
    let (status, body) = http
        .post_form_raw(Service::DeviceAuthorization, &url, &form)
        .map_err(|e| match e {
            Error::Network { message, .. } => {
                format!("the device sign-in endpoint did not answer ({message})")
            }
            other => other.to_string(),
        })?;
    if !(200..300).contains(&status) {
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let error = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str);
        return Err(match (status, error) {
            (
                _,
                Some(e @ ("unauthorized_client" | "invalid_client" | "unsupported_grant_type")),
            ) => {
                format!("CARTO does not allow the device sign-in for this client ({e})")
            }
            (404, _) => "CARTO has no device sign-in endpoint (HTTP 404)".into(),
            (status, Some(e)) => format!("the device sign-in was refused (HTTP {status}, {e})"),
            (status, None) => format!("the device sign-in was refused (HTTP {status})"),
        });
    }
    let answer: Value = serde_json::from_slice(&body).map_err(|_| {
        "the device sign-in endpoint answered with something that is not JSON".to_string()
    })?;
    parse_authorization(&answer).ok_or_else(|| {
        format!(
            "the device sign-in endpoint answered with {}, not a device code",
            describe_json(&answer)
        )
    })
}

/// Reads the device authorization answer; `None` when a required field is
/// missing.
pub(crate) fn parse_authorization(answer: &Value) -> Option<DeviceAuthorization> {
    let text = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let seconds = |key: &str| answer.get(key).and_then(positive_seconds);
    let is_web = |u: &String| u.starts_with("https://") || u.starts_with("http://");
    Some(DeviceAuthorization {
        device_code: DeviceCode::new(text("device_code")?),
        user_code: text("user_code")?,
        verification_uri: text("verification_uri").filter(is_web)?,
        verification_uri_complete: text("verification_uri_complete").filter(is_web),
        expires_in: seconds("expires_in")?,
        interval: seconds("interval").unwrap_or(DEFAULT_INTERVAL),
    })
}

/// A count of seconds from the server, as a number or a string: any size
/// (what does not fit saturates, to be capped by the login timeout), `None`
/// when it is not a number or not positive.
fn positive_seconds(value: &Value) -> Option<Duration> {
    let seconds = match value {
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64),
        other => json_seconds(other),
    }?;
    u64::try_from(seconds)
        .ok()
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}

/// One polling answer, judged by its `error` (Auth0 answers 403, or 429
/// for `slow_down`: the status alone says little).
#[derive(Debug)]
pub(crate) enum Poll {
    Token(Token),
    Pending,
    SlowDown,
    Expired,
    Denied(Option<String>),
    /// Worth another try at the next interval (a network blip, a 5xx).
    Transient(Error),
    Failed(Error),
}

/// Classifies a polling answer.
pub(crate) fn classify(url: &str, status: u16, body: &[u8]) -> Poll {
    let service = Service::Token(Grant::DeviceCode);
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        return match json {
            Some(answer) => match token_from_answer(service, url.into(), &answer) {
                Ok(token) => Poll::Token(token),
                Err(e) => Poll::Failed(e),
            },
            None => Poll::Failed(Error::InvalidResponse {
                service,
                url: url.into(),
                expected: "JSON with access_token and expires_in",
                got: format!("HTTP {status} and {}", crate::http::describe_body(body)),
            }),
        };
    }
    let field = |k: &str| {
        json.as_ref()
            .and_then(|j| j.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match field("error").as_deref() {
        Some("authorization_pending") => Poll::Pending,
        Some("slow_down") => Poll::SlowDown,
        Some("expired_token") => Poll::Expired,
        Some("access_denied") => Poll::Denied(field("error_description")),
        _ if status >= 500 => Poll::Transient(status_error(service, url, status, body)),
        _ => Poll::Failed(status_error(service, url, status, body)),
    }
}

/// Polls the token endpoint once.
pub(crate) fn poll_once(http: &Http, endpoints: &Endpoints, device_code: &DeviceCode) -> Poll {
    let url = endpoints.token_url();
    let form = [
        ("grant_type", GRANT_TYPE),
        ("device_code", device_code.secret()),
        ("client_id", endpoints.client_id.as_str()),
    ];
    match http.post_form_raw(Service::Token(Grant::DeviceCode), &url, &form) {
        Ok((status, body)) => classify(&url, status, &body),
        Err(e @ Error::Network { .. }) => Poll::Transient(e),
        Err(e) => Poll::Failed(e),
    }
}

/// When a device login stops waiting, counted from the start of the
/// polling: the code's own lifetime and the login timeout. Whichever comes
/// first ends the login, with its own error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub(crate) code_expires_in: Duration,
    pub(crate) login_timeout: Duration,
}

impl Deadlines {
    /// The first deadline, and the error for a login it ends after `waited`.
    fn first(self) -> (Duration, fn(Duration) -> Error) {
        if self.code_expires_in <= self.login_timeout {
            (self.code_expires_in, |waited| Error::DeviceCodeExpired {
                waited,
            })
        } else {
            (self.login_timeout, |waited| Error::DeviceLoginTimeout {
                waited,
            })
        }
    }
}

/// Polls every `interval` (plus 5 s after each `slow_down`) until a token,
/// a final answer, or the first of the `deadlines`. It never sleeps past
/// that deadline: a poll that would come after it is not made, and the
/// login ends at the deadline.
/// A cancelled login ends within a [`pause`]'s beat, between two polls.
pub(crate) fn poll_until(
    mut interval: Duration,
    deadlines: Deadlines,
    clock: &mut impl Waiting,
    mut poll: impl FnMut() -> Poll,
) -> Result<Token> {
    let (deadline, ended) = deadlines.first();
    let cancelled = |_: Cancelled| Error::LoginFinished { state: "cancelled" };
    let mut last_transient = None;
    loop {
        let left = deadline.saturating_sub(clock.elapsed());
        if interval > left {
            clock.sleep(left).map_err(cancelled)?;
            return Err(last_transient.unwrap_or_else(|| ended(clock.elapsed())));
        }
        clock.sleep(interval).map_err(cancelled)?;
        match poll() {
            Poll::Token(token) => return Ok(token),
            Poll::Pending => last_transient = None,
            Poll::SlowDown => interval = interval.saturating_add(SLOW_DOWN_STEP),
            Poll::Transient(e) => {
                log::debug!("device sign-in: polling failed, trying again: {e}");
                last_transient = Some(e);
            }
            Poll::Expired => {
                return Err(Error::DeviceCodeExpired {
                    waited: clock.elapsed(),
                });
            }
            Poll::Denied(description) => {
                return Err(Error::Authorization {
                    error: "access_denied".into(),
                    description,
                });
            }
            Poll::Failed(e) => return Err(e),
        }
    }
}

/// Time as the poller lives it: the real clock, or a test's.
pub(crate) trait Waiting {
    /// Since the polling began.
    fn elapsed(&self) -> Duration;
    /// Sleeps, unless the login is cancelled first.
    fn sleep(&mut self, duration: Duration) -> Result<(), Cancelled>;
}

/// The real clock, with the login's cancel flag.
pub(crate) struct RealTime<'a> {
    pub(crate) start: Instant,
    pub(crate) cancel: &'a Cancel,
}

impl Waiting for RealTime<'_> {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&mut self, duration: Duration) -> Result<(), Cancelled> {
        pause(duration, Some(self.cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    fn answer(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn a_device_authorization_answer_is_read_with_defaults() {
        let a = parse_authorization(&json!({
            "device_code": "Ag_EE...ko1p", "user_code": "QTZL-MCBW",
            "verification_uri": "https://auth.carto.com/activate",
            "verification_uri_complete": "https://auth.carto.com/activate?user_code=QTZL-MCBW",
            "expires_in": 900
        }))
        .unwrap();
        assert_eq!(a.user_code, "QTZL-MCBW");
        assert_eq!(a.interval, DEFAULT_INTERVAL);
        assert_eq!(a.expires_in, Duration::from_secs(900));
        assert_eq!(
            a.link(),
            "https://auth.carto.com/activate?user_code=QTZL-MCBW"
        );
        assert_eq!(format!("{:?}", a.device_code), "DeviceCode([redacted])");

        let b = parse_authorization(&json!({
            "device_code": "d", "user_code": "U", "verification_uri": "https://x/activate",
            "verification_uri_complete": "javascript:alert(1)", "expires_in": 60, "interval": 2
        }))
        .unwrap();
        assert_eq!(
            (b.link(), b.interval),
            ("https://x/activate", Duration::from_secs(2))
        );
        // Seconds as the server may write them: strings, floats, numbers
        // beyond any clock, and nonsense.
        let timed = |expires_in: Value, interval: Value| {
            parse_authorization(&json!({
                "device_code": "d", "user_code": "U", "verification_uri": "https://x",
                "expires_in": expires_in, "interval": interval
            }))
            .map(|a| (a.expires_in.as_secs(), a.interval.as_secs()))
        };
        assert_eq!(timed(json!("900"), json!("7")), Some((900, 7)));
        assert_eq!(timed(json!(900.9), json!(2.5)), Some((900, 2)));
        assert_eq!(
            timed(json!(u64::MAX), json!(u64::MAX)),
            Some((i64::MAX as u64, i64::MAX as u64))
        );
        assert_eq!(
            timed(json!(1e300), json!("1e300")),
            Some((i64::MAX as u64, i64::MAX as u64))
        );
        assert_eq!(timed(json!(60), json!(-3)), Some((60, 5)));
        assert_eq!(timed(json!(60), json!("soon")), Some((60, 5)));
        assert_eq!(timed(json!(60), json!(0)), Some((60, 5)));
        for refused in [json!(-1), json!(0), json!("NaN"), json!(null), json!([1])] {
            assert_eq!(timed(refused.clone(), json!(5)), None, "{refused}");
        }
        for missing in ["device_code", "user_code", "verification_uri", "expires_in"] {
            let mut v = json!({"device_code": "d", "user_code": "U", "verification_uri": "https://x", "expires_in": 60});
            v.as_object_mut().unwrap().remove(missing);
            assert!(parse_authorization(&v).is_none(), "{missing}");
        }
    }

    #[test]
    fn polling_answers_are_judged_by_their_error() {
        let p = |status, v: Value| classify("u", status, &answer(v));
        assert!(matches!(
            p(403, json!({"error": "authorization_pending"})),
            Poll::Pending
        ));
        assert!(matches!(
            p(429, json!({"error": "slow_down"})),
            Poll::SlowDown
        ));
        assert!(matches!(
            p(403, json!({"error": "expired_token"})),
            Poll::Expired
        ));
        assert!(matches!(
            p(403, json!({"error": "access_denied", "error_description": "User refused"})),
            Poll::Denied(Some(d)) if d == "User refused"
        ));
        assert!(matches!(
            p(400, json!({"error": "invalid_grant"})),
            Poll::Failed(_)
        ));
        assert!(matches!(p(502, json!({})), Poll::Transient(_)));
        assert!(matches!(
            p(200, json!({"access_token": "t", "expires_in": 60})),
            Poll::Token(t) if t.access_token.secret() == "t"
        ));
        assert!(matches!(classify("u", 200, b"<html>"), Poll::Failed(_)));
    }

    /// A clock that sleeps in no time, shared by a test and its script.
    #[derive(Clone, Default)]
    struct Virtual(std::rc::Rc<std::cell::Cell<Duration>>);

    impl Waiting for Virtual {
        fn elapsed(&self) -> Duration {
            self.0.get()
        }
        fn sleep(&mut self, duration: Duration) -> Result<(), Cancelled> {
            self.0.set(self.0.get().saturating_add(duration));
            Ok(())
        }
    }

    /// A scripted token endpoint: the answers in order, and when each poll
    /// came (in the virtual clock's time).
    fn script(answers: Vec<Poll>) -> (Arc<Mutex<Vec<Duration>>>, Virtual, impl FnMut() -> Poll) {
        let clock = Virtual::default();
        let now = clock.clone();
        let times = Arc::new(Mutex::new(Vec::new()));
        let seen = times.clone();
        let mut answers = answers.into_iter();
        (times, clock, move || {
            seen.lock().unwrap().push(now.elapsed());
            answers.next().unwrap_or(Poll::Pending)
        })
    }

    fn token() -> Poll {
        classify(
            "u",
            200,
            &answer(json!({"access_token": "tok", "expires_in": 60})),
        )
    }

    #[test]
    fn polling_waits_the_interval_and_slows_down_when_told() {
        let (times, mut clock, poll) =
            script(vec![Poll::Pending, Poll::SlowDown, Poll::Pending, token()]);
        let got = poll_until(Duration::from_secs(5), within(900), &mut clock, poll);
        assert_eq!(got.unwrap().access_token.secret(), "tok");
        let secs: Vec<u64> = times
            .lock()
            .unwrap()
            .iter()
            .map(Duration::as_secs)
            .collect();
        // slow_down adds 5 s to this and every later interval (RFC 8628, 3.5).
        assert_eq!(secs, [5, 10, 20, 30]);
    }

    #[test]
    fn final_answers_end_the_polling_with_their_error() {
        let (_, mut clock, poll) = script(vec![Poll::Pending, Poll::Expired]);
        let e = poll_until(Duration::from_secs(1), within(60), &mut clock, poll);
        assert!(matches!(e, Err(Error::DeviceCodeExpired { .. })), "{e:?}");
        let (_, mut clock, poll) = script(vec![Poll::Denied(None)]);
        let e = poll_until(Duration::from_secs(1), within(60), &mut clock, poll);
        assert!(
            matches!(e, Err(Error::Authorization { ref error, .. }) if error == "access_denied"),
            "{e:?}"
        );
    }

    /// A code valid for `code` seconds and a login timeout of 5 minutes.
    fn within(code: u64) -> Deadlines {
        Deadlines {
            code_expires_in: Duration::from_secs(code),
            login_timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_deadline_ends_a_login_nobody_approves() {
        let (times, mut clock, poll) = script(vec![]);
        let e = poll_until(Duration::from_secs(5), within(20), &mut clock, poll);
        assert!(matches!(e, Err(Error::DeviceCodeExpired { .. })), "{e:?}");
        assert_eq!(times.lock().unwrap().len(), 4);
        assert_eq!(clock.elapsed(), Duration::from_secs(20));
    }

    #[test]
    fn a_long_interval_never_sleeps_past_the_login_timeout() {
        let (times, mut clock, poll) = script(vec![]);
        let deadlines = Deadlines {
            code_expires_in: Duration::from_secs(900),
            login_timeout: Duration::from_secs(1),
        };
        let e = poll_until(Duration::from_secs(30), deadlines, &mut clock, poll);
        // A login timeout is a timeout, not an expired code.
        assert!(
            matches!(e, Err(Error::DeviceLoginTimeout { waited }) if waited == Duration::from_secs(1)),
            "{e:?}"
        );
        assert_eq!(clock.elapsed(), Duration::from_secs(1));
        assert!(
            times.lock().unwrap().is_empty(),
            "no poll before the interval"
        );

        // The code's expiry first: that is what ended it.
        let (_, mut clock, poll) = script(vec![]);
        let deadlines = Deadlines {
            code_expires_in: Duration::from_secs(2),
            login_timeout: Duration::from_secs(60),
        };
        let e = poll_until(Duration::from_secs(30), deadlines, &mut clock, poll);
        assert!(matches!(e, Err(Error::DeviceCodeExpired { .. })), "{e:?}");
        assert_eq!(clock.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn absurd_intervals_and_deadlines_neither_overflow_nor_hang() {
        let max = Duration::from_secs(u64::MAX);
        let (_, mut clock, poll) = script(vec![]);
        let deadlines = Deadlines {
            code_expires_in: max,
            login_timeout: Duration::from_secs(3),
        };
        let e = poll_until(max, deadlines, &mut clock, poll);
        assert!(matches!(e, Err(Error::DeviceLoginTimeout { .. })), "{e:?}");
        // slow_down on a huge interval saturates instead of overflowing.
        let (times, mut clock, poll) = script(vec![Poll::SlowDown]);
        let forever = Deadlines {
            code_expires_in: max,
            login_timeout: max,
        };
        let e = poll_until(max - Duration::from_secs(1), forever, &mut clock, poll);
        assert!(matches!(e, Err(Error::DeviceCodeExpired { .. })), "{e:?}");
        assert_eq!(times.lock().unwrap().len(), 1);
    }

    #[test]
    fn network_blips_are_polled_through_and_reported_at_the_deadline() {
        let blip = || {
            Poll::Transient(Error::Network {
                service: Service::Token(Grant::DeviceCode),
                url: "u".into(),
                message: "connection refused".into(),
                source: None,
            })
        };
        let (_, mut clock, poll) = script(vec![blip(), Poll::Pending, token()]);
        assert!(poll_until(Duration::from_secs(1), within(60), &mut clock, poll).is_ok());
        let (_, mut clock, poll) = script((0..100).map(|_| blip()).collect());
        let e = poll_until(Duration::from_secs(1), within(5), &mut clock, poll);
        assert!(matches!(e, Err(Error::Network { .. })), "{e:?}");
    }
}
