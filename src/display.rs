//! Notebook display: the login card of a [`PendingLogin`], the status card of
//! a [`CartoAuth`], and the QR codes of the sign-in address (SVG for the
//! card, Unicode blocks for streamed text).
//!
//! Rendering is pure: every function here returns a `String` that the tests
//! check. Only [`emit`] writes, in evcxr's content protocol. The HTML is
//! self-contained (inline styles only: JupyterLab may drop `<style>` blocks
//! from untrusted outputs, and no fonts, images or scripts are fetched), every
//! interpolated value is escaped, and colours come from JupyterLab's theme
//! variables with fallbacks, or are inherited, so the cards read in light and
//! dark themes alike.

use std::io::Write;
use std::path::Path;

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

use crate::auth::{CartoAuth, Mode};
use crate::login::PendingLogin;
use crate::prompt::{Flow, LoginInstructions, instructions_text};
use crate::token::{describe_expiry, is_expired_at, now_unix};

/// First line of an evcxr rich-output block, followed by the MIME type.
const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT";
/// Last line of an evcxr rich-output block.
const END_CONTENT: &str = "EVCXR_END_CONTENT";

/// The text alternative of the QR code, for screen readers.
const QR_LABEL: &str = "QR code of the sign-in address, to open it on a phone";

// Inline styles. A fixed blue with white text keeps the button's contrast
// above 4.5:1 in both themes; everything else inherits the theme's colours.
const CARD: &str = "font-family:var(--jp-ui-font-family,system-ui,sans-serif);\
    color:var(--jp-content-font-color1,inherit);\
    border:1px solid var(--jp-border-color1,rgba(128,128,128,.45));border-radius:8px;\
    padding:14px 16px;margin:4px 0;max-width:720px;line-height:1.45;box-sizing:border-box";
const TITLE: &str = "font-size:1.15em;font-weight:600;margin:0 0 6px 0";
const MUTED: &str = "opacity:.75;font-size:.92em;margin:4px 0";
const BUTTON: &str = "display:inline-block;padding:8px 18px;border-radius:6px;\
    background:#1565c0;color:#fff;text-decoration:none;font-weight:600;\
    border:1px solid #0d47a1;cursor:pointer";
const CODE: &str = "font-family:var(--jp-code-font-family,monospace);font-size:.92em;\
    background:var(--jp-layout-color2,rgba(128,128,128,.15));color:inherit;\
    padding:1px 4px;border-radius:3px;word-break:break-all";
const CELL: &str = "text-align:left;vertical-align:top;padding:3px 14px 3px 0;\
    border:none;background:transparent;color:inherit";

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The URL as an `href`, only when it is `http(s)`: the endpoints are public
/// fields, and a `javascript:` address must never become a clickable link.
fn safe_href(url: &str) -> Option<String> {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| escape(url))
}

/// The QR code of `data` as inline SVG with a text alternative, or `None`
/// when the data does not fit in a QR code.
pub(crate) fn qr_svg(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data, EcLevel::L).ok()?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    // The renderer writes an XML declaration (not HTML) and no text
    // alternative: keep the `<svg` element, and give it a role, a label and a
    // title. Its own white background keeps it scannable on a dark theme.
    let svg = &svg[svg.find("<svg ")?..];
    let open_end = svg.find('>')?;
    let label = escape(QR_LABEL);
    Some(format!(
        "<svg role=\"img\" aria-label=\"{label}\" style=\"display:block;max-width:100%;height:auto\" {}><title>{label}</title>{}",
        &svg["<svg ".len()..open_end],
        &svg[open_end..].strip_prefix('>')?,
    ))
}

/// The QR code of `data` in Unicode half blocks (two modules a character),
/// for streamed text, or `None` when the data does not fit in a QR code.
pub(crate) fn qr_text(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data, EcLevel::L).ok()?;
    Some(code.render::<unicode::Dense1x2>().quiet_zone(true).build())
}

