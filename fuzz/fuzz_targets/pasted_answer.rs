//! What a user pastes at the login prompt: the whole address or the bare code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = carto_auth::fuzzing::parse_pasted(text) {
        // A code is one URL-safe word of sane length, whatever was pasted.
        assert!(!code.is_empty() && code.len() <= 4096, "{code:?}");
        assert!(
            code.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c)),
            "{code:?}"
        );
    }
});
