//! The `_async` twins: the blocking call on a thread of its own, and a
//! future that waits for it. It needs no runtime, so it runs on any
//! executor (tokio, smol, a plain `block_on`) and never blocks the caller's
//! thread. Dropping the future cancels the work (`cancel.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::cancel::{Cancel, adopt};
use crate::error::{Error, Result};

/// What the thread and the future share.
struct Shared<T> {
    result: Option<T>,
    waker: Option<Waker>,
}

/// The future of a call running on a thread of its own. Made by [`run`].
pub(crate) struct Background<T> {
    work: Option<Box<dyn FnOnce() -> Result<T> + Send>>,
    shared: Arc<Mutex<Shared<std::thread::Result<Result<T>>>>>,
    cancel: Cancel,
}

/// Runs `work` on a new thread when first polled (futures do nothing until
/// then), and resolves to its result.
pub(crate) fn run<T, F>(work: F) -> Background<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    Background {
        work: Some(Box::new(work)),
        shared: Arc::new(Mutex::new(Shared {
            result: None,
            waker: None,
        })),
        cancel: Cancel::default(),
    }
}

impl<T: Send + 'static> Future for Background<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match shared.result.take() {
            Some(Ok(result)) => return Poll::Ready(result),
            // A panic is the caller's, as it would be in the blocking call.
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => {}
        }
        shared.waker = Some(cx.waker().clone());
        drop(shared);
        if let Some(work) = self.work.take() {
            let shared = self.shared.clone();
            let cancel = self.cancel.clone();
            let spawned = std::thread::Builder::new()
                .name("carto-auth".into())
                .spawn(move || {
                    adopt(cancel);
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    shared.result = Some(result);
                    if let Some(waker) = shared.waker.take() {
                        waker.wake();
                    }
                });
            if let Err(e) = spawned {
                return Poll::Ready(Err(Error::Setup {
                    what: "a thread for the call",
                    message: e.to_string(),
                    source: Some(Box::new(e)),
                }));
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        self.cancel.set();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::{Cancelled, pause};
    use std::time::{Duration, Instant};

    #[test]
    fn resolves_to_the_works_result_under_a_plain_block_on() {
        let got = pollster::block_on(run(|| Ok(41 + 1))).unwrap();
        assert_eq!(got, 42);
    }

    #[test]
    fn runs_inside_a_current_thread_runtime_without_blocking_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            // A task of the caller's keeps running while the work waits.
            let ticker = tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                "ticked"
            });
            let work = run(|| {
                std::thread::sleep(Duration::from_millis(100));
                Ok(7)
            });
            let (work, tick) = tokio::join!(work, ticker);
            (work.unwrap(), tick.unwrap())
        });
        assert_eq!(got, (7, "ticked"));
    }

    #[test]
    fn dropping_the_future_cancels_the_works_waits() {
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let work = run(move || {
                let started = Instant::now();
                let outcome = pause(Duration::MAX, None);
                let _ = tx.send((outcome, started.elapsed()));
                Ok(())
            });
            // The future gives up after 100 ms and is dropped.
            let _ = tokio::time::timeout(Duration::from_millis(100), work).await;
        });
        let (outcome, waited) = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(outcome, Err(Cancelled));
        assert!(waited < Duration::from_secs(1), "{waited:?}");
    }

    #[test]
    fn a_panic_in_the_work_is_the_callers_not_a_hang() {
        let got = std::panic::catch_unwind(|| {
            pollster::block_on(run::<(), _>(|| panic!("the work broke")))
        });
        let panic = got.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the work broke"));
    }
}
