//! One request to the callback server: read its head (within a deadline
//! and a size cap), judge it without I/O, answer it, close.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::CallbackResult;
use crate::oauth::{CallbackOutcome, parse_callback_query};
use crate::secret::AuthorizationCode;

/// How long a client has to send its whole request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// How long writing an answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a request head may weigh; a real callback is well under 4 KiB.
const MAX_HEAD: usize = 64 * 1024;

/// What every connection of one login needs.
pub(super) struct Login {
    pub(super) path: String,
    pub(super) state: String,
    pub(super) issuer: String,
    pub(super) success_page: String,
    pub(super) error_page: String,
    pub(super) events: Sender<CallbackResult>,
}

/// One connection: one request, one answer, closed.
pub(super) fn handle(mut stream: TcpStream, login: &Login) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let verdict = match read_head(&mut stream, Instant::now() + HEAD_DEADLINE) {
        Ok(head) => judge_head(&head, &login.path, &login.state, &login.issuer),
        Err(HeadError::TooLarge) => Verdict::Ignore {
            status: 431,
            message: "Request too large.",
        },
        // Closed, or too slow: nobody to answer.
        Err(HeadError::Gone) => return,
    };
    match verdict {
        Verdict::Ignore { status, message } => respond(&mut stream, status, message, None),
        // Answer first: the program may exit as soon as the login is done.
        Verdict::Code(code) => {
            respond(
                &mut stream,
                302,
                "Signed in to CARTO. You can close this tab.",
                Some(&login.success_page),
            );
            let _ = login.events.send(CallbackResult::Code(code));
        }
        Verdict::Denied { error, description } => {
            respond(
                &mut stream,
                302,
                "The CARTO login failed; see the notebook or terminal.",
                Some(&login.error_page),
            );
            let _ = login
                .events
                .send(CallbackResult::Denied { error, description });
        }
        Verdict::WrongIssuer(iss) => {
            respond(
                &mut stream,
                302,
                "This sign-in answer does not come from CARTO; it was not used.",
                Some(&login.error_page),
            );
            let _ = login.events.send(CallbackResult::WrongIssuer(iss));
        }
    }
}

enum HeadError {
    TooLarge,
    Gone,
}

/// Reads up to the blank line that ends a request head, within `deadline`
/// and [`MAX_HEAD`] bytes.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(HeadError::Gone);
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(HeadError::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(HeadError::Gone),
        };
        // The end may straddle two reads.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&head[from..]) {
            head.truncate(from + end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Where the blank line is: `CRLF CRLF`, or a bare `LF LF`.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Judges a request head by its request line, `METHOD /target HTTP/1.x`.
pub(crate) fn judge_head(head: &[u8], callback_path: &str, state: &str, issuer: &str) -> Verdict {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end]).map(|l| l.trim_end_matches('\r'));
    let mut parts = line.as_deref().unwrap_or("").split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if target.starts_with('/') && version.starts_with("HTTP/1.") =>
        {
            judge(method == "GET", target, callback_path, state, issuer)
        }
        _ => Verdict::Ignore {
            status: 400,
            message: "Bad request.",
        },
    }
}

/// What one request to the callback server gets.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Answered with this status and message; the wait goes on.
    Ignore { status: u16, message: &'static str },
    /// This login's code: the wait is over.
    Code(AuthorizationCode),
    /// This login's OAuth error: the wait is over.
    Denied {
        error: String,
        description: Option<String>,
    },
    /// This login's `state` with another issuer's `iss`: the wait is over,
    /// the answer is not used.
    WrongIssuer(String),
}