/// The login card: a sign-in button, the QR code in the paste flow, and the
/// numbered steps of this login's flow.
pub(crate) fn login_card(login: &LoginInstructions) -> String {
    let mut html =
        format!("<div role=\"region\" aria-label=\"Sign in to CARTO\" style=\"{CARD}\">");
    html.push_str(&format!("<div style=\"{TITLE}\">Sign in to CARTO</div>"));
    if let Some(org) = &login.org {
        html.push_str(&format!(
            "<div style=\"margin:2px 0 8px 0\">Organization: <strong>{}</strong></div>",
            escape(org)
        ));
    }
    html.push_str("<div style=\"display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start\">");
    html.push_str("<div style=\"flex:1 1 300px;min-width:0\">");
    match safe_href(&login.authorize_url) {
        Some(href) => html.push_str(&format!(
            "<p style=\"margin:6px 0 10px 0\"><a href=\"{href}\" target=\"_blank\" rel=\"noopener noreferrer\" \
             style=\"{BUTTON}\">Sign in to CARTO</a> <span style=\"{MUTED}\">(opens a new tab)</span></p>"
        )),
        None => html.push_str(&format!("<p style=\"{MUTED}\">The sign-in address is not a web address; see below.</p>")),
    }
    html.push_str("<ol style=\"margin:6px 0;padding-left:1.4em\">");
    for step in steps(login) {
        html.push_str(&format!("<li style=\"margin:3px 0\">{step}</li>"));
    }
    html.push_str("</ol>");
    if let Some(why) = &login.why_paste {
        html.push_str(&format!(
            "<p style=\"{MUTED}\">No browser is opened from this kernel ({}).</p>",
            escape(why)
        ));
    }
    html.push_str(&format!(
        "<details style=\"{MUTED}\"><summary style=\"cursor:pointer\">Sign-in address</summary>\
         <code style=\"{CODE}\">{}</code></details>",
        escape(&login.authorize_url)
    ));
    html.push_str("</div>");
    // A phone cannot reach this machine's callback server, so the QR code is
    // offered only where the code comes back by pasting.
    if login.flow == Flow::Paste {
        match qr_svg(&login.authorize_url) {
            Some(svg) => html.push_str(&format!(
                "<figure style=\"margin:0;flex:0 0 auto;text-align:center\">{svg}\
                 <figcaption style=\"{MUTED}\">Or scan with a phone</figcaption></figure>"
            )),
            None => html.push_str(&format!(
                "<p style=\"{MUTED}\">(The address is too long for a QR code.)</p>"
            )),
        }
    }
    html.push_str("</div></div>");
    html
}

/// The numbered steps, as HTML fragments, for the login's flow.
fn steps(login: &LoginInstructions) -> Vec<String> {
    let code = |text: &str| format!("<code style=\"{CODE}\">{}</code>", escape(text));
    match login.flow {
        Flow::LocalCallback => vec![
            if login.browser_opened {
                "Sign in in the browser window that opened (or with the button above).".to_string()
            } else {
                "Click <strong>Sign in to CARTO</strong> and sign in.".to_string()
            },
            "The browser comes back to this kernel and shows that you are signed in.".to_string(),
            format!(
                "Run {} in the next cell.",
                code("let auth = login.wait()?;")
            ),
        ],
        Flow::Paste => vec![
            "Click <strong>Sign in to CARTO</strong> (or scan the QR code) and sign in."
                .to_string(),
            "Copy the address of the page CARTO then shows (or the code on it).".to_string(),
            format!(
                "Run {} in the next cell, with what you copied.",
                code("let auth = login.complete(\"...\")?;")
            ),
        ],
    }
}

/// The login card's plain-text alternative: the streamed instructions and
/// the next step.
pub(crate) fn login_text(login: &LoginInstructions) -> String {
    let next = match login.flow {
        Flow::LocalCallback => "Then run: let auth = login.wait()?;",
        Flow::Paste => "Then run: let auth = login.complete(\"<the address or code>\")?;",
    };
    format!("{}{next}", instructions_text(login))
}

/// What the status card shows of a session; never the token itself.
pub(crate) struct SessionView<'a> {
    pub(crate) mode: Mode,
    pub(crate) api_base_url: Option<&'a str>,
    pub(crate) org: Option<&'a str>,
    pub(crate) expiration: i64,
    pub(crate) now: i64,
    pub(crate) cache_file: Option<&'a Path>,
    pub(crate) masked_token: String,
}

