//! Stopping blocking work from outside: a dropped `_async` future, or
//! [`PendingLogin::cancel`](crate::PendingLogin::cancel).
//!
//! Every wait of this crate (between device polls, for the browser, for a
//! pasted line, between BigQuery polls, for another process's cache lock)
//! goes through [`pause`] or checks [`Cancel::is_set`] on a short beat, so
//! the work behind a cancelled call ends within a fraction of a second. A
//! request in flight is not interrupted: its timeout bounds it.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a wait looks at its cancel flags.
pub(crate) const BEAT: Duration = Duration::from_millis(50);

/// A flag set once, seen by every clone.
#[derive(Clone, Default, Debug)]
pub(crate) struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

thread_local! {
    /// The flag of the `_async` call this thread works for, if any: set by
    /// `background` for the thread it starts. Blocking calls have none.
    static CURRENT: RefCell<Option<Cancel>> = const { RefCell::new(None) };
}

/// Makes `cancel` the flag of the work on this thread.
pub(crate) fn adopt(cancel: Cancel) {
    CURRENT.with(|current| *current.borrow_mut() = Some(cancel));
}

/// The flag of the call this thread works for, if any.
pub(crate) fn current() -> Option<Cancel> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Whether the call this thread works for was given up (its future dropped).
pub(crate) fn thread_cancelled() -> bool {
    CURRENT.with(|current| current.borrow().as_ref().is_some_and(Cancel::is_set))
}

/// The work was cancelled while it waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cancelled;

/// Whether `also` or this thread's call was cancelled.
pub(crate) fn cancelled(also: Option<&Cancel>) -> bool {
    also.is_some_and(Cancel::is_set) || thread_cancelled()
}

/// Sleeps `duration` (any length: `Duration::MAX` sleeps for ever), waking
/// early when `also` or this thread's call is cancelled.
pub(crate) fn pause(duration: Duration, also: Option<&Cancel>) -> Result<(), Cancelled> {
    let end = Instant::now().checked_add(duration);
    loop {
        if cancelled(also) {
            return Err(Cancelled);
        }
        let left = match end {
            Some(end) => end.saturating_duration_since(Instant::now()),
            None => BEAT,
        };
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(BEAT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_sleeps_its_time_when_nothing_cancels_it() {
        let start = Instant::now();
        assert_eq!(pause(Duration::from_millis(120), None), Ok(()));
        assert!(start.elapsed() >= Duration::from_millis(120));
    }

    #[test]
    fn a_pause_ends_within_a_beat_of_its_cancel_even_a_pause_for_ever() {
        let cancel = Cancel::default();
        let setter = cancel.clone();
        let start = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            setter.set();
        });
        assert_eq!(pause(Duration::MAX, Some(&cancel)), Err(Cancelled));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn the_threads_own_flag_cancels_its_pauses_and_no_other_threads() {
        let cancel = Cancel::default();
        cancel.set();
        let on_thread = cancel.clone();
        let got = std::thread::spawn(move || {
            adopt(on_thread);
            pause(Duration::MAX, None)
        })
        .join()
        .unwrap();
        assert_eq!(got, Err(Cancelled));
        // This thread adopted nothing.
        assert!(!thread_cancelled());
        assert_eq!(pause(Duration::from_millis(1), None), Ok(()));
    }
}
