//! Reaching machines over SSH with russh: one authenticated connection to the bastion, and for each
//! node a `direct-tcpip` channel on it carrying that node's own SSH session (or a direct TCP
//! connection when the inventory has no bastion). Host keys are verified everywhere; handshakes
//! are bounded; each node has a deadline; transient failures are retried with backoff; one node's
//! failure never touches another's session.
//!
//! Connections come back: a bastion connection that dropped (or stopped answering) is made again
//! once, however many hosts notice, with backoff within `reconnect_budget`; a node's session
//! reopens itself on its next use (see `reconnect` and `session`).

pub mod auth;
pub mod host_keys;
pub mod reconnect;
pub mod session;
pub mod target;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use tokio::sync::Semaphore;

use self::auth::Credentials;
use self::host_keys::{HostKeyPolicy, Verdict, Verifier};
use self::reconnect::{Backoff, Slot};
use self::session::Live;
pub use self::session::{ExecOutput, NodeSession, Privilege, shell_quote};
pub use self::target::Target;
use crate::secrets::{self, SecretError};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    HostKey(String),
    #[error("{host}: login as {user} refused (tried {tried})")]
    AuthFailed { host: String, user: String, tried: String },
    #[error("private key {}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("{host}: {message}")]
    Sudo { host: String, message: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{host}: no answer from {address} within {seconds} s")]
    Timeout { host: String, address: String, seconds: u64 },
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { last: Box<TransportError>, attempts: u32 },
    #[error("{host}: cannot connect to {address}: {message}")]
    Connect { host: String, address: String, message: String },
    #[error("the bastion is not connected: {0}")]
    Bastion(String),
    #[error(
        "the connection to the bastion dropped and did not come back within {seconds} s ({attempts} attempts): {last}"
    )]
    Reconnect { last: Box<TransportError>, attempts: u32, seconds: u64 },
    #[error("{host}: the connection dropped while `{command}` ran")]
    Dropped { host: String, command: String },
    #[error("{host}: `{command}` did not finish within {seconds} s (its channel was closed)")]
    CommandTimeout { host: String, command: String, seconds: u64 },
    #[error("{host}: `{command}` printed more than {limit} bytes; refused")]
    OutputTooLarge { host: String, command: String, limit: usize },
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    #[error("cannot read {}: {message}", path.display())]
    LocalFile { path: PathBuf, message: String },
    #[error("cannot write {}: {message}", path.display())]
    LocalWrite { path: PathBuf, message: String },
}

impl TransportError {
    /// Worth another try: the network or the far side's sshd may simply not be ready yet.
    /// Never true for a host key or login problem.
    fn is_transient(&self) -> bool {
        match self {
            TransportError::Connect { .. } | TransportError::Timeout { .. } | TransportError::Dropped { .. } => true,
            TransportError::Ssh(e) => matches!(
                e,
                russh::Error::IO(_)
                    | russh::Error::Disconnect
                    | russh::Error::ChannelOpenFailure(_)
                    | russh::Error::ConnectionTimeout
                    | russh::Error::KeepaliveTimeout
                    | russh::Error::InactivityTimeout
                    | russh::Error::HUP
                    | russh::Error::SendError
                    | russh::Error::RecvError
            ),
            _ => false,
        }
    }

    /// The far side refused us (host key, login, sudo, a bounded input exceeded): trying again
    /// gives the same answer.
    pub fn is_refusal(&self) -> bool {
        match self {
            TransportError::HostKey(_)
            | TransportError::AuthFailed { .. }
            | TransportError::Key { .. }
            | TransportError::Sudo { .. }
            | TransportError::Secret(_)
            | TransportError::OutputTooLarge { .. } => true,
            TransportError::GaveUp { last, .. } | TransportError::Reconnect { last, .. } => last.is_refusal(),
            _ => false,
        }
    }

    /// A command that ran out of its deadline (not a connection that could not be made).
    pub fn is_deadline(&self) -> bool {
        matches!(self, TransportError::CommandTimeout { .. })
    }

    /// A problem on the controller itself (a file it cannot read), not on the way to the node.
    pub fn is_local(&self) -> bool {
        matches!(self, TransportError::LocalFile { .. } | TransportError::LocalWrite { .. })
    }
}

