//! Reaching machines over SSH with russh: one authenticated connection to the bastion, and for each
//! node a `direct-tcpip` channel on it carrying that node's own SSH session (or a direct TCP
//! connection when the inventory has no bastion). Host keys are verified everywhere; handshakes
//! are bounded; each node has a deadline; transient failures are retried with backoff; one node's
//! failure never touches another's session.

pub mod auth;
pub mod host_keys;
pub mod session;
pub mod target;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use tokio::sync::Semaphore;

use self::auth::Credentials;
use self::host_keys::{HostKeyPolicy, Verdict, Verifier};
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
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    #[error("cannot read {}: {message}", path.display())]
    LocalFile { path: PathBuf, message: String },
}

impl TransportError {
    /// Worth another try: the network or the far side's sshd may simply not be ready yet.
    /// Never true for a host key or login problem.
    fn is_transient(&self) -> bool {
        match self {
            TransportError::Connect { .. } | TransportError::Timeout { .. } => true,
            TransportError::Ssh(e) => matches!(
                e,
                russh::Error::IO(_)
                    | russh::Error::Disconnect
                    | russh::Error::ChannelOpenFailure(_)
                    | russh::Error::ConnectionTimeout
                    | russh::Error::HUP
                    | russh::Error::SendError
            ),
            _ => false,
        }
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
    /// Directory relative secret files start from.
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ViaBastion,
    Direct,
}

pub struct Transport {
    opts: TransportOptions,
    policy: Arc<HostKeyPolicy>,
    credentials: Credentials,
    bastion: Option<Handle<Verifier>>,
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
        let mut transport = Transport {
            policy: Arc::new(HostKeyPolicy::new(opts.known_hosts.clone(), opts.accept_new)),
            credentials: Credentials::new(&opts.base_dir),
            handshakes: Semaphore::new(opts.max_handshakes.max(1)),
            bastion: None,
            opts,
        };
        let all: Vec<&Target> = bastion.into_iter().chain(hosts).collect();
        transport.credentials.preload(&all).await?;
        if let Some(b) = bastion {
            let session = transport.open_with(b, Route::Direct, false).await?;
            tracing::debug!(bastion = %b.socket_label(), "bastion connected");
            transport.bastion = Some(session.into_handle());
        }
        Ok(transport)
    }

    pub fn options(&self) -> &TransportOptions {
        &self.opts
    }

    /// An authenticated session on `target` (through the bastion when there is one), with its
    /// privilege established. Retries transient failures with backoff.
    pub async fn open(&self, target: &Target) -> Result<NodeSession, TransportError> {
        let route = if self.bastion.is_some() { Route::ViaBastion } else { Route::Direct };
        self.open_with(target, route, true).await
    }

    /// A session of its own on the bastion (for its facts), beside the forwarding connection.
    pub async fn open_bastion(&self, bastion: &Target) -> Result<NodeSession, TransportError> {
        self.open_with(bastion, Route::Direct, true).await
    }

    /// `privileged`: also establish how root rights are had (not needed for the bastion's
    /// forwarding connection).
    async fn open_with(&self, target: &Target, route: Route, privileged: bool) -> Result<NodeSession, TransportError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let result = {
                let _permit = self.handshakes.acquire().await.map_err(|e| TransportError::Bastion(e.to_string()))?;
                let deadline = self.opts.connect_timeout;
                match tokio::time::timeout(deadline, self.open_once(target, route, privileged)).await {
                    Ok(r) => r,
                    Err(_) => Err(TransportError::Timeout {
                        host: target.name.clone(),
                        address: target.socket_label(),
                        seconds: deadline.as_secs(),
                    }),
                }
            };
            match result {
                Err(e) if e.is_transient() && attempt < self.opts.attempts => {
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

    async fn open_once(&self, target: &Target, route: Route, privileged: bool) -> Result<NodeSession, TransportError> {
        let (verifier, verdict) = Verifier::new(self.policy.clone(), &target.address, target.port);
        let mut config = client::Config {
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: Some(Duration::from_secs(15)),
            nodelay: true,
            ..Default::default()
        };
        if let Some(algorithms) = self.policy.preferred_algorithms(&target.address, target.port) {
            config.preferred.key = std::borrow::Cow::Owned(algorithms);
        }
        let config = Arc::new(config);
        let connected = match (&self.bastion, route) {
            (Some(bastion), Route::ViaBastion) => {
                let channel = bastion
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
        self.credentials.authenticate(&mut handle, target).await?;
        let mut session = NodeSession::new(target.clone(), handle);
        if !privileged {
            return Ok(session);
        }
        let password = match (&target.sudo, &target.sudo_password) {
            (true, Some(r)) => {
                Some(secrets::resolve(r, &self.opts.base_dir, &format!("sudo password for {}", target.name))?)
            }
            _ => None,
        };
        session.establish_privilege(password).await?;
        Ok(session)
    }

    /// The precise reason a handshake failed on the host key, if that is why.
    fn refused(&self, target: &Target, verdict: &Arc<Mutex<Option<Verdict>>>) -> Option<TransportError> {
        let v = verdict.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        host_keys::explain(&v, &target.name, &target.address, target.port, &self.policy.file)
            .map(TransportError::HostKey)
    }

    pub async fn close(self) {
        if let Some(b) = self.bastion {
            let _ = b.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        }
    }
}
