//! An M2M credentials file of any content.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match carto_auth::fuzzing::parse_credentials(text) {
        Ok((api, id, secret)) => {
            for value in [&api, &id, &secret] {
                assert!(
                    !value.is_empty() && value.trim() == value.as_str(),
                    "{value:?}"
                );
            }
        }
        // Every refusal names the file.
        Err(message) => assert!(message.contains("fuzz.json"), "{message}"),
    }
});
