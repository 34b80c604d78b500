//! The bridge from the blocking API to the async implementation.

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::{Error, Result};

/// A blocking method and its async twin, for the error that names both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) name: &'static str,
    pub(crate) twin: &'static str,
}

/// Runs a future to completion from blocking code.
///
/// - Outside any runtime: on a fresh current-thread runtime, cheap next to
///   the network round trip it waits for.
/// - Inside a multi-thread runtime (an evcxr async cell, `#[tokio::main]`):
///   on a helper thread with a runtime of its own, while this worker hands
///   its other tasks to the rest of the pool (`block_in_place`), so a task
///   of the caller's that holds a lock we wait for can still finish.
/// - Inside a current-thread runtime: an error at once. Its only thread
///   would block, and any task of the caller's holding a lock this call
///   needs (a renewal in progress, the cache lock) could never run again:
///   a deadlock. The error names the `_async` twin.
pub(crate) fn block_on<F>(call: Call, future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let run = move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(future))
            .map_err(|e| Error::Setup {
                what: "an async runtime",
                message: e.to_string(),
                source: Some(Box::new(e)),
            })
    };
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => run(),
        Ok(RuntimeFlavor::CurrentThread) => Err(Error::BlockingInAsync {
            call: call.name,
            twin: call.twin,
        }),
        Ok(_) => tokio::task::block_in_place(|| {
            std::thread::scope(|scope| match scope.spawn(run).join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Call = Call {
        name: "CartoAuth::get_access_token",
        twin: "get_access_token_async",
    };

    #[test]
    fn runs_outside_a_runtime() {
        assert_eq!(block_on(CALL, async { 41 + 1 }).unwrap(), 42);
    }

    #[test]
    fn fails_at_once_inside_a_current_thread_runtime_naming_the_twin() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(async { block_on(CALL, async { "inner" }) })
            .unwrap_err()
            .to_string();
        assert!(err.contains("get_access_token_async(..).await"), "{err}");
    }

    #[test]
    fn runs_inside_a_multi_thread_runtime_while_a_task_holds_a_lock() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let lock = std::sync::Arc::new(tokio::sync::Mutex::new(0));
            let held = lock.clone().lock_owned().await;
            // The holder is a task of this runtime: it can only release the
            // lock if the blocking call below lets it run.
            let release = tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                drop(held);
            });
            let value = tokio::task::spawn(async move {
                block_on(CALL, async move { *lock.lock().await + 7 }).unwrap()
            })
            .await
            .unwrap();
            release.await.unwrap();
            value
        });
        assert_eq!(got, 7);
    }
}
