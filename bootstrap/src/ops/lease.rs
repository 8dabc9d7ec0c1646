//! The cluster-wide lease: two controllers on two machines (two operators, two state
//! directories) must not change one cluster at once, and the controller's own lock file cannot
//! see the other machine. So every writing command also holds a lease on the masters themselves:
//! on each master, a process holds `flock /var/lib/groundwork/cluster.lock` for as long as the
//! controller's SSH channel to it stays open, and writes who holds it beside the lock. The kernel
//! on the master releases it when that process ends: when the controller closes the channel, or
//! its connection drops, or it dies. No stale lease is ever left to break by hand.
//!
//! A lease needs a majority of the inventory's masters (2 of 3), so two controllers that each
//! reach a different part of the cluster still cannot both hold it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use russh::ChannelMsg;

use crate::state::LockHolder;
use crate::transport::{NodeSession, TransportError};

const DIR: &str = "/var/lib/groundwork";
const LEASED: &str = "GROUNDWORK-LEASED";
const HELD: &str = "GROUNDWORK-HELD";

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "the cluster is locked by {} (lease on {host}): another controller is changing it; wait for it to finish",
        holder.describe()
    )]
    Held { host: String, holder: Box<LockHolder> },
    #[error(
        "cannot take the cluster lease: it needs {need} of the {total} masters and only {got} granted it ({why}); \
         bring the masters back, or run again once they answer"
    )]
    NoQuorum { need: usize, total: usize, got: usize, why: String },
}

/// Held while it lives; [`release`](Self::release) ends it at once, a drop or a dropped
/// connection a little later (when each master's sshd sees the channel go).
pub struct ClusterLease {
    holds: Vec<Hold>,
}

struct Hold {
    host: String,
    release: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

/// What one master answered.
enum Answer {
    Granted(Hold),
    /// Still ours through an earlier connection of this same run (a reconnect).
    OursAlready,
    Held(LockHolder),
}

impl ClusterLease {
    /// Takes the lease on the masters given (name and session), needing a majority of `total`
    /// (the inventory's masters). Refused at once, naming the holder, if any master says another
    /// controller holds it; then whatever was granted is released.
    pub async fn take(
        masters: &[(&str, &NodeSession)],
        total: usize,
        me: &LockHolder,
        timeout: Duration,
    ) -> Result<ClusterLease, LeaseError> {
        let need = total / 2 + 1;
        let answers =
            futures::future::join_all(masters.iter().map(|(name, session)| ask(name, session, me, timeout))).await;
        let mut lease = ClusterLease { holds: vec![] };
        let (mut got, mut why, mut held_by) = (0, Vec::new(), None);
        for (name, answer) in masters.iter().map(|(n, _)| *n).zip(answers) {
            match answer {
                Ok(Answer::Granted(hold)) => {
                    got += 1;
                    lease.holds.push(hold);
                }
                Ok(Answer::OursAlready) => got += 1,
                Ok(Answer::Held(holder)) => held_by = held_by.or(Some((name.to_string(), holder))),
                Err(e) => why.push(format!("{name}: {}", e.split_whitespace().collect::<Vec<_>>().join(" "))),
            }
        }
        if let Some((host, holder)) = held_by {
            lease.release().await;
            return Err(LeaseError::Held { host, holder: Box::new(holder) });
        }
        if got < need {
            lease.release().await;
            if why.is_empty() {
                why.push(format!("{} master(s) connected", masters.len()));
            }
            return Err(LeaseError::NoQuorum { need, total, got, why: why.join("; ") });
        }
        Ok(lease)
    }

    /// Masters whose lease channel has closed since it was granted (a dropped connection).
    pub fn lost(&self) -> Vec<String> {
        self.holds.iter().filter(|h| h.lost.load(Ordering::Relaxed)).map(|h| h.host.clone()).collect()
    }

    /// Ends the lease on every master now.
    pub async fn release(mut self) {
        for hold in &mut self.holds {
            if let Some(tx) = hold.release.take() {
                let _ = tx.send(());
            }
        }
        for hold in self.holds.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), hold.task).await;
        }
    }
}

