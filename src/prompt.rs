//! How a login talks to the user: where instructions and warnings go, and
//! how the pasted answer is read.

use std::collections::HashSet;
use std::io::{BufRead, ErrorKind, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::environment::in_evcxr;

/// Writes and flushes, ignoring errors: `print!` and friends panic when the
/// stream is closed, and a panic inside a notebook kernel loses the user's
/// variables. A message that cannot be shown is not worth a crash.
pub(crate) fn say(mut out: impl Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

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

/// What the user needs to sign in, handed to a [`Prompt`].
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

/// How a login talks to the user (yup-oauth2 calls it a flow delegate).
///
/// The crate picks [`EvcxrPrompt`] inside an evcxr kernel and
/// [`TerminalPrompt`] elsewhere; a program with its own UI implements this
/// and passes it to [`OAuthBuilder::prompt`](crate::OAuthBuilder::prompt).
pub trait Prompt: Send + Sync {
    /// Shows how to sign in. Called before the login waits.
    fn show_login(&self, login: &LoginInstructions);

    /// Asks for the pasted address or code and returns the line as typed.
    ///
    /// An empty line means the user gave no answer this time (they are asked
    /// again). An error of kind [`ErrorKind::UnexpectedEof`] means nothing
    /// can be read here at all (stdin closed, a notebook front end that
    /// sends no input): the login then fails at once with
    /// [`no_input_hint`](Prompt::no_input_hint).
    fn ask_code(&self, question: &str) -> std::io::Result<String>;

    /// A short message: a fallback, a confirmation, one line why a paste
    /// was refused.
    fn notice(&self, message: &str);

    /// A warning about something that still works (a cache that cannot be
    /// written, say). The crate also sends it to the `log` facade.
    fn warn(&self, message: &str) {
        self.notice(&format!("carto-auth: warning: {message}"));
    }

    /// What to do when nothing can be read where this prompt runs.
    fn no_input_hint(&self) -> &'static str {
        "Run the login where it can read an answer (a terminal), pass an access token with \
         CARTO_API_TOKEN, or use an M2M credentials file"
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
        say(std::io::stderr(), &instructions_text(login));
    }

    fn ask_code(&self, question: &str) -> std::io::Result<String> {
        say(std::io::stderr(), &format!("{question}: "));
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            say(std::io::stderr(), "\n");
            return Err(ErrorKind::UnexpectedEof.into());
        }
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

    fn no_input_hint(&self) -> &'static str {
        "Standard input is closed: run `carto-auth login` in a terminal first, pass an access \
         token with CARTO_API_TOKEN, or use an M2M credentials file in automated jobs"
    }
}

/// How long the evcxr prompt lets streamed text reach the front end before
/// it asks for input.
const EVCXR_STDOUT_SETTLE: Duration = Duration::from_millis(250);
/// An empty answer faster than this is the kernel's, not a person's: evcxr
/// answers an input request with an empty string at once when the front
/// end does not allow input (`allow_stdin` off: nbclient, papermill, some
/// editors). Nobody sees an input box and presses Enter within a second.
const NO_INPUT_CHANNEL: Duration = Duration::from_secs(1);

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
        // evcxr_input's own functions print with `println!`, which panics on
        // a closed stdout; the protocol line is written here instead.
        let asked = Instant::now();
        say(
            std::io::stdout(),
            &format!("{}:{question}\n", evcxr_input::GET_CMD_PASSWORD),
        );
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line)?;
        if read == 0 || (line.trim().is_empty() && asked.elapsed() < NO_INPUT_CHANNEL) {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        Ok(line)
    }

    fn notice(&self, message: &str) {
        say(std::io::stdout(), &format!("{message}\n"));
    }

    fn no_input_hint(&self) -> &'static str {
        "This notebook front end sends no input to the kernel (allow_stdin is off). Use the \
         device flow, `CartoAuth::oauth().device_flow(true).login()?`, which needs no input, \
         or the two-step login: `let login = CartoAuth::oauth().open_browser(false).begin()?; \
         login` shows a sign-in card, then `let auth = login.complete(\"<pasted address>\")?;` \
         in the next cell"
    }
}

