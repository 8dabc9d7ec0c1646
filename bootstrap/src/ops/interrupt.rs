//! Asking a run to stop: the first Ctrl-C or SIGTERM asks the runner to start nothing new and to
//! let the steps in flight finish within a grace period; the command layer decides what a second
//! signal does (abort at once). The runner only ever sees this handle, so ops stay free of signals.

use std::time::Duration;

use tokio::sync::watch;

/// The runner's side: whether a stop was asked, and a future that resolves when it is.
#[derive(Clone)]
pub struct Stop {
    rx: watch::Receiver<Option<String>>,
    /// How long steps already running may go on after a stop was asked.
    pub grace: Duration,
}

/// The asker's side (the command layer's signal handler, or a test).
pub struct StopHandle {
    tx: watch::Sender<Option<String>>,
}

pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

pub fn channel(grace: Duration) -> (StopHandle, Stop) {
    let (tx, rx) = watch::channel(None);
    (StopHandle { tx }, Stop { rx, grace })
}

impl StopHandle {
    /// Asks the run to stop; `why` names the signal for the report.
    pub fn stop(&self, why: &str) {
        self.tx.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(why.to_string());
                true
            } else {
                false
            }
        });
    }
}

impl Stop {
    /// A stop that is never asked (library callers, tests).
    pub fn never() -> Stop {
        let (tx, rx) = watch::channel(None);
        // Keep the sender alive for the life of the program: `requested` stays false.
        std::mem::forget(tx);
        Stop { rx, grace: DEFAULT_GRACE }
    }

    /// Why a stop was asked, if it was.
    pub fn requested(&self) -> Option<String> {
        self.rx.borrow().clone()
    }

    /// Resolves once a stop is asked (never, if it never is).
    pub async fn asked(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves `grace` after a stop is asked: when running steps are given up.
    pub async fn grace_over(&self) {
        self.asked().await;
        tokio::time::sleep(self.grace).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stop_is_seen_at_once_and_the_grace_period_after_it() {
        let (handle, stop) = channel(Duration::from_secs(30));
        assert!(stop.requested().is_none());
        let waiting = tokio::spawn({
            let stop = stop.clone();
            async move {
                stop.grace_over().await;
                tokio::time::Instant::now()
            }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        let asked_at = tokio::time::Instant::now();
        handle.stop("SIGINT");
        handle.stop("SIGTERM");
        assert_eq!(stop.requested().as_deref(), Some("SIGINT"), "the first reason is kept");
        let over_at = waiting.await.unwrap();
        assert_eq!(over_at - asked_at, Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn never_is_never() {
        let stop = Stop::never();
        assert!(tokio::time::timeout(Duration::from_secs(3600), stop.asked()).await.is_err());
    }
}