#[derive(Debug, Clone)]
pub struct TransportOptions {
    pub known_hosts: PathBuf,
    pub accept_new: bool,
    /// Deadline for one attempt at one machine (TCP, handshake, login, sudo check).
    pub connect_timeout: Duration,
    /// Handshakes in flight at once.
    pub max_handshakes: usize,
    /// Attempts per machine for transient failures.
    pub attempts: u32,
    /// How long a dropped bastion connection is tried again (with backoff) before every host
    /// behind it is given up.
    pub reconnect_budget: Duration,
    /// Directory relative secret files start from.
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ViaBastion,
    Direct,
}

/// A silent connection (a paused or unplugged bastion) is declared dead after about
/// KEEPALIVE * (KEEPALIVE_MAX + 1) without an answer, and reopened.
const KEEPALIVE: Duration = Duration::from_secs(5);
const KEEPALIVE_MAX: usize = 3;
/// How long a connection that looks alive may take to answer a ping before it is replaced.
const PING: Duration = Duration::from_secs(5);

/// Cheap to clone: every [`NodeSession`] keeps one to reopen itself.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    opts: TransportOptions,
    policy: Arc<HostKeyPolicy>,
    credentials: Credentials,
    bastion_target: Option<Target>,
    /// The forwarding connection every host's session runs through; replaced when it drops.
    bastion: Slot<Live>,
    handshakes: Semaphore,
}

impl Transport {
    /// Prepares the transport: decrypts the keys of `bastion` and `hosts` (prompting if needed),
    /// then, if there is a bastion, logs in to it.
    pub async fn connect(
        bastion: Option<&Target>,
        hosts: &[Target],
        opts: TransportOptions,
    ) -> Result<Transport, TransportError> {
        let shared = Shared {
            policy: Arc::new(HostKeyPolicy::new(opts.known_hosts.clone(), opts.accept_new)),
            credentials: Credentials::new(&opts.base_dir),
            handshakes: Semaphore::new(opts.max_handshakes.max(1)),
            bastion_target: bastion.cloned(),
            bastion: Slot::default(),
            opts,
        };
        let all: Vec<&Target> = bastion.into_iter().chain(hosts).collect();
        shared.credentials.preload(&all).await?;
        let transport = Transport { shared: Arc::new(shared) };
        if let Some(b) = bastion {
            let live = transport.open_live(b, Route::Direct, false).await?;
            tracing::debug!(bastion = %b.socket_label(), "bastion connected");
            transport.shared.bastion.get(|_| true, || async { Ok::<_, TransportError>(live) }).await?;
        }
        Ok(transport)
    }

    pub fn options(&self) -> &TransportOptions {
        &self.shared.opts
    }

    /// An authenticated session on `target` (through the bastion when there is one), with its
    /// privilege established. Retries transient failures with backoff; the session reopens
    /// itself when its connection drops.
    pub async fn open(&self, target: &Target) -> Result<NodeSession, TransportError> {
        let route = if self.shared.bastion_target.is_some() { Route::ViaBastion } else { Route::Direct };
        NodeSession::open(self.clone(), target.clone(), route).await
    }

    /// A session of its own on the bastion (for its facts), beside the forwarding connection.
    pub async fn open_bastion(&self, bastion: &Target) -> Result<NodeSession, TransportError> {
        NodeSession::open(self.clone(), bastion.clone(), Route::Direct).await
    }

    /// The bastion's forwarding connection, reconnected (once, whoever asks) if it dropped.
    async fn bastion(&self) -> Result<Arc<Live>, TransportError> {
        let Some(target) = &self.shared.bastion_target else {
            return Err(TransportError::Bastion("the inventory has no bastion".into()));
        };
        let budget = self.shared.opts.reconnect_budget;
        self.shared
            .bastion
            .get(
                |b| !b.handle.is_closed(),
                || async {
                    tracing::warn!(bastion = %target.socket_label(), "the bastion connection dropped; reconnecting");
                    let backoff = Backoff { first: Duration::from_millis(500), max: Duration::from_secs(5), budget };
                    let reconnected = backoff
                        .run(|| self.attempt(target, Route::Direct, false, None), TransportError::is_transient)
                        .await;
                    match reconnected {
                        Ok(live) => {
                            tracing::warn!(bastion = %target.socket_label(), "bastion reconnected");
                            Ok(live)
                        }
                        Err((last, attempts)) => {
                            Err(TransportError::Reconnect { last: Box::new(last), attempts, seconds: budget.as_secs() })
                        }
                    }
                },
            )
            .await
    }

