//! Telling a notebook front end that sends no input from a person who
//! pressed Enter. evcxr answers an input request with an empty line at once
//! when the front end does not allow input (`allow_stdin` off: nbclient,
//! papermill, some editors); a person can press Enter about as fast, and on
//! a loaded machine the kernel's own answer can take seconds. So one quick
//! empty answer decides nothing: only a second one in a row does, and a
//! slow empty answer is a person's "nothing pasted".

use std::io::ErrorKind;
use std::time::Duration;

/// An empty answer faster than this may be the kernel's own.
pub(crate) const INSTANT: Duration = Duration::from_secs(1);

/// What one answer to an input request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Something was typed: the paste loop judges it.
    Text,
    /// Empty, after a person's time: nothing was pasted this time.
    NothingPasted,
    /// Empty at once: the kernel's own answer or a quick Enter. Asking
    /// once more tells which.
    AskAgain,
    /// Empty at once, twice in a row: the front end sends no input.
    NoInput,
}

/// Judges an answer from its text, how long it took, and whether the
/// answer before it, to the same question, was empty at once.
pub(crate) fn judge(line: &str, took: Duration, after_instant_empty: bool) -> Heard {
    if !line.trim().is_empty() {
        Heard::Text
    } else if took >= INSTANT {
        Heard::NothingPasted
    } else if after_instant_empty {
        Heard::NoInput
    } else {
        Heard::AskAgain
    }
}

/// Asks with `request` (which sends one input request and returns the line
/// and how long it took) until an answer means something: the line (empty
/// for "nothing pasted"), or an error of kind
/// [`ErrorKind::UnexpectedEof`] when the front end sends no input.
pub(crate) fn ask_until_heard(
    mut request: impl FnMut() -> std::io::Result<(String, Duration)>,
) -> std::io::Result<String> {
    let mut after_instant_empty = false;
    loop {
        let (line, took) = request()?;
        match judge(&line, took, after_instant_empty) {
            Heard::Text | Heard::NothingPasted => return Ok(line),
            Heard::AskAgain => after_instant_empty = true,
            Heard::NoInput => return Err(ErrorKind::UnexpectedEof.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(30);
    const SLOW: Duration = Duration::from_secs(3);

    /// Runs the questions against scripted answers: the outcome (`None` for
    /// "no input") and how many input requests were sent.
    fn run(answers: &[(&str, Duration)]) -> (Option<String>, usize) {
        let mut script = answers.iter();
        let mut asked = 0;
        let got = ask_until_heard(|| {
            asked += 1;
            let (line, took) = script.next().expect("asked more often than scripted");
            Ok((line.to_string(), *took))
        });
        match got {
            Ok(line) => (Some(line), asked),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
                (None, asked)
            }
        }
    }

    #[test]
    fn a_quick_enter_is_asked_again_not_fatal() {
        assert_eq!(
            run(&[("\n", QUICK), ("code\n", SLOW)]),
            (Some("code\n".into()), 2)
        );
        assert_eq!(run(&[("\n", QUICK), ("\n", SLOW)]), (Some("\n".into()), 2));
    }

    #[test]
    fn two_instant_empty_answers_in_a_row_mean_no_input() {
        assert_eq!(run(&[("", QUICK), ("", QUICK)]), (None, 2));
        assert_eq!(run(&[("  \n", Duration::ZERO), ("\n", QUICK)]), (None, 2));
    }

    #[test]
    fn a_slow_empty_answer_is_nothing_pasted() {
        // A loaded machine: the kernel's own empty answer took seconds. The
        // paste loop says "nothing was pasted" and asks again; its last
        // error then names what works without input.
        assert_eq!(run(&[("", SLOW)]), (Some(String::new()), 1));
        assert_eq!(judge("", INSTANT, true), Heard::NothingPasted);
    }

    #[test]
    fn typed_text_is_an_answer_however_fast() {
        assert_eq!(run(&[("abc", Duration::ZERO)]), (Some("abc".into()), 1));
        assert_eq!(judge("abc", QUICK, true), Heard::Text);
    }

    #[test]
    fn a_failed_read_is_passed_on() {
        let e = ask_until_heard(|| Err(ErrorKind::BrokenPipe.into())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    }
}
