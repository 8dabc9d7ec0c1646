//! The two pieces that make a dropped connection come back: a backoff bounded by a total time
//! budget, and a slot holding one live connection that is replaced at most once per drop however
//! many users notice the drop at the same moment (single flight).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delays between attempts: doubling from `first` up to `max`, and no attempt started after
/// `budget` has passed since the first.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub budget: Duration,
}

impl Backoff {
    /// Runs `attempt` until it succeeds, fails for good (`retry` says no), or the budget is
    /// spent. Returns the last error with the number of attempts made.
    pub async fn run<T, E, F, Fut>(&self, mut attempt: F, retry: impl Fn(&E) -> bool) -> Result<T, (E, u32)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let mut delay = self.first;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if !retry(&e) => return Err((e, attempts)),
                Err(e) => {
                    let left = self.budget.saturating_sub(started.elapsed());
                    if left <= delay {
                        return Err((e, attempts));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max);
                }
            }
        }
    }
}

/// One live connection shared by many users. [`get`](Slot::get) hands out the current one while
/// it is alive; when it is not, the first caller reconnects while the others wait for its result
/// instead of each opening their own.
pub struct Slot<T> {
    current: tokio::sync::Mutex<Option<Arc<T>>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { current: tokio::sync::Mutex::new(None) }
    }
}

impl<T> Slot<T> {
    pub fn new(value: T) -> Self {
        Slot { current: tokio::sync::Mutex::new(Some(Arc::new(value))) }
    }

    /// The live connection, reconnecting with `connect` if there is none or `alive` says it has
    /// dropped. The lock is held while connecting: that is the single flight.
    pub async fn get<E, Fut>(&self, alive: impl Fn(&T) -> bool, connect: impl FnOnce() -> Fut) -> Result<Arc<T>, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| alive(c)) {
            return Ok(c.clone());
        }
        *current = None;
        let fresh = Arc::new(connect().await?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `stale` (if it is still the current one) so that the next [`get`](Slot::get)
    /// reconnects: for a connection that looks alive but has stopped answering.
    pub async fn discard(&self, stale: &Arc<T>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, stale)) {
            *current = None;
        }
    }

    /// The current connection, if any, without reconnecting.
    pub async fn peek(&self) -> Option<Arc<T>> {
        self.current.lock().await.clone()
    }

    pub async fn take(&self) -> Option<Arc<T>> {
        self.current.lock().await.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    struct Conn {
        alive: AtomicBool,
        serial: u32,
    }

    #[tokio::test]
    async fn many_users_noticing_a_drop_cause_one_reconnect() {
        let slot = Arc::new(Slot::new(Conn { alive: AtomicBool::new(true), serial: 0 }));
        let connects = Arc::new(AtomicU32::new(0));
        let first = slot.get::<(), _>(|c| c.alive.load(Ordering::SeqCst), || async { unreachable!() }).await.unwrap();
        first.alive.store(false, Ordering::SeqCst);
        let users = (0..20).map(|_| {
            let (slot, connects) = (slot.clone(), connects.clone());
            tokio::spawn(async move {
                slot.get::<(), _>(
                    |c| c.alive.load(Ordering::SeqCst),
                    || async {
                        let n = connects.fetch_add(1, Ordering::SeqCst) + 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Conn { alive: AtomicBool::new(true), serial: n })
                    },
                )
                .await
                .unwrap()
                .serial
            })
        });
        let serials: Vec<u32> = futures::future::join_all(users).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(connects.load(Ordering::SeqCst), 1);
        assert!(serials.iter().all(|s| *s == 1), "{serials:?}");
    }

    #[tokio::test]
    async fn a_discarded_connection_is_replaced_but_only_if_still_current() {
        let slot = Slot::new(Conn { alive: AtomicBool::new(true), serial: 0 });
        let alive = |c: &Conn| c.alive.load(Ordering::SeqCst);
        let old = slot.get::<(), _>(alive, || async { unreachable!() }).await.unwrap();
        slot.discard(&old).await;
        let new = slot.get::<(), _>(alive, || async { Ok(Conn { alive: AtomicBool::new(true), serial: 1 }) }).await;
        assert_eq!(new.unwrap().serial, 1);
        // A late discard of the old one does not throw away the new one.
        slot.discard(&old).await;
        assert_eq!(slot.peek().await.unwrap().serial, 1);
    }

    #[tokio::test]
    async fn backoff_retries_transient_failures_within_its_budget_only() {
        let backoff = Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
            budget: Duration::from_millis(300),
        };
        let tries = AtomicU32::new(0);
        let started = Instant::now();
        let r: Result<(), (&str, u32)> = backoff
            .run(
                || async {
                    tries.fetch_add(1, Ordering::SeqCst);
                    Err("down")
                },
                |_| true,
            )
            .await;
        let (_, attempts) = r.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(400), "{:?}", started.elapsed());
        // 10 + 20 + 40 + 40 + ... ms within 300 ms.
        assert!((5..=10).contains(&attempts), "{attempts}");

        // Succeeds on the third try.
        let n = AtomicU32::new(0);
        let r = backoff
            .run(|| async { if n.fetch_add(1, Ordering::SeqCst) < 2 { Err("not yet") } else { Ok(7) } }, |_| true)
            .await;
        assert_eq!(r.unwrap(), 7);

        // A permanent failure is not retried.
        let n = AtomicU32::new(0);
        let r: Result<(), _> = backoff
            .run(
                || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Err("refused")
                },
                |e| *e != "refused",
            )
            .await;
        assert_eq!(r.unwrap_err(), ("refused", 1));
    }
}
