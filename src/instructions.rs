//! What a waiting login shows the user: the data ([`LoginInstructions`])
//! and the text the built-in prompts write from it, with the device flow's
//! code large and plain and, where a phone can finish the login, a QR code.

use crate::evcxr_output::streamed_text;

/// Which way the login completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flow {
    /// A browser on this machine is redirected to a loopback server.
    LocalCallback,
    /// The user copies the code (or the whole address) shown by CARTO.
    Paste,
    /// The user approves a short code on any device; the login polls
    /// (OAuth 2.0 device authorization grant).
    DeviceCode,
}

/// What the user needs to sign in, handed to a [`Prompt`](crate::Prompt).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginInstructions {
    /// The address to open: the authorize URL (it holds the PKCE challenge,
    /// never a secret), or in the device flow the verification page, with
    /// the code filled in when CARTO gives such an address.
    pub authorize_url: String,
    /// How the login completes.
    pub flow: Flow,
    /// Whether a browser was opened on this machine.
    pub browser_opened: bool,
    /// The SSO organization, if any.
    pub org: Option<String>,
    /// Why no local browser is used, when it is not (e.g. "JupyterHub").
    pub why_paste: Option<String>,
    /// Device flow: the code to enter on the verification page.
    pub user_code: Option<String>,
    /// Device flow: the verification page without the code in it.
    pub verification_uri: Option<String>,
    /// Device flow: when the code expires, Unix seconds.
    pub expires_at: Option<i64>,
}

/// What a waiting evcxr cell streams: the instructions with the URL on a
/// line of its own (JupyterLab makes it a link), and, where the code comes
/// back by pasting or by approval on another device, a QR code of it in
/// Unicode blocks so that a phone can open it, in palette colours that scan
/// in JupyterLab's light and dark themes. Rich output would only show once
/// the cell ends, too late.
pub(crate) fn evcxr_login_text(login: &LoginInstructions) -> LoginText {
    let text = instructions_text(login);
    if login.flow == Flow::LocalCallback {
        return LoginText { text, qr: None };
    }
    with_qr(text, &login.authorize_url, true)
}

/// What a terminal shows: the instructions and, in the device flow, a QR
/// code of the verification link, since a phone is how a headless server's
/// login is approved. The paste flow has none: its answer must come back
/// to this terminal, which a phone cannot paste into. `ansi` draws it in
/// explicit colours, for a terminal (not for a file or a pipe).
pub(crate) fn terminal_login_text(login: &LoginInstructions, ansi: bool) -> String {
    let text = instructions_text(login);
    let login_text = if login.flow == Flow::DeviceCode {
        with_qr(text, &login.authorize_url, ansi)
    } else {
        LoginText { text, qr: None }
    };
    // The data's control characters made visible, as in a notebook: an
    // organization or a server's address must not move the cursor, retitle
    // the window or recolour what follows. The QR code's colours are ours.
    LoginText {
        text: streamed_text(&login_text.text),
        qr: login_text.qr,
    }
    .joined()
}

/// The text a waiting login streams, in two parts kept apart: `text` holds
/// data (an organization, addresses from a server) and is written with its
/// control characters made visible, while `qr` is this crate's own drawing,
/// whose colour codes must reach the screen (`evcxr_output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginText {
    /// The instructions, ending with a line that introduces the QR code
    /// when there is one.
    pub(crate) text: String,
    /// The QR code, ending with a newline.
    pub(crate) qr: Option<String>,
}

impl LoginText {
    /// Both parts as one text, for a terminal.
    pub(crate) fn joined(self) -> String {
        match self.qr {
            Some(qr) => self.text + &qr,
            None => self.text,
        }
    }
}

/// `text`, then a QR code of `link` when this build draws them (features
/// `notebook` and `cli`) and the link fits in one.
fn with_qr(text: String, link: &str, ansi: bool) -> LoginText {
    #[cfg(any(feature = "notebook", feature = "cli"))]
    if let Some(qr) = crate::qr::text(link, ansi) {
        return LoginText {
            text: format!("{text}Or scan this QR code with a phone:\n"),
            qr: Some(format!("{qr}\n")),
        };
    }
    let _ = (link, ansi);
    LoginText { text, qr: None }
}

