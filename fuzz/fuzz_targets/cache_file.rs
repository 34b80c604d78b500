//! A token cache file of any content: loaded or refused, and what loads is
//! written back and loads again to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fields) = carto_auth::fuzzing::parse_cache(text) {
        assert!(!fields.access_token.is_empty());
        let written = carto_auth::fuzzing::write_cache(&fields);
        assert_eq!(
            carto_auth::fuzzing::parse_cache(&written),
            Ok(fields),
            "{written}"
        );
    }
});
