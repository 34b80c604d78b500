//! Notebook display: the `evcxr_display` methods of the values a user ends
//! a cell with. Feature `notebook`.
//!
//! Rendering is pure (`cards.rs`, `table.rs` return `String`s that tests
//! check); only [`emit`] writes, through `evcxr_output.rs`, which keeps
//! whatever the data holds inside its block.

use std::io::Write;

use crate::auth::CartoAuth;
use crate::cards::{SessionView, login_card, login_text, status_card};
use crate::clock::now_unix;
use crate::evcxr_output::{Content, write_block};
use crate::login::PendingLogin;
use crate::instructions::LoginInstructions;
use crate::query::QueryResult;

/// Writes a value's display in evcxr's content protocol: `text/plain`
/// first, then the HTML. The kernel keeps one entry per MIME type and sends
/// both as the cell's result; the front end shows the richest it can.
///
/// A display must never lose the user's kernel state: a panic while
/// rendering leaves the text alone, and write errors are ignored (`println!`
/// would panic on them, which is why this does not use `evcxr_runtime`).
pub(crate) fn emit(out: &mut impl Write, plain: &str, html: impl FnOnce() -> String) {
    let html = std::panic::catch_unwind(std::panic::AssertUnwindSafe(html)).ok();
    write_block(out, Content::Text, plain);
    if let Some(html) = html {
        write_block(out, Content::Html, &html);
    }
}

impl PendingLogin {
    /// The login card as self-contained HTML: a "Sign in to CARTO" button
    /// linking to [`authorize_url`](Self::authorize_url) (new tab), in the
    /// paste and device flows a QR code of it, in the device flow the code
    /// to approve in large type and the time left, the steps to finish this
    /// login, and the SSO organization when set. Feature `notebook`.
    ///
    /// ```no_run
    /// let login = carto_auth::CartoAuth::oauth().open_browser(false).begin()?;
    /// std::fs::write("login.html", login.to_html())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_html(&self) -> String {
        login_card(&self.instructions(), now_unix())
    }

    /// Shows the login card as the value of an evcxr cell (evcxr calls this
    /// for a cell's last expression), with a plain-text alternative. Never
    /// panics. Feature `notebook`.
    pub fn evcxr_display(&self) {
        write_login(
            &mut std::io::stdout().lock(),
            &self.instructions(),
            now_unix(),
        );
    }
}

/// What [`PendingLogin::evcxr_display`] writes.
fn write_login(out: &mut impl Write, instructions: &LoginInstructions, now: i64) {
    emit(out, &login_text(instructions), || {
        login_card(instructions, now)
    });
}

impl CartoAuth {
    fn view(&self) -> SessionView {
        SessionView {
            mode: self.mode(),
            api_base_url: self.get_api_base_url().map(str::to_string),
            org: self.org().map(str::to_string),
            expiration: self.expiration(),
            now: now_unix(),
            cache_file: self.cache_filepath().map(|p| p.display().to_string()),
            masked_token: self.masked_token(),
            source: self.token_source().to_string(),
        }
    }

    /// The session's status card as self-contained HTML: mode, API base URL,
    /// organization, time left on the token and where it came from, cache
    /// file, and the token masked (never whole). Feature `notebook`.
    pub fn to_html(&self) -> String {
        status_card(&self.view())
    }

    /// Shows the status card as the value of an evcxr cell, with its
    /// [`Display`](std::fmt::Display) text as the plain-text alternative.
    /// Never panics. Feature `notebook`.
    pub fn evcxr_display(&self) {
        self.write_display(&mut std::io::stdout().lock());
    }

    fn write_display(&self, out: &mut impl Write) {
        let view = self.view();
        emit(out, &self.to_string(), || status_card(&view));
    }
}

impl QueryResult {
    /// The result as a self-contained HTML table: column names with their
    /// types, the first 20 rows and how many more, numbers right-aligned,
    /// NULL set apart from the text "null", long values shortened with the
    /// full text on hover, everything escaped. Feature `notebook`.
    pub fn to_html(&self) -> String {
        crate::table::table(self)
    }

    /// Shows the table as the value of an evcxr cell, with a plain-text
    /// alternative. Never panics. Feature `notebook`.
    pub fn evcxr_display(&self) {
        self.write_display(&mut std::io::stdout().lock());
    }

    fn write_display(&self, out: &mut impl Write) {
        emit(out, &crate::table::text(self), || crate::table::table(self));
    }
}

/// Everything a display writes, read the way evcxr reads it, over
/// arbitrary strings in every field.
#[cfg(test)]
mod protocol_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_writes_both_mime_types_in_evcxr_protocol() {
        let mut out = Vec::new();
        emit(&mut out, "plain", || "<b>rich</b>".into());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "EVCXR_BEGIN_CONTENT text/plain\nplain\nEVCXR_END_CONTENT\n\
             EVCXR_BEGIN_CONTENT text/html\n<b>rich</b>\nEVCXR_END_CONTENT\n"
        );
    }

    #[test]
    fn a_failing_display_falls_back_to_text_and_never_panics() {
        let mut out = Vec::new();
        emit(&mut out, "plain", || panic!("renderer bug"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "EVCXR_BEGIN_CONTENT text/plain\nplain\nEVCXR_END_CONTENT\n"
        );

        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("closed"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("closed"))
            }
        }
        emit(&mut Broken, "plain", || "<b>rich</b>".into());
    }
}
