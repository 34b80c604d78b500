//! The whole job against a fake CARTO on loopback (no account, no network):
//! an M2M login and a paste-flow OAuth login, each printing the API base URL
//! and a shortened token. Nothing is written outside a temporary directory.
//!
//! ```text
//! cargo run --example demo
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use carto_auth::{CartoAuth, LoginInstructions, Prompt};

/// Plays the user: opens the authorize URL on the fake CARTO and pastes the
/// address it redirects to.
struct AutoPaste {
    fake_base: String,
    url: std::sync::Mutex<String>,
}

impl Prompt for AutoPaste {
    fn show_login(&self, login: &LoginInstructions) {
        println!("[demo] the user would open: {}", login.authorize_url);
        *self.url.lock().unwrap() = login.authorize_url.clone();
    }
    fn ask_code(&self, _question: &str) -> std::io::Result<String> {
        let url = self.url.lock().unwrap().clone();
        assert!(url.starts_with(&self.fake_base));
        let (_, headers, _) = support::http_get(&url);
        let landed = support::header(&headers, "location").unwrap_or_default();
        println!("[demo] ... signs in, and pastes: {landed}");
        Ok(landed)
    }
    fn notice(&self, message: &str) {
        println!("[demo] {message}");
    }
}

fn main() -> Result<(), carto_auth::Error> {
    let fake = support::FakeCarto::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!(
        "A fake CARTO is listening on {} (this is not the real service).\n",
        fake.base
    );

    let creds = fake.m2m_credentials_file(dir.path());
    let m2m = CartoAuth::m2m(&creds)
        .endpoints(fake.endpoints())
        .cache_filepath(dir.path().join("token_m2m.json"))
        .login()?;
    println!(
        "M2M:   API base URL {}, token {}",
        m2m.get_api_base_url().unwrap_or("?"),
        m2m.masked_token()
    );

    let prompt = AutoPaste {
        fake_base: fake.base.clone(),
        url: Default::default(),
    };
    let oauth = CartoAuth::oauth()
        .open_browser(false)
        .endpoints(fake.endpoints())
        .cache_filepath(dir.path().join("token_oauth.json"))
        .prompt(prompt)
        .login()?;
    println!(
        "OAuth: API base URL {}, token {}",
        oauth.get_api_base_url().unwrap_or("?"),
        oauth.masked_token()
    );
    let (project, _) = oauth.get_carto_dw_credentials()?;
    println!("OAuth: CARTO Data Warehouse project {project}");
    Ok(())
}