/// The status card of a session.
pub(crate) fn status_card(view: &SessionView<'_>) -> String {
    let code = |text: &str| format!("<code style=\"{CODE}\">{}</code>", escape(text));
    let expired = is_expired_at(view.expiration, view.now);
    let expiry = describe_expiry(view.expiration, view.now);
    let (mode, renewal) = match view.mode {
        Mode::OAuth => (
            "OAuth (browser sign-in)",
            "the next request for the token signs in again",
        ),
        Mode::M2m => (
            "M2M (credentials file)",
            "the next request for the token gets a new one",
        ),
    };
    let status = if expired {
        format!(
            "<span style=\"color:var(--jp-warn-color0,#e65100);font-weight:600\">expired</span>: {renewal}"
        )
    } else {
        escape(&expiry)
    };
    let mut rows = vec![
        ("Mode", escape(mode)),
        (
            "API base URL",
            view.api_base_url
                .map_or_else(|| "unknown".to_string(), code),
        ),
    ];
    if view.mode == Mode::OAuth {
        rows.push((
            "Organization",
            view.org.map_or_else(|| "none".to_string(), escape),
        ));
    }
    rows.push(("Token", format!("{}, {status}", code(&view.masked_token))));
    rows.push((
        "Cache file",
        view.cache_file.map_or_else(
            || "none (caching is off)".to_string(),
            |p| code(&p.display().to_string()),
        ),
    ));

    let mut html = format!("<div role=\"region\" aria-label=\"CARTO session\" style=\"{CARD}\">");
    let mark = if expired { "" } else { "&#10003; " };
    html.push_str(&format!("<div style=\"{TITLE}\">{mark}CARTO session</div>"));
    html.push_str("<table style=\"border-collapse:collapse;margin:0;border:none;background:transparent;color:inherit\"><tbody>");
    for (name, value) in rows {
        html.push_str(&format!(
            "<tr style=\"background:transparent\"><th scope=\"row\" style=\"{CELL};font-weight:600;white-space:nowrap\">{name}</th>\
             <td style=\"{CELL}\">{value}</td></tr>"
        ));
    }
    html.push_str("</tbody></table></div>");
    html
}

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
    /// paste flow a QR code of it, the steps to finish this login, and the
    /// SSO organization when set. Feature `notebook`.
    ///
    /// ```no_run
    /// let login = carto_auth::CartoAuth::oauth().open_browser(false).begin()?;
    /// std::fs::write("login.html", login.to_html())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_html(&self) -> String {
        login_card(&self.instructions())
    }

    /// Shows the login card as the value of an evcxr cell (evcxr calls this
    /// for a cell's last expression), with a plain-text alternative. Never
    /// panics. Feature `notebook`.
    pub fn evcxr_display(&self) {
        let instructions = self.instructions();
        emit(
            &mut std::io::stdout().lock(),
            &login_text(&instructions),
            || login_card(&instructions),
        );
    }
}

