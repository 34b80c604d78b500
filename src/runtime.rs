//! The bridge from the blocking API to the async implementation.

use std::future::Future;

use crate::error::{Error, Result};

/// Runs a future to completion from blocking code.
///
/// Inside a tokio runtime (an evcxr async cell, `#[tokio::main]`), starting
/// another runtime on the same thread panics, so the future then runs on a
/// scoped helper thread with a runtime of its own. A fresh current-thread
/// runtime per call is cheap next to the network round trip it waits for.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output>
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
            })
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| match scope.spawn(run).join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    } else {
        run()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_outside_a_runtime() {
        assert_eq!(block_on(async { 41 + 1 }).unwrap(), 42);
    }

    #[test]
    fn runs_inside_a_current_thread_runtime_without_panicking() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async { block_on(async { "inner" }).unwrap() });
        assert_eq!(got, "inner");
    }
}
