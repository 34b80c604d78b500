//! The HTML cards: a login card for each flow, and a session card.
//! Feature `notebook`.

use crate::clock::{describe_expiry, is_expired_at};
use crate::html::{BUTTON, CARD, CELL, MUTED, TITLE, code, escape, safe_href};
use crate::instructions::{Flow, LoginInstructions, instructions_text};
use crate::mode::Mode;

/// The text alternative of the QR code, for screen readers.
const QR_LABEL: &str = "QR code of the sign-in address, to open it on a phone";
/// The device code: large, monospace, spaced, unmistakable.
const USER_CODE: &str = "font-family:var(--jp-code-font-family,ui-monospace,monospace);\
    font-size:2.5em;font-weight:700;letter-spacing:.18em;padding:6px 14px;margin:6px 0 10px 0;\
    display:inline-block;border:2px solid var(--jp-border-color1,rgba(128,128,128,.6));\
    border-radius:8px;background:var(--jp-layout-color2,rgba(128,128,128,.12));color:inherit";

/// The QR code of `data` as inline SVG with a text alternative, or `None`
/// when the data does not fit in a QR code.
pub(crate) fn qr_svg(data: &str) -> Option<String> {
    let svg = crate::qr::svg(data)?;
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

/// The login card: a sign-in button, the QR code where a phone can finish
/// the login, the device code, and the numbered steps of this login's flow.
/// `now` (Unix seconds) is when it is shown, for the device code's time left.
pub(crate) fn login_card(login: &LoginInstructions, now: i64) -> String {
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
    if let Some(user_code) = &login.user_code {
        html.push_str(&format!(
            "<div style=\"{MUTED}\">Your sign-in code</div>\
             <div aria-label=\"sign-in code\" style=\"{USER_CODE}\">{}</div>",
            escape(&user_code.to_uppercase())
        ));
    }
    let label = if login.flow == Flow::DeviceCode {
        "Open the sign-in page"
    } else {
        "Sign in to CARTO"
    };
    match safe_href(&login.authorize_url) {
        Some(href) => html.push_str(&format!(
            "<p style=\"margin:6px 0 10px 0\"><a href=\"{href}\" target=\"_blank\" rel=\"noopener noreferrer\" \
             style=\"{BUTTON}\">{label}</a> <span style=\"{MUTED}\">(opens a new tab)</span></p>"
        )),
        None => html.push_str(&format!("<p style=\"{MUTED}\">The sign-in address is not a web address; see below.</p>")),
    }
    html.push_str("<ol style=\"margin:6px 0;padding-left:1.4em\">");
    for step in steps(login) {
        html.push_str(&format!("<li style=\"margin:3px 0\">{step}</li>"));
    }
    html.push_str("</ol>");
    if let Some(expires_at) = login.expires_at {
        let text = if is_expired_at(expires_at, now) {
            "This code has expired: start the login again.".to_string()
        } else {
            format!(
                "The code {} (at {} UTC).",
                describe_expiry(expires_at, now),
                utc_clock(expires_at)
            )
        };
        html.push_str(&format!("<p style=\"{MUTED}\">{}</p>", escape(&text)));
    }
    if let Some(why) = &login.why_paste {
        html.push_str(&format!(
            "<p style=\"{MUTED}\">No browser is opened from this kernel ({}).</p>",
            escape(why)
        ));
    }
    html.push_str(&format!(
        "<details style=\"{MUTED}\"><summary style=\"cursor:pointer\">Sign-in address</summary>{}</details>",
        code(&login.authorize_url)
    ));
    html.push_str("</div>");
    // A phone cannot reach this machine's callback server, so the QR code is
    // offered only where the login finishes without it.
    if login.flow != Flow::LocalCallback {
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

/// `HH:MM` of a Unix time, in UTC.
fn utc_clock(unix: i64) -> String {
    let day = unix.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
}

/// The numbered steps, as HTML fragments, for the login's flow.
fn steps(login: &LoginInstructions) -> Vec<String> {
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
        Flow::DeviceCode => vec![
            "Click <strong>Open the sign-in page</strong> (or scan the QR code with a phone) \
             and sign in."
                .to_string(),
            "Check that the page shows the code above, and approve it.".to_string(),
            format!(
                "Run {} in the next cell: it finishes as soon as the code is approved.",
                code("let auth = login.wait()?;")
            ),
        ],
    }
}

/// The login card's plain-text alternative: the streamed instructions and
/// the next step.
pub(crate) fn login_text(login: &LoginInstructions) -> String {
    let next = match login.flow {
        Flow::LocalCallback | Flow::DeviceCode => "Then run: let auth = login.wait()?;",
        Flow::Paste => "Then run: let auth = login.complete(\"<the address or code>\")?;",
    };
    format!("{}{next}", instructions_text(login))
}

/// What the status card shows of a session; never the token itself.
pub(crate) struct SessionView {
    pub(crate) mode: Mode,
    pub(crate) api_base_url: Option<String>,
    pub(crate) org: Option<String>,
    pub(crate) expiration: i64,
    pub(crate) now: i64,
    pub(crate) cache_file: Option<String>,
    pub(crate) masked_token: String,
    /// Where the token came from, in words.
    pub(crate) source: String,
}

/// The status card of a session.
pub(crate) fn status_card(view: &SessionView) -> String {
    let expired = is_expired_at(view.expiration, view.now);
    let (mode, renewal) = match view.mode {
        Mode::OAuth => (
            "OAuth (browser sign-in)",
            "the next request for the token signs in again",
        ),
        Mode::M2m => (
            "M2M (credentials file)",
            "the next request for the token gets a new one",
        ),
        Mode::Token => (
            "access token (given as is)",
            "it cannot be renewed here: set a new one",
        ),
    };
    let status = if expired {
        format!(
            "<span style=\"color:var(--jp-warn-color0,#e65100);font-weight:600\">expired</span>: {renewal}"
        )
    } else {
        escape(&describe_expiry(view.expiration, view.now))
    };
    let mut rows = vec![
        ("Mode", escape(mode)),
        (
            "API base URL",
            view.api_base_url
                .as_deref()
                .map_or_else(|| "unknown".to_string(), code),
        ),
    ];
    if view.mode == Mode::OAuth {
        rows.push((
            "Organization",
            view.org
                .as_deref()
                .map_or_else(|| "none".to_string(), escape),
        ));
    }
    rows.push(("Token", format!("{}, {status}", code(&view.masked_token))));
    rows.push(("Token from", escape(&view.source)));
    rows.push((
        "Cache file",
        view.cache_file
            .as_deref()
            .map_or_else(|| "none (caching is off)".to_string(), code),
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

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.carto.com/authorize?client_id=abc&response_type=code&scope=None\
        &audience=carto-cloud-native-api&redirect_uri=https%3A%2F%2Fapp.carto.com%2Fauth%2Ftoken\
        &code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const NOW: i64 = 1_768_478_400; // 2026-01-15 12:00 UTC

    fn instructions(flow: Flow, org: Option<&str>) -> LoginInstructions {
        LoginInstructions {
            authorize_url: URL.into(),
            flow,
            browser_opened: flow == Flow::LocalCallback,
            org: org.map(str::to_string),
            why_paste: (flow == Flow::Paste).then(|| "JupyterHub".to_string()),
            user_code: None,
            verification_uri: None,
            expires_at: None,
        }
    }

    fn device() -> LoginInstructions {
        LoginInstructions {
            authorize_url: "https://auth.carto.com/activate?user_code=QTZL-MCBW".into(),
            user_code: Some("QTZL-MCBW".into()),
            verification_uri: Some("https://auth.carto.com/activate".into()),
            expires_at: Some(NOW + 900),
            ..instructions(Flow::DeviceCode, None)
        }
    }

    fn view(api: Option<&str>, expiration: i64) -> SessionView {
        SessionView {
            mode: Mode::OAuth,
            api_base_url: api.map(str::to_string),
            org: Some("acme".into()),
            expiration,
            now: 1_000,
            cache_file: Some("/home/ana/.carto-auth/token_oauth.json".into()),
            masked_token: "…Xk2q9Z".into(),
            source: "a sign-in by this session".into(),
        }
    }

    /// What must never be in a card: anything fetched or run.
    pub(crate) fn assert_self_contained(html: &str) {
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
    fn the_paste_card_links_to_the_authorize_url_and_has_a_qr_code() {
        let html = login_card(&instructions(Flow::Paste, None), NOW);
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
        let html = login_card(&instructions(Flow::LocalCallback, Some("acme")), NOW);
        assert!(html.contains("let auth = login.wait()?;"), "{html}");
        assert!(!html.contains("login.complete"));
        assert!(
            !html.contains("<svg"),
            "a phone cannot reach the local callback"
        );
        assert!(html.contains("Organization: <strong>acme</strong>"));
        assert_eq!(html.matches("<li ").count(), 3, "{html}");
        assert_self_contained(&html);
    }

    #[test]
    fn the_device_card_shows_the_code_large_a_button_a_qr_code_and_the_time_left() {
        let html = login_card(&device(), NOW + 60);
        assert!(html.contains("aria-label=\"sign-in code\""), "{html}");
        assert!(html.contains(">QTZL-MCBW</div>"), "{html}");
        assert!(html.contains("font-size:2.5em"), "{html}");
        assert!(html.contains(">Open the sign-in page</a>"), "{html}");
        assert!(html.contains("href=\"https://auth.carto.com/activate?user_code=QTZL-MCBW\""));
        assert!(html.contains("<svg role=\"img\""), "{html}");
        assert!(
            html.contains("The code expires in 14 min (at 12:15 UTC)."),
            "{html}"
        );
        assert!(html.contains("let auth = login.wait()?;") && !html.contains("login.complete"));
        assert_self_contained(&html);
        let expired = login_card(&device(), NOW + 2000);
        assert!(expired.contains("This code has expired"), "{expired}");
    }

    #[test]
    fn interpolated_values_are_escaped() {
        let mut login = instructions(Flow::Paste, Some("<script>alert(1)</script>"));
        login.why_paste = Some("\"><script>x</script>".into());
        let html = login_card(&login, NOW);
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert_self_contained(&html);
        let mut d = device();
        d.user_code = Some("<b>x</b>".into());
        assert!(login_card(&d, NOW).contains("&lt;B&gt;X&lt;/B&gt;"));

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
        let html = login_card(&login, NOW);
        assert!(!html.contains("href="), "{html}");
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
            "…Xk2q9Z",
            "expires in 23 h 41 min",
            "/home/ana/.carto-auth/token_oauth.json",
            "Token from",
            "a sign-in by this session",
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
        v.mode = Mode::Token;
        v.source = "the CARTO_API_TOKEN environment variable".into();
        let html = status_card(&v);
        assert!(
            html.contains("cannot be renewed here") && html.contains("CARTO_API_TOKEN"),
            "{html}"
        );
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
        assert!(login_text(&device()).contains("Q T Z L - M C B W"));
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
    fn data_too_long_for_a_qr_code_gives_none_and_the_card_still_renders() {
        let long = format!("https://auth.carto.com/authorize?org={}", "x".repeat(8000));
        assert!(qr_svg(&long).is_none());
        let mut login = instructions(Flow::Paste, None);
        login.authorize_url = long;
        assert!(login_card(&login, NOW).contains("too long for a QR code"));
    }
}