    /// `privileged`: also establish how root rights are had (not needed for the bastion's
    /// forwarding connection).
    async fn open_live(&self, target: &Target, route: Route, privileged: bool) -> Result<Live, TransportError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            // Through the bastion: wait for it (it may be reconnecting) outside this host's own
            // deadline, which is for this host only.
            let bastion = match route {
                Route::ViaBastion => Some(self.bastion().await?),
                Route::Direct => None,
            };
            let result = self.attempt(target, route, privileged, bastion.clone()).await;
            if let (Err(TransportError::Timeout { .. } | TransportError::Connect { .. }), Some(b)) = (&result, &bastion)
            {
                // No answer through a bastion that looks connected: is it the bastion?
                let answered = matches!(tokio::time::timeout(PING, b.handle.send_ping()).await, Ok(Ok(())));
                if !answered || b.handle.is_closed() {
                    tracing::warn!(host = %target.name, "the bastion does not answer; replacing its connection");
                    self.shared.bastion.discard(b).await;
                }
            }
            match result {
                Err(e) if e.is_transient() && attempt < self.shared.opts.attempts => {
                    tracing::debug!(host = %target.name, attempt, error = %e, "transient failure, retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) if e.is_transient() => {
                    return Err(TransportError::GaveUp { last: Box::new(e), attempts: attempt });
                }
                other => return other,
            }
        }
    }

    /// One bounded attempt at `target`.
    async fn attempt(
        &self,
        target: &Target,
        route: Route,
        privileged: bool,
        bastion: Option<Arc<Live>>,
    ) -> Result<Live, TransportError> {
        let _permit = self.shared.handshakes.acquire().await.map_err(|e| TransportError::Bastion(e.to_string()))?;
        let deadline = self.shared.opts.connect_timeout;
        match tokio::time::timeout(deadline, self.open_once(target, route, privileged, bastion)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                host: target.name.clone(),
                address: target.socket_label(),
                seconds: deadline.as_secs(),
            }),
        }
    }

    async fn open_once(
        &self,
        target: &Target,
        route: Route,
        privileged: bool,
        bastion: Option<Arc<Live>>,
    ) -> Result<Live, TransportError> {
        let policy = &self.shared.policy;
        let (verifier, verdict) = Verifier::new(policy.clone(), &target.address, target.port);
        let mut config = client::Config {
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: Some(KEEPALIVE),
            keepalive_max: KEEPALIVE_MAX,
            nodelay: true,
            ..Default::default()
        };
        if let Some(algorithms) = policy.preferred_algorithms(&target.address, target.port) {
            config.preferred.key = std::borrow::Cow::Owned(algorithms);
        }
        let config = Arc::new(config);
        let connected = match (bastion, route) {
            (Some(bastion), Route::ViaBastion) => {
                let channel = bastion
                    .handle
                    .channel_open_direct_tcpip(target.address.clone(), target.port as u32, "127.0.0.1", 0)
                    .await
                    .map_err(|e| TransportError::Connect {
                        host: target.name.clone(),
                        address: target.socket_label(),
                        message: format!("the bastion could not open a connection to it ({e})"),
                    })?;
                client::connect_stream(config, channel.into_stream(), verifier).await
            }
            _ => {
                let stream =
                    tokio::net::TcpStream::connect((target.address.as_str(), target.port)).await.map_err(|e| {
                        TransportError::Connect {
                            host: target.name.clone(),
                            address: target.socket_label(),
                            message: e.to_string(),
                        }
                    })?;
                client::connect_stream(config, stream, verifier).await
            }
        };
        let mut handle = connected.map_err(|e| self.refused(target, &verdict).unwrap_or(TransportError::Ssh(e)))?;
        self.shared.credentials.authenticate(&mut handle, target).await?;
        let mut live = Live { handle, privilege: Privilege::User };
        if !privileged {
            return Ok(live);
        }
        let password = match (&target.sudo, &target.sudo_password) {
            (true, Some(r)) => {
                Some(secrets::resolve(r, &self.shared.opts.base_dir, &format!("sudo password for {}", target.name))?)
            }
            _ => None,
        };
        live.establish_privilege(target, password).await?;
        Ok(live)
    }

    /// The precise reason a handshake failed on the host key, if that is why.
    fn refused(&self, target: &Target, verdict: &Arc<Mutex<Option<Verdict>>>) -> Option<TransportError> {
        let v = verdict.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        host_keys::explain(&v, &target.name, &target.address, target.port, &self.shared.policy.file)
            .map(TransportError::HostKey)
    }

    pub async fn close(self) {
        if let Some(b) = self.shared.bastion.take().await {
            let _ = b.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        }
    }
}
