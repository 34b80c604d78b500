//! Logs in to CARTO and prints the API base URL and a shortened token.
//!
//! ```text
//! cargo run --example login                     # interactive (browser or paste)
//! cargo run --example login -- --m2m creds.json # M2M credentials file
//! ```
//! The `CARTO_*` endpoint variables point it at another CARTO (see
//! `cargo run --example fake_carto`).

use carto_auth::CartoAuth;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, path] if flag == "--m2m" => CartoAuth::from_m2m(path),
        [] => CartoAuth::from_oauth(),
        _ => {
            eprintln!("usage: login [--m2m CREDENTIALS_FILE]");
            std::process::exit(2);
        }
    };
    match result {
        Ok(auth) => {
            println!(
                "API base URL: {}",
                auth.get_api_base_url().unwrap_or("(unknown)")
            );
            println!("token:        {}", auth.masked_token());
            println!("{auth}");
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
