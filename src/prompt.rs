//! How a login talks to the user: where instructions go, how the pasted
//! answer is read, and whether a local browser can be used at all.

use std::io::{BufRead, Write};

/// Writes and flushes, ignoring errors: `print!` and friends panic when the
/// stream is closed, and a panic inside a notebook kernel loses the user's
/// variables. A message that cannot be shown is not worth a crash.
fn say(mut out: impl Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Which way the authorization code comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flow {
    /// A browser on this machine is redirected to a loopback server.
    LocalCallback,
    /// The user copies the code (or the whole address) shown by CARTO.
    Paste,
}

/// What the user needs to sign in, handed to a [`Prompt`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginInstructions {
    /// The URL to open. It holds the PKCE challenge, never a secret.
    pub authorize_url: String,
    /// How the code will come back.
    pub flow: Flow,
    /// Whether a browser was opened on this machine.
    pub browser_opened: bool,
    /// The SSO organization, if any.
    pub org: Option<String>,
    /// Why no local browser is used, when it is not (e.g. "JupyterHub").
    pub why_paste: Option<String>,
}

/// How a login talks to the user (yup-oauth2 calls it a flow delegate).
///
/// The crate picks [`EvcxrPrompt`] inside an evcxr kernel and
/// [`TerminalPrompt`] elsewhere; a program with its own UI implements this
/// and passes it to [`OAuthBuilder::prompt`](crate::OAuthBuilder::prompt).
pub trait Prompt: Send + Sync {
    /// Shows how to sign in. Called before the login waits.
    fn show_login(&self, login: &LoginInstructions);

    /// Asks for the pasted address or code and returns the line as typed.
    /// An empty line means "no answer".
    fn ask_code(&self, question: &str) -> std::io::Result<String>;

    /// A short message: a fallback, a warning, a confirmation.
    fn notice(&self, message: &str);

    /// What to tell the user when [`ask_code`](Prompt::ask_code) got nothing.
    fn no_answer_hint(&self) -> &'static str {
        "Type or paste the address CARTO showed after you signed in, or run the login \
         where it can read your answer (a terminal)"
    }
}

/// The question asked for the paste flow. No colon: evcxr keeps a prompt
/// only up to its first colon.
pub(crate) const ASK_CODE: &str =
    "Paste the address of the page CARTO showed after you signed in (or the code on it)";

/// A terminal: instructions on stderr (stdout stays clean for a program's
/// own output, such as `carto-auth token`), the answer from stdin.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn show_login(&self, login: &LoginInstructions) {
        say(
            std::io::stderr(),
            &format!("{}\n", instructions_text(login)),
        );
    }

    fn ask_code(&self, question: &str) -> std::io::Result<String> {
        say(std::io::stderr(), &format!("{question}: "));
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        // A terminal echoes the user's Enter; piped input does not, and the
        // next message would land on the question's line.
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            say(std::io::stderr(), "\n");
        }
        Ok(line)
    }

    fn notice(&self, message: &str) {
        say(std::io::stderr(), &format!("{message}\n"));
    }
}

/// How long the evcxr prompt lets streamed text reach the front end before
/// it asks for input.
const EVCXR_STDOUT_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// An evcxr Jupyter kernel: instructions on streamed stdout (shown while the
/// cell runs; rich output would only show once it ends), the answer through
/// evcxr's input request, without echo so the notebook does not save it.
#[derive(Debug, Default, Clone, Copy)]
pub struct EvcxrPrompt;

impl Prompt for EvcxrPrompt {
    fn show_login(&self, login: &LoginInstructions) {
        say(std::io::stdout(), &evcxr_login_text(login));
    }

    fn ask_code(&self, question: &str) -> std::io::Result<String> {
        // evcxr forwards a cell's stdout from a thread of its own but sends
        // the input request at once, on another channel: without a pause the
        // input box can reach the front end before the sign-in address above
        // it. A quarter of a second is far more than forwarding takes.
        std::thread::sleep(EVCXR_STDOUT_SETTLE);
        Ok(evcxr_input::get_password(question))
    }

    fn notice(&self, message: &str) {
        say(std::io::stdout(), &format!("{message}\n"));
    }

    fn no_answer_hint(&self) -> &'static str {
        "This notebook front end sends no input to the kernel (allow_stdin is off). Use the \
         two-step login instead: `let login = CartoAuth::oauth().open_browser(false).begin()?; \
         login` shows a sign-in card, then `let auth = login.complete(\"<pasted address>\")?;` \
         in the next cell"
    }
}

/// What a waiting evcxr cell streams: the instructions with the URL on a
/// line of its own (JupyterLab makes it a link), and, in the paste flow, a QR
/// code of it in Unicode blocks so that a phone can open it. Rich output
/// would only show once the cell ends, too late.
fn evcxr_login_text(login: &LoginInstructions) -> String {
    let text = instructions_text(login);
    #[cfg(feature = "notebook")]
    if login.flow == Flow::Paste
        && let Some(qr) = crate::display::qr_text(&login.authorize_url)
    {
        return format!("{text}Or scan this QR code with a phone:\n{qr}\n");
    }
    text
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
    }
    out.push_str(&login.authorize_url);
    out.push('\n');
    out
}

