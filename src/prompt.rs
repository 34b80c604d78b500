//! How a login talks to the user: where instructions and warnings go, and
//! how the pasted answer is read.

use std::collections::HashSet;
use std::io::{BufRead, ErrorKind, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::cancel::{Cancel, cancelled, current};
use crate::environment::in_evcxr;
use crate::evcxr_output::{streamed_text, write_drawing, write_streamed};
use crate::instructions::{LoginInstructions, LoginText, evcxr_login_text, terminal_login_text};
use crate::no_input::ask_until_heard;

/// Writes and flushes, ignoring errors: `print!` and friends panic when the
/// stream is closed, and a panic inside a notebook kernel loses the user's
/// variables. A message that cannot be shown is not worth a crash.
pub(crate) fn say(mut out: impl Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
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
    /// again; empty answers only end the login with
    /// [`no_input_hint`](Prompt::no_input_hint)). An error of kind
    /// [`ErrorKind::UnexpectedEof`] means nothing more can be read here
    /// (stdin closed, a notebook front end that sends no input): the login
    /// then fails at once, with the refusal of the last paste if there was
    /// one, else with [`no_input_hint`](Prompt::no_input_hint).
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
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        say(std::io::stderr(), &terminal_login_text(login, ansi));
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
        // A refusal quotes the server's words: shown, never obeyed.
        say(std::io::stderr(), &streamed_text(message));
    }

    fn no_input_hint(&self) -> &'static str {
        "Standard input is closed or gave no answer: run `carto-auth login` in a terminal \
         first, pass an access token with CARTO_API_TOKEN, or use an M2M credentials file in \
         automated jobs"
    }
}

/// How long the evcxr prompt lets streamed text reach the front end before
/// it asks for input.
const EVCXR_STDOUT_SETTLE: Duration = Duration::from_millis(250);

/// An evcxr Jupyter kernel: instructions on streamed stdout (shown while the
/// cell runs; rich output would only show once it ends), the answer through
/// evcxr's input request, without echo so the notebook does not save it.
#[derive(Debug, Default, Clone, Copy)]
pub struct EvcxrPrompt;

impl Prompt for EvcxrPrompt {
    // Streamed text goes through `evcxr_output`: an organization or a
    // server's message must not form a line of evcxr's protocol.
    fn show_login(&self, login: &LoginInstructions) {
        let LoginText { text, qr } = evcxr_login_text(login);
        write_streamed(std::io::stdout(), &text);
        if let Some(qr) = qr {
            write_drawing(std::io::stdout(), &qr);
        }
    }

    fn ask_code(&self, question: &str) -> std::io::Result<String> {
        // evcxr forwards a cell's stdout from a thread of its own but sends
        // the input request at once, on another channel: without a pause the
        // input box can reach the front end before the sign-in address above
        // it. A quarter of a second is far more than forwarding takes.
        std::thread::sleep(EVCXR_STDOUT_SETTLE);
        // An empty answer may be the kernel's own (no input from this front
        // end) or a person's: `no_input.rs` tells which.
        ask_until_heard(|| {
            // evcxr_input's own functions print with `println!`, which
            // panics on a closed stdout; the protocol line is written here.
            let asked = Instant::now();
            say(
                std::io::stdout(),
                &format!("{}:{question}\n", evcxr_input::GET_CMD_PASSWORD),
            );
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            Ok((line, asked.elapsed()))
        })
    }

    fn notice(&self, message: &str) {
        write_streamed(std::io::stdout(), message);
    }

    fn no_input_hint(&self) -> &'static str {
        "This notebook front end sends no input to the kernel (allow_stdin is off). Use the \
         device flow, `CartoAuth::oauth().device_flow(true).login()?`, which needs no input, \
         or the two-step login: `let login = CartoAuth::oauth().open_browser(false).begin()?; \
         login` shows a sign-in card, then `let auth = login.complete(\"<pasted address>\")?;` \
         in the next cell"
    }
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

/// The questions waiting for the user's line, and whose they are. Reading
/// stdin cannot be interrupted, so a login that goes away (cancelled, or
/// its future dropped) leaves its reading thread behind; the next login
/// takes that question over instead of leaving the thread to swallow the
/// line. Kept here, not by the asker, so that the hand-over needs nothing
/// from the asker's thread: it is decided the moment its cancel flag is
/// set. Several logins of one process may ask at once (threads, tests).
static WAITING: Mutex<Vec<Waiting>> = Mutex::new(Vec::new());

struct Waiting {
    id: u64,
    answer: Receiver<Answer>,
    /// The flags of the login asking: once one is set, the question is
    /// abandoned and the next login may take it.
    owner: Vec<Cancel>,
}

fn waiting() -> std::sync::MutexGuard<'static, Vec<Waiting>> {
    WAITING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The flags of the login on this thread: `also`, and the dropped-future
/// flag of the call this thread works for.
fn owner(also: Option<&Cancel>) -> Vec<Cancel> {
    also.cloned().into_iter().chain(current()).collect()
}

/// The question a cancelled login left waiting for the user's line, taken
/// over by a login before it shows its sign-in address: a line typed from
/// then on answers this login, even one typed before it asks (a program
/// that pastes as soon as the address appears); one typed earlier belonged
/// to the login that left.
pub(crate) struct Claimed(Option<u64>);