/// What a waiting evcxr cell streams: the instructions with the URL on a
/// line of its own (JupyterLab makes it a link), and, where the code comes
/// back by pasting or by approval on another device, a QR code of it in
/// Unicode blocks so that a phone can open it (coloured dark on light, so
/// that it scans in JupyterLab's light and dark themes). Rich output would
/// only show once the cell ends, too late.
pub(crate) fn evcxr_login_text(login: &LoginInstructions) -> String {
    let text = instructions_text(login);
    #[cfg(feature = "notebook")]
    if login.flow != Flow::LocalCallback
        && let Some(qr) = crate::qr::text(&login.authorize_url, true)
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
        if let Some(page) = &login.verification_uri {
            out.push_str(&format!("(Or open {page} and type the code.)\n"));
        }
        if let Some(at) = login.expires_at {
            let left = at.saturating_sub(crate::clock::now_unix()).max(0);
            out.push_str(&format!(
                "The code is valid for {} min; this finishes by itself once it is approved.\n",
                (left + 59) / 60
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

/// The prompt for where this code runs.
pub(crate) fn default_prompt() -> Arc<dyn Prompt> {
    if in_evcxr() {
        Arc::new(EvcxrPrompt)
    } else {
        Arc::new(TerminalPrompt)
    }
}

/// Passes a warning on to the `log` facade and the prompt. A warning with a
/// key (one that would repeat on every call, e.g. locking unsupported on
/// this file system) is said once per process.
pub(crate) fn warn(prompt: &dyn Prompt, once_key: Option<&str>, message: &str) {
    static SAID: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if let Some(key) = once_key {
        let mut said = SAID.lock().unwrap_or_else(PoisonError::into_inner);
        if !said
            .get_or_insert_with(HashSet::new)
            .insert(key.to_string())
        {
            log::debug!("{message} (said before)");
            return;
        }
    }
    log::warn!("{message}");
    prompt.warn(message);
}

type Answer = std::io::Result<String>;

/// A question whose asker went away (a cancelled `login_async`), with the
/// thread still waiting for the user's line. The next question takes it
/// over instead of leaving that thread to swallow the line.
static IN_FLIGHT: Mutex<Option<oneshot::Receiver<Answer>>> = Mutex::new(None);

/// Asks on a detached thread. Blocking on stdin must not happen on a tokio
/// thread: a blocking task keeps its runtime, and so the program, from
/// exiting when a login is cancelled (`tokio::time::timeout` around it),
/// while a detached thread ends with the process.
pub(crate) async fn ask(prompt: &Arc<dyn Prompt>, question: &'static str) -> Answer {
    let reused = IN_FLIGHT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        // A line typed while nobody asked belonged to the login that left.
        .filter(|rx| rx.is_empty() && !rx.is_terminated());
    let receiver = match reused {
        Some(rx) => rx,
        None => {
            let (tx, rx) = oneshot::channel();
            let asker = prompt.clone();
            std::thread::Builder::new()
                .name("carto-auth-ask".into())
                .spawn(move || {
                    let _ = tx.send(asker.ask_code(question));
                })
                .map_err(|e| std::io::Error::other(format!("no thread to ask from: {e}")))?;
            rx
        }
    };
    let mut pending = KeepIfAbandoned(Some(receiver));
    let answer = match pending.0.as_mut() {
        Some(rx) => rx.await,
        None => return Err(std::io::Error::other("no question")),
    };
    pending.0 = None;
    answer.unwrap_or_else(|_| Err(std::io::Error::other("the question was abandoned")))
}

/// Puts the receiver back in [`IN_FLIGHT`] when the asking future is
/// dropped before the answer came.
struct KeepIfAbandoned(Option<oneshot::Receiver<Answer>>);

impl Drop for KeepIfAbandoned {
    fn drop(&mut self) {
        if let Some(rx) = self.0.take() {
            *IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner) = Some(rx);
        }
    }
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
    fn the_question_has_no_colon_for_evcxr() {
        assert!(!ASK_CODE.contains(':'));
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
            let text = evcxr_login_text(&l);
            let lines: Vec<&str> = text.lines().collect();
            let url_at = lines
                .iter()
                .position(|line| *line == l.authorize_url)
                .expect("the URL on its own line");
            let has_qr = lines[url_at + 1..]
                .iter()
                .any(|line| line.contains('\u{2584}'));
            assert_eq!(has_qr, cfg!(feature = "notebook"), "{text}");
        }
        l.flow = Flow::LocalCallback;
        l.browser_opened = true;
        // A phone cannot reach this machine's callback server.
        assert!(!evcxr_login_text(&l).contains('\u{2584}'));
    }

    /// A prompt whose answer comes when the test says.
    struct Gate(Mutex<std::sync::mpsc::Receiver<String>>);

    impl Prompt for Gate {
        fn show_login(&self, _: &LoginInstructions) {}
        fn ask_code(&self, _: &str) -> std::io::Result<String> {
            Ok(self.0.lock().unwrap().recv().unwrap_or_default())
        }
        fn notice(&self, _: &str) {}
    }

    #[tokio::test]
    async fn a_cancelled_question_hands_its_pending_line_to_the_next() {
        let (tx, rx) = std::sync::mpsc::channel();
        let prompt: Arc<dyn Prompt> = Arc::new(Gate(Mutex::new(rx)));
        // Cancelled before the user answers: the thread keeps waiting.
        let cancelled =
            tokio::time::timeout(Duration::from_millis(50), ask(&prompt, ASK_CODE)).await;
        assert!(cancelled.is_err());
        // The next question gets the line, not the abandoned thread.
        let next = ask(&prompt, ASK_CODE);
        tx.send("the-line".into()).unwrap();
        assert_eq!(next.await.unwrap(), "the-line");
    }

    #[test]
    fn a_keyed_warning_is_said_once_per_process() {
        struct Count(Mutex<usize>);
        impl Prompt for Count {
            fn show_login(&self, _: &LoginInstructions) {}
            fn ask_code(&self, _: &str) -> std::io::Result<String> {
                Ok(String::new())
            }
            fn notice(&self, _: &str) {
                *self.0.lock().unwrap() += 1;
            }
        }
        let p = Count(Mutex::new(0));
        warn(&p, Some("test-once-key"), "locking is unsupported");
        warn(&p, Some("test-once-key"), "locking is unsupported");
        warn(&p, None, "every time");
        warn(&p, None, "every time");
        assert_eq!(*p.0.lock().unwrap(), 3);
    }
}