impl CartoAuth {
    fn view(&self) -> SessionView<'_> {
        SessionView {
            mode: self.mode(),
            api_base_url: self.get_api_base_url(),
            org: self.org(),
            expiration: self.expiration(),
            now: now_unix(),
            cache_file: self.cache_filepath(),
            masked_token: self.masked_token(),
        }
    }

    /// The session's status card as self-contained HTML: mode, API base URL,
    /// organization, time left on the token, cache file, and the token
    /// masked (never whole). Feature `notebook`.
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

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.carto.com/authorize?client_id=abc&response_type=code&scope=None\
        &audience=carto-cloud-native-api&redirect_uri=https%3A%2F%2Fapp.carto.com%2Fauth%2Ftoken\
        &code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn instructions(flow: Flow, org: Option<&str>) -> LoginInstructions {
        LoginInstructions {
            authorize_url: URL.into(),
            flow,
            browser_opened: flow == Flow::LocalCallback,
            org: org.map(str::to_string),
            why_paste: (flow == Flow::Paste).then(|| "JupyterHub".to_string()),
        }
    }

    fn view(api: Option<&str>, expiration: i64) -> SessionView<'_> {
        SessionView {
            mode: Mode::OAuth,
            api_base_url: api,
            org: Some("acme"),
            expiration,
            now: 1_000,
            cache_file: Some(Path::new("/home/ana/.carto-auth/token_oauth.json")),
            masked_token: "eyJhbG…".into(),
        }
    }

    /// What must never be in a card: anything fetched or run.
    fn assert_self_contained(html: &str) {
        for needle in [
            "<script",
            "<link",
            "<img",
            "<iframe",
            "<style",
            "src=",
            "@import",
            "url(",
            "javascript:",
            "<?xml",
        ] {
            assert!(
                !html.to_ascii_lowercase().contains(needle),
                "{needle} in {html}"
            );
        }
    }

    #[test]
    fn escape_covers_the_five_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn the_paste_card_links_to_the_authorize_url_and_has_a_qr_code() {
        let html = login_card(&instructions(Flow::Paste, None));
        let href = format!("href=\"{}\"", URL.replace('&', "&amp;"));
        assert!(
            html.contains(&format!(
                "<a {href} target=\"_blank\" rel=\"noopener noreferrer\""
            )),
            "{html}"
        );
        assert!(html.contains(">Sign in to CARTO</a>"));
        assert!(
            html.contains("<svg role=\"img\" aria-label=\"QR code"),
            "{html}"
        );
        assert!(html.contains("<title>QR code"));
        assert!(html.contains("login.complete(&quot;...&quot;)?;"), "{html}");
        assert!(!html.contains("login.wait()"));
        assert!(html.contains("JupyterHub"));
        assert!(!html.contains("Organization"));
        assert_self_contained(&html);
    }

    #[test]
    fn the_local_card_says_to_wait_and_has_no_qr_code() {
        let html = login_card(&instructions(Flow::LocalCallback, Some("acme")));
        assert!(html.contains("let auth = login.wait()?;"), "{html}");
        assert!(!html.contains("login.complete"));
        assert!(
            !html.contains("<svg"),
            "a phone cannot reach the local callback"
        );
        assert!(html.contains("Organization: <strong>acme</strong>"));
        let steps = html.matches("<li ").count();
        assert_eq!(steps, 3, "{html}");
        assert_self_contained(&html);
    }

    #[test]
    fn interpolated_values_are_escaped() {
        let mut login = instructions(Flow::Paste, Some("<script>alert(1)</script>"));
        login.why_paste = Some("\"><script>x</script>".into());
        let html = login_card(&login);
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert_self_contained(&html);

        let status = status_card(&view(
            Some("https://api.example/<script>alert(1)</script>\"'"),
            100_000,
        ));
        assert!(
            status.contains("https://api.example/&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"),
            "{status}"
        );
        assert_self_contained(&status);
    }

    #[test]
    fn a_non_web_authorize_url_is_not_a_link() {
        let mut login = instructions(Flow::LocalCallback, None);
        login.authorize_url = "javascript:alert(1)//https://".into();
        let html = login_card(&login);
        assert!(!html.contains("href="), "{html}");
        assert_eq!(
            safe_href("HTTPS://auth.carto.com/a?b=1&c=2").as_deref(),
            Some("HTTPS://auth.carto.com/a?b=1&amp;c=2")
        );
    }

    #[test]
    fn the_status_card_shows_the_session_but_only_the_masked_token() {
        let html = status_card(&view(
            Some("https://gcp-us-east1.api.carto.com"),
            1_000 + 23 * 3600 + 41 * 60 + 7,
        ));
        for part in [
            "OAuth",
            "https://gcp-us-east1.api.carto.com",
            "acme",
            "eyJhbG…",
            "expires in 23 h 41 min",
            "/home/ana/.carto-auth/token_oauth.json",
            "&#10003;",
        ] {
            assert!(html.contains(part), "{part} missing from {html}");
        }
        assert_self_contained(&html);
    }

    #[test]
    fn the_status_card_says_when_the_token_expired_and_when_caching_is_off() {
        let mut v = view(None, 1_030); // inside the 60 s margin
        v.cache_file = None;
        v.mode = Mode::M2m;
        let html = status_card(&v);
        assert!(
            html.contains(">expired</span>: the next request for the token gets a new one"),
            "{html}"
        );
        assert!(html.contains("none (caching is off)") && html.contains("unknown"));
        assert!(!html.contains("&#10003;") && !html.contains("Organization"));
    }

    #[test]
    fn the_plain_text_alternative_has_the_url_on_its_own_line_and_the_next_step() {
        let text = login_text(&instructions(Flow::Paste, None));
        assert!(text.lines().any(|l| l == URL), "{text}");
        assert!(
            text.ends_with("Then run: let auth = login.complete(\"<the address or code>\")?;"),
            "{text}"
        );
        assert!(login_text(&instructions(Flow::LocalCallback, None)).ends_with("login.wait()?;"));
    }

    #[test]
    fn the_svg_qr_code_is_sized_and_labelled() {
        let svg = qr_svg(URL).unwrap();
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"QR code"),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("viewBox=\"0 0 ") && svg.contains("<path fill=\"#000\""));
        let width: u32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|w| w.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!((200..400).contains(&width), "{width}");
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn the_text_qr_code_is_a_square_of_half_blocks() {
        let text = qr_text(URL).unwrap();
        let code = QrCode::with_error_correction_level(URL, EcLevel::L).unwrap();
        let side = code.width() + 8; // with the 4-module quiet zone
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == side), "{text}");
        assert!(
            text.chars()
                .all(|c| matches!(c, ' ' | '\u{2580}' | '\u{2584}' | '\u{2588}' | '\n'))
        );
        // The top-left finder pattern: a solid 7-module run after the quiet zone.
        assert!(
            lines[2]
                .chars()
                .skip(4)
                .take(7)
                .all(|c| c == '\u{2588}' || c == '\u{2580}' || c == '\u{2584}'),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn data_too_long_for_a_qr_code_gives_none_and_the_card_still_renders() {
        let long = format!("https://auth.carto.com/authorize?org={}", "x".repeat(8000));
        assert!(qr_svg(&long).is_none() && qr_text(&long).is_none());
        let mut login = instructions(Flow::Paste, None);
        login.authorize_url = long;
        assert!(login_card(&login).contains("too long for a QR code"));
    }

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
