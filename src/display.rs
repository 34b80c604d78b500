//! Notebook display: evcxr's content protocol and the `evcxr_display`
//! methods of the values a user ends a cell with. Feature `notebook`.
//!
//! Rendering is pure (`cards.rs`, `table.rs` return `String`s that tests
//! check); only [`emit`] writes.

use std::io::Write;

use crate::auth::CartoAuth;
use crate::cards::{SessionView, login_card, login_text, status_card};
use crate::clock::now_unix;
use crate::login::PendingLogin;
use crate::query::QueryResult;

/// First line of an evcxr rich-output block, followed by the MIME type.
const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT";
/// Last line of an evcxr rich-output block.
const END_CONTENT: &str = "EVCXR_END_CONTENT";

/// Writes a value's display in evcxr's content protocol: `text/plain`
/// first, then the HTML. The kernel keeps one entry per MIME type and sends
/// both as the cell's result; the front end shows the richest it can.
///
/// A display must never lose the user's kernel state: a panic while
/// rendering leaves the text alone, and write errors are ignored (`println!`
/// would panic on them, which is why this does not use `evcxr_runtime`).
pub(crate) fn emit(out: &mut impl Write, plain: &str, html: impl FnOnce() -> String) {
    let html = std::panic::catch_unwind(std::panic::AssertUnwindSafe(html)).ok();
    let _ = out.write_all(content_block("text/plain", plain).as_bytes());
    if let Some(html) = html {
        let _ = out.write_all(content_block("text/html", &html).as_bytes());
    }
    let _ = out.flush();
}

/// One block of evcxr's content protocol. The kernel reads the content up
/// to a line that is exactly the end marker; nothing rendered here is ever a
/// line of its own with that text.
fn content_block(mime: &str, content: &str) -> String {
    format!("{BEGIN_CONTENT} {mime}\n{content}\n{END_CONTENT}\n")
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
        let instructions = self.instructions();
        emit(
            &mut std::io::stdout().lock(),
            &login_text(&instructions),
            || login_card(&instructions, now_unix()),
        );
    }
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
        let view = self.view();
        emit(&mut std::io::stdout().lock(), &self.to_string(), || {
            status_card(&view)
        });
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
        emit(
            &mut std::io::stdout().lock(),
            &crate::table::text(self),
            || crate::table::table(self),
        );
    }
}

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