/// Judges a request by its method and target (`/path?query`), without I/O:
/// only a `GET` of the callback path carrying this login's `state` can end
/// the wait.
pub(crate) fn judge(
    is_get: bool,
    target: &str,
    callback_path: &str,
    state: &str,
    issuer: &str,
) -> Verdict {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !is_get {
        return Verdict::Ignore {
            status: 405,
            message: "Only GET is served here.",
        };
    }
    if path != callback_path {
        return Verdict::Ignore {
            status: 404,
            message: "Not found.",
        };
    }
    match parse_callback_query(query, state, issuer) {
        CallbackOutcome::Code(code) => Verdict::Code(code),
        CallbackOutcome::Denied { error, description } => Verdict::Denied { error, description },
        CallbackOutcome::WrongIssuer(iss) => Verdict::WrongIssuer(iss),
        CallbackOutcome::Stray => Verdict::Ignore {
            status: 400,
            message: "This is not the CARTO login this program is waiting for. \
                      Use the sign-in link it printed.",
        },
    }
}

fn respond(stream: &mut TcpStream, status: u16, message: &str, location: Option<&str>) {
    // A redirect for browsers, and a page with a link for anything that does
    // not follow it. Neither holds a value from the request.
    let body = match location {
        Some(to) => format!(
            "<!doctype html><meta charset=utf-8><title>CARTO</title>\
             <p>{message}</p><p><a href=\"{to}\">Continue</a></p>"
        ),
        None => format!("<!doctype html><meta charset=utf-8><title>CARTO</title><p>{message}</p>"),
    };
    let reason = match status {
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "",
    };
    let mut answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(to) = location {
        answer.push_str(&format!("Location: {to}\r\n"));
    }
    if status == 405 {
        answer.push_str("Allow: GET\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    if let Err(e) = stream
        .write_all(answer.as_bytes())
        .and_then(|()| stream.flush())
    {
        log::debug!("callback server: could not answer: {e}");
        return;
    }
    // Closing with unread input (a body) would reset the connection and
    // could lose the answer: say we are done, then take what is left, briefly.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = std::io::copy(
        &mut Read::by_ref(stream).take(MAX_HEAD as u64),
        &mut std::io::sink(),
    );
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// The fuzz seeds (fuzz/seeds/callback_request): the state may come
    /// percent-encoded (it decodes to the same), HTTP/1.0 and bare line feeds
    /// are read, an empty code, another method or a doubled space is not the
    /// callback.
    #[test]
    fn fuzz_seeds_stay_fixed() {
        let v = |head: String| judge_head(head.as_bytes(), PATH, STATE, ISS);
        assert!(
            matches!(v(format!("GET {PATH}?code=abc&state={STATE} HTTP/1.1\r\nHost: localhost:10000\r\nUser-Agent: Mozilla/5.0")), Verdict::Code(c) if c.secret() == "abc")
        );
        assert!(matches!(
            v(format!(
                "GET {PATH}?code=abc&state=%53{} HTTP/1.0\n",
                &STATE[1..]
            )),
            Verdict::Code(_)
        ));
        assert!(matches!(
            v(format!(
                "POST {PATH}?code=abc&state={STATE} HTTP/1.1\r\nContent-Length: 3"
            )),
            Verdict::Ignore { status: 405, .. }
        ));
        assert!(matches!(
            v("GET /favicon.ico HTTP/1.1\r\nHost: x".into()),
            Verdict::Ignore { status: 404, .. }
        ));
        assert!(matches!(
            v(format!(
                "GET {PATH}?error=access_denied&error_description=no&state={STATE} HTTP/1.1"
            )),
            Verdict::Denied { .. }
        ));
        assert!(matches!(
            v(format!("GET {PATH}?state={STATE}&code= HTTP/1.1")),
            Verdict::Ignore { status: 400, .. }
        ));
        assert!(matches!(
            v(format!("GET  {PATH}?code=a&state={STATE} HTTP/1.1")),
            Verdict::Ignore { status: 400, .. }
        ));
    }

    const PATH: &str = "/callback/";
    const ISS: &str = "https://auth.carto.com/";
    const STATE: &str = "S7dJk2-xq_0aL9mN3pQ8rT5vW1yZ4bC6";

    fn ends_the_wait(v: &Verdict) -> bool {
        matches!(
            v,
            Verdict::Code(_) | Verdict::Denied { .. } | Verdict::WrongIssuer(_)
        )
    }

    proptest! {
        #[test]
        fn any_request_is_judged_without_panic(is_get in any::<bool>(), target in any::<String>(), state in any::<String>()) {
            let _ = judge(is_get, &target, PATH, &state, ISS);
        }

        #[test]
        fn only_a_get_of_the_callback_path_with_the_state_ends_the_wait(
            is_get in any::<bool>(),
            path in prop_oneof![Just(PATH.to_string()), "/[a-z/%.]{0,20}"],
            params in proptest::collection::vec(("(code|state|error|x)", "[A-Za-z0-9_-]{0,40}"), 0..5),
        ) {
            let query: String = params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
            let verdict = judge(is_get, &format!("{path}?{query}"), PATH, STATE, ISS);
            let has_state = params.iter().any(|(k, v)| k == "state" && v == STATE);
            if ends_the_wait(&verdict) {
                prop_assert!(is_get && path == PATH && has_state, "{:?}", verdict);
            } else if let Verdict::Ignore { status, .. } = verdict {
                prop_assert_eq!(status, if !is_get { 405 } else if path != PATH { 404 } else { 400 });
            }
        }

        #[test]
        fn the_real_callback_gives_its_code(code in "[A-Za-z0-9_-]{1,80}", before in "([a-z]{1,5}=[a-z0-9]{0,5}&){0,3}") {
            let verdict = judge(true, &format!("{PATH}?{before}code={code}&state={STATE}"), PATH, STATE, ISS);
            prop_assert!(matches!(&verdict, Verdict::Code(c) if c.secret() == code), "{:?}", verdict);
        }
    }

    proptest! {
        #[test]
        fn any_request_head_is_judged_without_panic(head in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = judge_head(&head, PATH, STATE, ISS);
        }

        #[test]
        fn a_request_line_is_judged_as_its_method_and_target(
            method in "(GET|POST|HEAD|PUT|get)",
            code in "[A-Za-z0-9_-]{1,40}",
            headers in "(X-[a-z]{1,8}: [ -~]{0,20}\r\n){0,4}",
        ) {
            let head = format!("{method} {PATH}?code={code}&state={STATE} HTTP/1.1\r\n{headers}");
            let verdict = judge_head(head.as_bytes(), PATH, STATE, ISS);
            if method == "GET" {
                prop_assert!(matches!(&verdict, Verdict::Code(c) if c.secret() == code), "{:?}", verdict);
            } else {
                prop_assert!(matches!(verdict, Verdict::Ignore { status: 405, .. }), "{:?}", verdict);
            }
        }
    }

    #[test]
    fn malformed_request_lines_are_bad_requests() {
        for head in [
            &b""[..],
            b"GET",
            b"GET /callback/",
            b"GET callback/ HTTP/1.1",
            b"GET /callback/ HTTP/2",
            b"GET  /callback/ HTTP/1.1",
            b"\xff\xfe / HTTP/1.1",
            b"GET / HTTP/1.1 extra",
        ] {
            assert!(
                matches!(
                    judge_head(head, PATH, STATE, ISS),
                    Verdict::Ignore { status: 400, .. }
                ),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        let ok = format!("GET {PATH}?code=c&state={STATE} HTTP/1.0\nHost: x");
        assert!(matches!(
            judge_head(ok.as_bytes(), PATH, STATE, ISS),
            Verdict::Code(_)
        ));
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn an_error_with_the_state_ends_the_wait_and_a_huge_query_does_not() {
        assert!(matches!(
            judge(
                true,
                &format!("{PATH}?error=access_denied&state={STATE}"),
                PATH,
                STATE,
                ISS
            ),
            Verdict::Denied { .. }
        ));
        let huge = format!("{PATH}?code={}&state=wrong", "A".repeat(1 << 20));
        assert!(matches!(
            judge(true, &huge, PATH, STATE, ISS),
            Verdict::Ignore { status: 400, .. }
        ));
        // A code longer than any real one is refused even with the state.
        let long = format!("{PATH}?code={}&state={STATE}", "A".repeat(5000));
        assert!(matches!(
            judge(true, &long, PATH, STATE, ISS),
            Verdict::Ignore { status: 400, .. }
        ));
    }
}
