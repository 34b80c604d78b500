//! A request head as the local callback server reads it from a connection.
//! Only a GET of the callback path with this login's state may end the
//! login, and a code it yields is a sane one.
#![no_main]

use carto_auth::fuzzing::{CallbackVerdict, judge_callback_head};
use libfuzzer_sys::fuzz_target;

const PATH: &str = "/callback/";
const STATE: &str = "S7dJk2-xq_0aL9mN3pQ8rT5vW1yZ4bC6";

fuzz_target!(|head: &[u8]| {
    let verdict = judge_callback_head(head, PATH, STATE);
    if let CallbackVerdict::Ignored(status) = verdict {
        assert!(matches!(status, 400 | 404 | 405), "{status}");
        return;
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).expect("a login ended by a non-UTF-8 request line");
    let target = line
        .strip_prefix("GET ")
        .expect("a login ended by another method")
        .split(' ')
        .next()
        .unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    assert_eq!(path, PATH, "{line:?} ended the login");
    let has_state =
        url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "state" && v == STATE);
    assert!(has_state, "{line:?} ended the login without the state");
    if let CallbackVerdict::Code(code) = verdict {
        assert!(!code.is_empty() && code.len() <= 4096, "{code:?}");
    }
});
