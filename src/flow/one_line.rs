//! The one-line login's conversation: show the instructions, then wait,
//! or ask for the pasted answer up to [`PASTE_ATTEMPTS`] times.

use std::io::ErrorKind;

use crate::error::{Error, Result};
use crate::prompt::{ASK_CODE, Claimed, ask};
use crate::token::Token;

use super::{Login, Way};

/// Pastes the one-line login accepts before it gives up.
const PASTE_ATTEMPTS: usize = 3;

impl Login {
    /// The one-line login: shows the instructions, then waits for the
    /// callback or the approval, or asks for the pasted answer, up to
    /// [`PASTE_ATTEMPTS`] times, each refusal explained in one line.
    pub(crate) fn run(&self) -> Result<Token> {
        let prompt = self.config.common.prompt.clone();
        let paste = matches!(self.way, Way::Paste { .. });
        // Before the address is shown: an answer typed once it is on the
        // screen is this login's, even if it comes before the question.
        let mut claimed = paste.then(|| Claimed::now(Some(&self.cancel)));
        prompt.show_login(&self.instructions());
        if !paste {
            return self.wait();
        }
        let mut last = None;
        for attempt in 1..=PASTE_ATTEMPTS {
            let claim = claimed
                .take()
                .unwrap_or_else(|| Claimed::now(Some(&self.cancel)));
            let answer = match ask(&prompt, ASK_CODE, claim, Some(&self.cancel)) {
                Ok(answer) => answer,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    self.cancel();
                    // Input that ends after a refused paste: the refusal
                    // is what the user must fix.
                    return Err(last.unwrap_or(Error::NoInput {
                        reason: None,
                        hint: prompt.no_input_hint(),
                    }));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {
                    self.cancel();
                    return Err(Error::LoginFinished { state: "cancelled" });
                }
                Err(e) => return Err(Error::Input(e)),
            };
            let again = |why: &str| {
                if attempt < PASTE_ATTEMPTS {
                    prompt.notice(&format!(
                        "{why} Paste again (attempt {} of {PASTE_ATTEMPTS}).",
                        attempt + 1
                    ));
                }
            };
            if answer.trim().is_empty() {
                again("Nothing was pasted.");
                continue;
            }
            match self.complete(&answer) {
                Ok(token) => return Ok(token),
                Err(e) if e.can_retry_login() => {
                    again(&format!("That did not work: {e}."));
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        self.cancel();
        // Only empty answers: from a person, or from a front end that sends
        // none but too slowly to tell (a loaded kernel). The prompt's hint
        // names what works without typing.
        Err(last.unwrap_or(Error::NoAnswer {
            hint: prompt.no_input_hint(),
        }))
    }
}