/// The text both built-in prompts show.
pub(crate) fn instructions_text(login: &LoginInstructions) -> String {
    let mut out = String::new();
    let org = login
        .org
        .as_deref()
        .map(|o| format!(" (organization {o})"))
        .unwrap_or_default();
    match (login.flow, login.browser_opened) {
        (Flow::LocalCallback, true) => {
            out.push_str(&format!(
                "Sign in to CARTO{org} in the browser window that just opened.\n\
                 If none opened, open this address:\n"
            ));
        }
        (Flow::LocalCallback, false) => {
            out.push_str(&format!(
                "Sign in to CARTO{org}: open this address in a browser on this machine:\n"
            ));
        }
        (Flow::Paste, _) => {
            if let Some(why) = &login.why_paste {
                out.push_str(&format!("No browser can be opened here ({why}).\n"));
            }
            out.push_str(&format!(
                "Sign in to CARTO{org}: open this address in any browser, sign in, then copy \
                 the address of the page you land on (or the code it shows) and paste it below.\n"
            ));
        }
        (Flow::DeviceCode, _) => {
            out.push_str(&format!(
                "Sign in to CARTO{org} on any device: open this address and approve the code \
                 shown below. Nothing needs to be typed here.\n"
            ));
        }
    }
    out.push_str(&login.authorize_url);
    out.push('\n');
    if let Some(code) = &login.user_code {
        out.push_str(&big_code(code));
        // The framed form is for reading; this one can be selected and
        // copied as it is.
        out.push_str(&format!("The code, to copy:\n{}\n", code.trim()));
        if let Some(page) = &login.verification_uri {
            out.push_str(&format!("(Or open {page} and type the code.)\n"));
        }
        if let Some(at) = login.expires_at {
            let left = at.saturating_sub(crate::clock::now_unix()).max(0);
            out.push_str(&format!(
                "The code is valid for {} min; this finishes by itself once it is approved.\n",
                left.saturating_add(59) / 60
            ));
        }
    }
    out
}

/// A device-flow code on a line of its own, large and unambiguous in a
/// monospace stream: upper case, its characters spaced, in a frame.
pub(crate) fn big_code(code: &str) -> String {
    let spaced: Vec<String> = code
        .trim()
        .to_uppercase()
        .chars()
        .map(String::from)
        .collect();
    let inner = format!("   {}   ", spaced.join(" "));
    let width = inner.chars().count();
    format!(
        "\n    \u{250f}{bar}\u{2513}\n    \u{2503}{inner}\u{2503}\n    \u{2517}{bar}\u{251b}\n\n",
        bar = "\u{2501}".repeat(width)
    )
}
#[cfg(test)]
mod tests {
    use super::*;

    fn login(flow: Flow) -> LoginInstructions {
        LoginInstructions {
            authorize_url: "https://auth.example/authorize?x=1".into(),
            flow,
            browser_opened: false,
            org: Some("acme".into()),
            why_paste: Some("JupyterHub".into()),
            user_code: None,
            verification_uri: None,
            expires_at: None,
        }
    }

    #[test]
    fn instructions_put_the_url_on_a_line_of_its_own() {
        let text = instructions_text(&login(Flow::Paste));
        assert!(
            text.lines()
                .any(|l| l == "https://auth.example/authorize?x=1"),
            "{text}"
        );
        assert!(
            text.contains("JupyterHub") && text.contains("organization acme"),
            "{text}"
        );
    }

    #[test]
    fn the_device_code_stands_on_a_line_of_its_own_spaced_out() {
        let mut l = login(Flow::DeviceCode);
        l.user_code = Some("qtzl-mcbw".into());
        l.verification_uri = Some("https://auth.example/activate".into());
        l.expires_at = Some(crate::clock::now_unix() + 900);
        let text = instructions_text(&l);
        assert!(
            text.lines()
                .any(|line| line.contains("   Q T Z L - M C B W   ")),
            "{text}"
        );
        // And plain, exactly as CARTO gave it, to select and copy.
        assert!(text.lines().any(|line| line == "qtzl-mcbw"), "{text}");
        assert!(
            text.contains("valid for 15 min") && text.contains("Nothing needs to be typed"),
            "{text}"
        );
        assert!(
            text.contains("https://auth.example/activate and type the code"),
            "{text}"
        );
        // The frame's three lines are as wide as each other.
        let framed: Vec<usize> = text
            .lines()
            .filter(|line| line.contains('\u{2503}') || line.contains('\u{2501}'))
            .map(|line| line.chars().count())
            .collect();
        assert_eq!(framed.len(), 3);
        assert!(framed.iter().all(|w| *w == framed[0]));
    }

