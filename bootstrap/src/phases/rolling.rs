//! Rolling restarts: a phase compares on all its hosts at once, and a host that must restart a
//! service the cluster depends on (etcd, an API server, a load balancer, keepalived) waits for
//! its turn, restarts, waits until it is healthy again, and only then lets the next host go. A
//! host whose service does not come back ends the roll: the hosts after it are not restarted and
//! say why, so one bad setting never takes down more than one master.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Cluster, Node, StepError};

/// The gate of one roll (one per phase): who failed, if anyone did.
pub type Gate = Arc<Mutex<Option<String>>>;

/// One host's turn in a roll: held from before the restart until the health check passed.
pub struct Turn {
    guard: OwnedMutexGuard<Option<String>>,
    host: String,
    started: std::time::SystemTime,
    clock: Instant,
}

impl Cluster {
    /// Waits for `node`'s turn in the roll `roll` (a phase name). Refused when a host before it in
    /// the same roll failed its health check.
    pub async fn rolling_turn(&self, roll: &'static str, node: &Node) -> Result<Turn, StepError> {
        let gate = self.shared.lock().await.rolling.entry(roll).or_default().clone();
        let guard = gate.lock_owned().await;
        if let Some(failed) = guard.as_ref() {
            return Err(StepError::new(format!(
                "{}: not restarted: the rolling change stopped at {failed}; fix it and run apply again",
                node.name()
            )));
        }
        Ok(Turn { guard, host: node.name().to_string(), started: std::time::SystemTime::now(), clock: Instant::now() })
    }
}

impl Turn {
    /// Ends the turn with the outcome of the restart and health check. A success returns the
    /// change summary `what`, with when the turn was held (controller's clock, UTC), so that a
    /// report shows the restarts one after another.
    pub fn finish(mut self, what: &str, outcome: Result<(), StepError>) -> Result<super::Change, StepError> {
        match outcome {
            Ok(()) => Ok(super::Change::new(format!(
                "{what}, one at a time ({}-{} UTC, healthy after {:.1} s)",
                clock(self.started),
                clock(std::time::SystemTime::now()),
                self.clock.elapsed().as_secs_f64()
            ))),
            Err(e) => {
                *self.guard = Some(self.host.clone());
                Err(e)
            }
        }
    }
}

/// `HH:MM:SS.mmm` of a time (UTC).
fn clock(t: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!("{:02}:{:02}:{:02}.{:03}", t.hour(), t.minute(), t.second(), t.millisecond())
}

/// Runs `check` on `node` every `every` until it succeeds or `within` has passed; the error
/// says what was waited for and what the check said last.
pub async fn wait_until(
    node: &Node,
    what: &str,
    within: Duration,
    every: Duration,
    check: &str,
) -> Result<(), StepError> {
    let deadline = Instant::now() + within;
    loop {
        let out = node.session.exec_privileged(check, None).await?;
        if out.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let last = super::node::tail(&format!("{}\n{}", out.stdout_text(), out.stderr_text()), 2);
            return Err(StepError::new(format!("{}: {what} not within {} s ({last})", node.name(), within.as_secs())));
        }
        tokio::time::sleep(every).await;
    }
}