/// Asks one master for the lease: a shell holds the flock on fd 9 while `cat` waits for the end
/// of our stdin (the holder line comes through stdin too, like everything sent to hosts).
async fn ask(name: &str, session: &NodeSession, me: &LockHolder, timeout: Duration) -> Result<Answer, String> {
    let script = format!(
        "mkdir -p {DIR} && exec 9>>{DIR}/cluster.lock || exit 1; \
         if flock -n 9; then IFS= read -r h; printf '%s\\n' \"$h\" > {DIR}/cluster.lock.holder; echo {LEASED}; exec cat >/dev/null; \
         else echo \"{HELD} $(head -c 4096 {DIR}/cluster.lock.holder 2>/dev/null | tr -d '\\n')\"; fi"
    );
    let channel = session.open_privileged(&script).await.map_err(|e: TransportError| e.to_string())?;
    let mut line = me.to_line().into_bytes();
    line.push(b'\n');
    channel.data_bytes(line).await.map_err(|e| e.to_string())?;
    let mut channel = channel;
    let first = tokio::time::timeout(timeout, first_line(&mut channel))
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))??;
    if first == LEASED {
        let lost = Arc::new(AtomicBool::new(false));
        let (release, mut released) = tokio::sync::oneshot::channel();
        let watch = lost.clone();
        // Owns the channel: closes it on release, notices when the far side goes.
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut released => {
                        let _ = channel.eof().await;
                        let _ = channel.close().await;
                        return;
                    }
                    msg = channel.wait() => match msg {
                        None | Some(ChannelMsg::Close) | Some(ChannelMsg::ExitStatus { .. }) => {
                            watch.store(true, Ordering::Relaxed);
                            return;
                        }
                        Some(_) => {}
                    },
                }
            }
        });
        return Ok(Answer::Granted(Hold { host: name.to_string(), release: Some(release), task, lost }));
    }
    let Some(rest) = first.strip_prefix(HELD) else {
        return Err(format!(
            "unexpected answer to the lease: {}",
            first.chars().filter(|c| !c.is_control()).take(200).collect::<String>()
        ));
    };
    let _ = channel.close().await;
    match serde_json::from_str::<LockHolder>(rest.trim()) {
        Ok(holder) if holder.run == me.run => Ok(Answer::OursAlready),
        Ok(holder) => Ok(Answer::Held(holder)),
        // Held, but the holder has not written its name yet (or wrote garbage): still held.
        Err(_) => Ok(Answer::Held(LockHolder {
            user: "?".into(),
            machine: "?".into(),
            pid: 0,
            since: 0,
            command: "(unnamed holder)".into(),
            run: String::new(),
        })),
    }
}

/// The first line the lease script prints (at most 8 KiB: the holder file is read with a limit).
async fn first_line(channel: &mut russh::Channel<russh::client::Msg>) -> Result<String, String> {
    let mut buf = Vec::new();
    loop {
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            return Ok(String::from_utf8_lossy(&buf[..pos]).trim().to_string());
        }
        if buf.len() > 8192 {
            return Err("the lease answer is longer than 8 KiB".into());
        }
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => buf.extend_from_slice(&data),
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                return Err(format!("the lease command exited with status {exit_status}"));
            }
            Some(_) => {}
            None => return Err("the connection closed before the lease answered".into()),
        }
    }
}

/// Both locks for a command other than `apply` (which leases through its own nodes' sessions):
/// the controller's lock file and the lease on the masters, reached through `transport`.
pub struct CommandLock {
    _local: crate::state::ClusterLock,
    lease: Option<ClusterLease>,
    // The lease lives on these sessions' connections.
    sessions: Vec<NodeSession>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandLockError {
    #[error(transparent)]
    Local(#[from] crate::state::LockError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

impl CommandLock {
    /// Takes the lock file, then the lease on a majority of the inventory's masters.
    pub async fn take(
        loaded: &crate::inventory::LoadedInventory,
        transport: &crate::transport::Transport,
        command: &str,
    ) -> Result<CommandLock, CommandLockError> {
        let state = crate::state::StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name);
        let local = crate::state::ClusterLock::acquire(&state.lock_file(), command)?;
        let masters: Vec<crate::transport::Target> = crate::transport::target::hosts(loaded)
            .into_iter()
            .filter(|t| t.roles.contains(&crate::inventory::Role::Master))
            .collect();
        if masters.is_empty() {
            return Ok(CommandLock { _local: local, lease: None, sessions: vec![] });
        }
        let opened = futures::future::join_all(masters.iter().map(|t| transport.open(t))).await;
        let sessions: Vec<NodeSession> = opened.into_iter().filter_map(Result::ok).collect();
        let named: Vec<(&str, &NodeSession)> = sessions.iter().map(|s| (s.target.name.as_str(), s)).collect();
        let lease =
            ClusterLease::take(&named, masters.len(), &LockHolder::me(command), Duration::from_secs(20)).await?;
        Ok(CommandLock { _local: local, lease: Some(lease), sessions })
    }

    pub async fn release(self) {
        if let Some(lease) = self.lease {
            lease.release().await;
        }
        for s in self.sessions {
            s.close().await;
        }
    }
}