    #[test]
    fn evcxr_streams_a_text_qr_code_where_a_phone_can_finish_the_login() {
        let mut l = login(Flow::Paste);
        for flow in [Flow::Paste, Flow::DeviceCode] {
            l.flow = flow;
            let LoginText { text, qr } = evcxr_login_text(&l);
            let lines: Vec<&str> = text.lines().collect();
            let url_at = lines
                .iter()
                .position(|line| *line == l.authorize_url)
                .expect("the URL on its own line");
            assert!(url_at > 0, "{text}");
            #[cfg(feature = "notebook")]
            {
                let drawn = crate::qr::text(&l.authorize_url, true).unwrap();
                assert_eq!(qr, Some(format!("{drawn}\n")), "{text}");
                assert!(text.ends_with("Or scan this QR code with a phone:\n"));
            }
            #[cfg(not(feature = "notebook"))]
            assert_eq!(qr, None);
        }
        l.flow = Flow::LocalCallback;
        l.browser_opened = true;
        // A phone cannot reach this machine's callback server.
        assert_eq!(
            evcxr_login_text(&l),
            LoginText {
                text: instructions_text(&l),
                qr: None
            }
        );
    }

    fn device_login() -> LoginInstructions {
        let mut l = login(Flow::DeviceCode);
        l.authorize_url = "https://auth.example/activate?user_code=QTZL-MCBW".into();
        l.user_code = Some("QTZL-MCBW".into());
        l.verification_uri = Some("https://auth.example/activate".into());
        l.expires_at = Some(crate::clock::now_unix() + 900);
        l
    }

    #[test]
    fn a_terminal_shows_the_device_link_as_a_qr_code_and_the_code_plain() {
        let l = device_login();
        let text = terminal_login_text(&l, false);
        assert!(text.lines().any(|line| line == "QTZL-MCBW"), "{text}");
        assert!(text.lines().any(|line| line == l.authorize_url), "{text}");
        #[cfg(any(feature = "notebook", feature = "cli"))]
        {
            let (_, qr) = text
                .split_once("Or scan this QR code with a phone:\n")
                .unwrap_or_else(|| panic!("no QR code: {text}"));
            assert_eq!(
                decode_blocks(qr.trim_end_matches('\n')),
                modules(&l.authorize_url),
                "{qr}"
            );
        }
        #[cfg(not(any(feature = "notebook", feature = "cli")))]
        assert_eq!(text, instructions_text(&l));
        // The paste flow's answer must come back here: no QR code for it.
        let mut paste = l.clone();
        paste.flow = Flow::Paste;
        paste.user_code = None;
        assert_eq!(
            terminal_login_text(&paste, false),
            instructions_text(&paste)
        );
    }

    #[test]
    fn a_terminal_shows_the_datas_escape_sequences_as_text_and_keeps_the_qr_codes_colours() {
        let mut l = device_login();
        l.org = Some("acme\x1b[2J\x1b]0;pwned\x07".into());
        let text = terminal_login_text(&l, true);
        assert!(
            text.contains("organization acme\u{241b}[2J\u{241b}]0;pwned\u{2407}"),
            "{text:?}"
        );
        let (before_qr, qr) = text
            .split_once("Or scan this QR code with a phone:\n")
            .unwrap_or((text.as_str(), ""));
        assert!(!before_qr.contains('\x1b'), "{before_qr:?}");
        #[cfg(any(feature = "notebook", feature = "cli"))]
        assert!(qr.starts_with("\x1b[37;47m"), "{qr:?}");
        let _ = qr;
    }

    /// The modules of `data`'s QR code, dark as `true`, row by row.
    #[cfg(any(feature = "notebook", feature = "cli"))]
    fn modules(data: &str) -> Vec<Vec<bool>> {
        use qrcode::{EcLevel, QrCode};
        let code = QrCode::with_error_correction_level(data, EcLevel::L).unwrap();
        code.to_colors()
            .chunks(code.width())
            .map(|row| row.iter().map(|c| *c == qrcode::Color::Dark).collect())
            .collect()
    }

    /// Reads a QR code drawn in Unicode half blocks back into its modules,
    /// without its quiet zone (whose colour says which is light).
    #[cfg(any(feature = "notebook", feature = "cli"))]
    fn decode_blocks(drawn: &str) -> Vec<Vec<bool>> {
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in drawn.lines() {
            let halves: Vec<(bool, bool)> = line
                .chars()
                .map(|c| match c {
                    '\u{2588}' => (true, true),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    ' ' => (false, false),
                    other => panic!("{other:?} in a QR code"),
                })
                .collect();
            rows.push(halves.iter().map(|h| h.0).collect());
            rows.push(halves.iter().map(|h| h.1).collect());
        }
        let light = rows[0][0];
        let quiet = 4;
        let side = rows[0].len() - 2 * quiet;
        rows[quiet..quiet + side]
            .iter()
            .map(|row| {
                row[quiet..quiet + side]
                    .iter()
                    .map(|m| *m != light)
                    .collect()
            })
            .collect()
    }
}
