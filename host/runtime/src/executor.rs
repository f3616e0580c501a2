//! Where plugin calls run: each call is a future driven on the calling thread, with a
//! timer thread of the runtime's own, so that a call's wall-clock limit can end it
//! wherever it is (in wasm, or awaiting a host call such as a clock wait).

use std::future::Future;
use std::time::Duration;

/// A call that did not finish within its limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Elapsed;

/// One per [`Runtime`](crate::Runtime): a tokio runtime whose one worker only drives
/// timers; the calling thread polls the call itself.
pub(crate) struct Executor {
    tokio: Option<tokio::runtime::Runtime>,
}

impl Executor {
    pub(crate) fn new() -> std::io::Result<Self> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("patron-plugin-timers")
            .enable_time()
            .build()?;
        // A timer that is later than the timer thread's next wake-up is registered
        // without waking that thread; a periodic tick keeps a wake-up near, so a
        // call's limit (usually longer) costs no thread switch.
        tokio.spawn(async {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
            }
        });
        Ok(Self { tokio: Some(tokio) })
    }

    /// Run `call` on this thread until it finishes or `limit` passes (then it is
    /// dropped where it stood). Must not be called from inside an async task: host
    /// code calls plugins on blocking threads.
    pub(crate) fn run<F: Future>(&self, limit: Duration, call: F) -> Result<F::Output, Elapsed> {
        let Some(tokio) = &self.tokio else { return Err(Elapsed) };
        tokio.block_on(async { tokio::time::timeout(limit, call).await.map_err(|_| Elapsed) })
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // The last plugin may be dropped inside an async context, where an ordinary
        // runtime drop (which waits for its threads) would panic.
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_past_its_limit_is_cut_short() {
        let executor = Executor::new().expect("executor");
        let started = std::time::Instant::now();
        let out =
            executor.run(Duration::from_millis(50), async { tokio::time::sleep(Duration::from_secs(3600)).await });
        assert!(out.is_err());
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(executor.run(Duration::from_secs(1), async { 7 }).ok(), Some(7));
    }
}