/// Whether an evcxr kernel runs this code.
pub(crate) fn in_evcxr() -> bool {
    std::env::var_os("EVCXR_IS_RUNTIME").is_some()
}

/// The prompt for where this code runs.
pub(crate) fn default_prompt() -> std::sync::Arc<dyn Prompt> {
    if in_evcxr() {
        std::sync::Arc::new(EvcxrPrompt)
    } else {
        std::sync::Arc::new(TerminalPrompt)
    }
}

/// Why a browser on this machine cannot take part in the login, if it
/// cannot: the Python package's Colab and Databricks cases, plus remote
/// kernels and sessions where a local browser could never reach the
/// callback. `CARTO_AUTH_OPEN_BROWSER=0|1` overrides the guess either way.
pub(crate) fn no_local_browser(
    var: impl Fn(&str) -> Option<String>,
    is_linux: bool,
) -> Option<String> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    match var("CARTO_AUTH_OPEN_BROWSER")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("0" | "false" | "no" | "off") => return Some("CARTO_AUTH_OPEN_BROWSER=0".into()),
        Some("1" | "true" | "yes" | "on") => return None,
        _ => {}
    }
    let reason = if set("COLAB_RELEASE_TAG") || set("COLAB_GPU") {
        "Google Colab"
    } else if set("DATABRICKS_RUNTIME_VERSION") {
        "Databricks"
    } else if set("JUPYTERHUB_API_URL") || set("JUPYTERHUB_USER") {
        "JupyterHub"
    } else if set("BINDER_SERVICE_HOST") {
        "Binder"
    } else if set("SSH_CONNECTION") {
        "SSH session"
    } else if is_linux && !set("DISPLAY") && !set("WAYLAND_DISPLAY") && !set("BROWSER") {
        "no display"
    } else {
        return None;
    };
    Some(reason.into())
}

/// A warning the user should see once: on stderr (streamed by evcxr too)
/// and to the `log` facade for programs that collect logs.
pub(crate) fn warn(message: &str) {
    log::warn!("{message}");
    say(
        std::io::stderr(),
        &format!("carto-auth: warning: {message}\n"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn remote_environments_have_no_local_browser() {
        let display = ("DISPLAY", ":0");
        assert_eq!(no_local_browser(env(&[display]), true), None);
        assert_eq!(no_local_browser(env(&[]), false), None);
        for (var, reason) in [
            ("COLAB_RELEASE_TAG", "Google Colab"),
            ("DATABRICKS_RUNTIME_VERSION", "Databricks"),
            ("JUPYTERHUB_API_URL", "JupyterHub"),
            ("JUPYTERHUB_USER", "JupyterHub"),
            ("BINDER_SERVICE_HOST", "Binder"),
            ("SSH_CONNECTION", "SSH session"),
        ] {
            assert_eq!(
                no_local_browser(env(&[display, (var, "x")]), true).as_deref(),
                Some(reason),
                "{var}"
            );
        }
        assert_eq!(
            no_local_browser(env(&[]), true).as_deref(),
            Some("no display")
        );
        assert_eq!(
            no_local_browser(env(&[("WAYLAND_DISPLAY", "w")]), true),
            None
        );
        assert_eq!(no_local_browser(env(&[("BROWSER", "firefox")]), true), None);
    }

    #[test]
    fn the_override_wins_either_way() {
        let on = ("CARTO_AUTH_OPEN_BROWSER", "1");
        let off = ("CARTO_AUTH_OPEN_BROWSER", "0");
        assert_eq!(
            no_local_browser(env(&[on, ("SSH_CONNECTION", "x")]), true),
            None
        );
        assert!(no_local_browser(env(&[off, ("DISPLAY", ":0")]), true).is_some());
    }

    #[test]
    fn the_question_has_no_colon_for_evcxr() {
        assert!(!ASK_CODE.contains(':'));
    }

    #[test]
    fn instructions_put_the_url_on_a_line_of_its_own() {
        let text = instructions_text(&LoginInstructions {
            authorize_url: "https://auth.example/authorize?x=1".into(),
            flow: Flow::Paste,
            browser_opened: false,
            org: Some("acme".into()),
            why_paste: Some("JupyterHub".into()),
        });
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
    fn evcxr_streams_a_text_qr_code_after_the_url_in_the_paste_flow_only() {
        let mut login = LoginInstructions {
            authorize_url: "https://auth.example/authorize?x=1".into(),
            flow: Flow::Paste,
            browser_opened: false,
            org: None,
            why_paste: None,
        };
        let text = evcxr_login_text(&login);
        let lines: Vec<&str> = text.lines().collect();
        let url_at = lines
            .iter()
            .position(|l| *l == login.authorize_url)
            .expect("the URL on its own line");
        let has_qr = lines[url_at + 1..].iter().any(|l| l.contains('\u{2588}'));
        assert_eq!(has_qr, cfg!(feature = "notebook"), "{text}");
        assert!(!ASK_CODE.contains(':'));

        login.flow = Flow::LocalCallback;
        login.browser_opened = true;
        // A phone cannot reach this machine's callback server.
        assert!(!evcxr_login_text(&login).contains('\u{2588}'));
    }
}