impl Claimed {
    /// Takes over the waiting question for the login whose flag is `also`,
    /// if one is left abandoned and got no line yet.
    pub(crate) fn now(also: Option<&Cancel>) -> Claimed {
        let mut all = waiting();
        // Abandoned questions that got a line nobody asked for, or whose
        // reader is gone, are dropped; the first left unanswered is taken.
        let mut taken = None;
        all.retain_mut(|asked| {
            if taken.is_some() || !asked.owner.iter().any(Cancel::is_set) {
                return true;
            }
            match asked.answer.try_recv() {
                Err(TryRecvError::Empty) => {
                    // A new id: the login that left must not take the line
                    // should its thread look once more.
                    asked.id = next_id();
                    asked.owner = owner(also);
                    taken = Some(asked.id);
                    true
                }
                Ok(_) | Err(TryRecvError::Disconnected) => false,
            }
        });
        Claimed(taken)
    }
}

/// Asks on a detached thread, which ends with the process, and waits for
/// the line; a login cancelled meanwhile (`also`, or the dropped future
/// this thread works for) returns within a beat with
/// [`ErrorKind::Interrupted`] and leaves its question to the next login.
/// `claimed` is the waiting question this login took over when it showed
/// its address, if any.
pub(crate) fn ask(
    prompt: &Arc<dyn Prompt>,
    question: &'static str,
    claimed: Claimed,
    also: Option<&Cancel>,
) -> Answer {
    let id = match claimed.0 {
        Some(id) => id,
        None => {
            let (tx, rx) = std::sync::mpsc::channel();
            let asker = prompt.clone();
            std::thread::Builder::new()
                .name("carto-auth-ask".into())
                .spawn(move || {
                    let _ = tx.send(asker.ask_code(question));
                })
                .map_err(|e| std::io::Error::other(format!("no thread to ask from: {e}")))?;
            let id = next_id();
            waiting().push(Waiting {
                id,
                answer: rx,
                owner: owner(also),
            });
            id
        }
    };
    let interrupted = || std::io::Error::new(ErrorKind::Interrupted, "the login was cancelled");
    loop {
        {
            let mut all = waiting();
            let Some(at) = all.iter().position(|a| a.id == id) else {
                // Taken over by the next login.
                return Err(interrupted());
            };
            match all[at].answer.try_recv() {
                Ok(answer) => {
                    all.remove(at);
                    return answer;
                }
                Err(TryRecvError::Disconnected) => {
                    all.remove(at);
                    return Err(std::io::Error::other("the question was abandoned"));
                }
                Err(TryRecvError::Empty) if cancelled(also) => return Err(interrupted()),
                Err(TryRecvError::Empty) => {}
            }
        }
        std::thread::sleep(ANSWER_BEAT);
    }
}

fn next_id() -> u64 {
    static IDS: AtomicU64 = AtomicU64::new(1);
    IDS.fetch_add(1, Ordering::Relaxed)
}

/// How often a waiting question looks for its line.
const ANSWER_BEAT: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_has_no_colon_for_evcxr() {
        assert!(!ASK_CODE.contains(':'));
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

    /// The tests that leave a question in flight, one at a time: there is
    /// one such question per process.
    static IN_FLIGHT_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn a_cancelled_question_ends_at_once_and_hands_its_pending_line_to_the_next() {
        let _one = IN_FLIGHT_TESTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (tx, rx) = std::sync::mpsc::channel();
        let prompt: Arc<dyn Prompt> = Arc::new(Gate(Mutex::new(rx)));
        // Cancelled before the user answers: the asking thread keeps waiting.
        let cancel = Cancel::default();
        let setter = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            setter.set();
        });
        let start = Instant::now();
        let cancelled = ask(&prompt, ASK_CODE, Claimed::now(None), Some(&cancel));
        assert_eq!(cancelled.unwrap_err().kind(), ErrorKind::Interrupted);
        assert!(start.elapsed() < Duration::from_secs(1));
        // The next question gets the line, not the abandoned thread. It
        // takes the question over when the login claims it, which must come
        // before the line: a line that came while nobody asked is dropped.
        let claimed = Claimed::now(None);
        assert!(claimed.0.is_some(), "the abandoned question is taken over");
        tx.send("the-line".into()).unwrap();
        assert_eq!(ask(&prompt, ASK_CODE, claimed, None).unwrap(), "the-line");
    }

    /// A line typed once the next login has shown its address (claimed
    /// the waiting question) answers it, even before it asks; a line typed
    /// before that belonged to the login that left.
    #[test]
    fn a_line_typed_after_the_next_address_is_shown_answers_that_login() {
        let _one = IN_FLIGHT_TESTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A fresh question would get this: the waiting one was not used.
        let (fresh, rx) = std::sync::mpsc::channel();
        let prompt: Arc<dyn Prompt> = Arc::new(Gate(Mutex::new(rx)));
        fresh.send("asked-afresh".into()).unwrap();
        fresh.send("asked-afresh".into()).unwrap();

        // The cancelled login's question, still waiting for the user.
        let gone = Cancel::default();
        gone.set();
        let left_behind = |answer| {
            waiting().push(Waiting {
                id: 0,
                answer,
                owner: vec![gone.clone()],
            });
        };
        let (user, answer) = std::sync::mpsc::channel();
        left_behind(answer);
        let claimed = Claimed::now(None); // the next login shows its address
        user.send(Ok("typed-after-the-address".into())).unwrap();
        let answer = ask(&prompt, ASK_CODE, claimed, None);
        assert_eq!(answer.unwrap(), "typed-after-the-address");

        let (user, answer) = std::sync::mpsc::channel();
        left_behind(answer);
        user.send(Ok("typed-before-the-address".into())).unwrap();
        let answer = ask(&prompt, ASK_CODE, Claimed::now(None), None);
        assert_eq!(answer.unwrap(), "asked-afresh");

        // A question whose login is still there is not taken.
        let (_user, answer) = std::sync::mpsc::channel();
        waiting().push(Waiting {
            id: 0,
            answer,
            owner: vec![Cancel::default()],
        });
        assert!(Claimed::now(None).0.is_none());
        waiting().clear();
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
