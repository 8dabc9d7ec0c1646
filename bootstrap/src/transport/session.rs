//! An authenticated SSH session on one machine: run a command (optionally with stdin), as the
//! login user or with root rights through sudo, or open a long-running channel for the agent.
//!
//! The session outlives its connection: when the connection has dropped, the next command opens
//! a new one (and through a new bastion connection if that dropped too). Every command has a
//! deadline; one that runs out has its channel closed, so nothing it prints later is read as
//! the answer to anything else. Output is bounded: a node cannot make the controller hold more
//! than [`STDOUT_LIMIT`] of it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::ChannelMsg;
use russh::client::{Handle, Msg};

use super::host_keys::Verifier;
use super::reconnect::Slot;
use super::target::Target;
use super::{PING, Route, Transport, TransportError};
use crate::secrets::Secret;

/// A command's deadline unless its caller names a longer one.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
/// Input sent to a command must arrive at least this fast (bytes per second): an upload's
/// deadline grows with its size.
const MIN_UPLOAD_RATE: u64 = 1024 * 1024;
/// The most a command may print on stdout: more is refused (a node could otherwise fill the
/// controller's memory).
pub const STDOUT_LIMIT: usize = 16 * 1024 * 1024;
/// Of stderr only the tail is kept: it says why a command failed.
pub const STDERR_KEPT: usize = 64 * 1024;

/// How root rights are obtained on this machine.
#[derive(Debug, Clone)]
pub enum Privilege {
    /// Logged in as root.
    Root,
    /// `sudo -n` works.
    PasswordlessSudo,
    /// `sudo -S` with the password written as the first line of stdin.
    SudoWithPassword(Secret),
    /// Not root and sudo is off: commands run as the login user.
    User,
}

#[derive(Debug)]
pub struct ExecOutput {
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
    /// Stdout as text, without control characters other than line breaks and tabs.
    pub fn stdout_text(&self) -> String {
        crate::sanitize::text(&String::from_utf8_lossy(&self.stdout))
    }
    /// Stderr's tail as text, cleaned like [`stdout_text`](Self::stdout_text).
    pub fn stderr_text(&self) -> String {
        crate::sanitize::text(String::from_utf8_lossy(&self.stderr).trim())
    }
}

/// What a command streamed into a local file ([`NodeSession::exec_privileged_to_file`]).
#[derive(Debug)]
pub struct Streamed {
    pub status: u32,
    pub bytes: u64,
    /// SHA-256 of what was written, lowercase hex.
    pub sha256: String,
    pub stderr: Vec<u8>,
}

impl Streamed {
    pub fn success(&self) -> bool {
        self.status == 0
    }
    pub fn stderr_text(&self) -> String {
        crate::sanitize::text(String::from_utf8_lossy(&self.stderr).trim())
    }
}

/// One open SSH connection and how root rights are had on it.
pub(super) struct Live {
    pub(super) handle: Handle<Verifier>,
    pub(super) privilege: Privilege,
}

/// What a command reads on stdin.
enum Input<'a> {
    Parts(Vec<Bytes>),
    /// Streamed in chunks: a large file is never held in memory whole.
    File(&'a Path),
}

pub struct NodeSession {
    pub target: Target,
    transport: Transport,
    route: Route,
    live: Slot<Live>,
    /// As found at the first login (every reopening finds the same, for the same target).
    privilege: Privilege,
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// How a command is named in errors: its first line, shortened.
fn label(command: &str) -> String {
    let first = command.lines().next().unwrap_or_default();
    let mut short: String = first.chars().take(60).collect();
    if short.len() < command.len() {
        short.push_str("...");
    }
    crate::sanitize::line(&short)
}

impl Live {
    /// Works out how to get root rights, checking a sudo password before it is relied on.
    pub(super) async fn establish_privilege(
        &mut self,
        t: &Target,
        password: Option<Secret>,
    ) -> Result<(), TransportError> {
        self.privilege = if t.user == "root" {
            Privilege::Root
        } else if !t.sudo {
            Privilege::User
        } else if self.exec_plain(t, "sudo -n true", None).await?.success() {
            Privilege::PasswordlessSudo
        } else {
            let Some(password) = password else {
                return Err(TransportError::Sudo {
                    host: t.name.clone(),
                    message: "sudo asks for a password: set ssh.sudoPassword: {env: VARIABLE} in the inventory".into(),
                });
            };
            let mut stdin = password.expose().as_bytes().to_vec();
            stdin.push(b'\n');
            let out = self.exec_plain(t, "sudo -S -p '' true", Some(Bytes::from(stdin))).await?;
            if !out.success() {
                return Err(TransportError::Sudo {
                    host: t.name.clone(),
                    message: format!("sudo refused the password for user {} (check ssh.sudoPassword)", t.user),
                });
            }
            Privilege::SudoWithPassword(password)
        };
        Ok(())
    }

    /// A command during login (bounded by the login's own deadline).
    async fn exec_plain(&self, t: &Target, command: &str, stdin: Option<Bytes>) -> Result<ExecOutput, TransportError> {
        let mut channel = self.handle.channel_open_session().await?;
        channel.exec(true, command).await?;
        if let Some(data) = stdin {
            channel.data_bytes(data).await?;
        }
        channel.eof().await?;
        collect(&mut channel, &t.name, command).await
    }

    /// The command line and stdin prefix that run `command` with root rights.
    fn privileged_command(&self, command: &str) -> (String, Vec<u8>) {
        match &self.privilege {
            Privilege::Root | Privilege::User => (command.to_string(), Vec::new()),
            Privilege::PasswordlessSudo => (format!("sudo -n -- sh -c {}", shell_quote(command)), Vec::new()),
            Privilege::SudoWithPassword(pw) => {
                let mut prefix = pw.expose().as_bytes().to_vec();
                prefix.push(b'\n');
                (format!("sudo -S -p '' -- sh -c {}", shell_quote(command)), prefix)
            }
        }
    }
}

/// Reads a finished command's output and exit status off its channel. Stdout beyond
/// [`STDOUT_LIMIT`] is refused (the channel is closed); of stderr the last [`STDERR_KEPT`]
/// bytes are kept. A channel that ends without an exit status lost its connection.
async fn collect(channel: &mut russh::Channel<Msg>, host: &str, command: &str) -> Result<ExecOutput, TransportError> {
    let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                if stdout.len() + data.len() > STDOUT_LIMIT {
                    let _ = channel.close().await;
                    return Err(TransportError::OutputTooLarge {
                        host: host.to_string(),
                        command: label(command),
                        limit: STDOUT_LIMIT,
                    });
                }
                stdout.extend_from_slice(&data);
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => keep_tail(&mut stderr, &data, STDERR_KEPT),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                keep_tail(&mut stderr, format!("killed by signal {signal_name:?}").as_bytes(), STDERR_KEPT);
                status = Some(255);
            }
            _ => {}
        }
    }
    match status {
        Some(status) => Ok(ExecOutput { status, stdout, stderr }),
        None => Err(TransportError::Dropped { host: host.to_string(), command: label(command) }),
    }
}

/// Appends `data` to `buffer`, keeping only its last `limit` bytes.
fn keep_tail(buffer: &mut Vec<u8>, data: &[u8], limit: usize) {
    let data = &data[data.len().saturating_sub(limit)..];
    let excess = (buffer.len() + data.len()).saturating_sub(limit);
    buffer.drain(..excess.min(buffer.len()));
    buffer.extend_from_slice(data);
}

impl NodeSession {
    pub(super) async fn open(
        transport: Transport,
        target: Target,
        route: Route,
    ) -> Result<NodeSession, TransportError> {
        let live = transport.open_live(&target, route, true).await?;
        let privilege = live.privilege.clone();
        Ok(NodeSession { target, transport, route, live: Slot::new(live), privilege })
    }

    pub fn privilege(&self) -> &Privilege {
        &self.privilege
    }

    /// The open connection, reopened first if it has dropped (one reopening for all callers).
    async fn live(&self) -> Result<Arc<Live>, TransportError> {
        self.live
            .get(
                |l| !l.handle.is_closed(),
                || async {
                    tracing::warn!(host = %self.target.name, "the connection dropped; reopening it");
                    self.transport.open_live(&self.target, self.route, true).await
                },
            )
            .await
    }

    /// True when the connection answers a ping in time. Used only after a failure, to tell a
    /// slow command from a dead connection.
    pub async fn responsive(&self) -> bool {
        let Some(live) = self.live.peek().await else { return false };
        // A ping on a connection that closes meanwhile also returns: ask again after it.
        !live.handle.is_closed()
            && matches!(tokio::time::timeout(PING, live.handle.send_ping()).await, Ok(Ok(())))
            && !live.handle.is_closed()
    }

    /// Drops the connection and opens a new one (after a failure that left it in doubt).
    pub async fn reopen(&self) -> Result<(), TransportError> {
        if let Some(old) = self.live.peek().await {
            self.live.discard(&old).await;
            tokio::spawn(async move {
                let _ = old.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
            });
        }
        self.live().await.map(|_| ())
    }

    /// Runs `command` through `sh -c` as the login user; `stdin` is written and then closed.
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, TransportError> {
        let parts = stdin.map(|d| vec![Bytes::copy_from_slice(d)]).unwrap_or_default();
        let deadline = deadline_for(DEFAULT_DEADLINE, stdin.map_or(0, |d| d.len() as u64));
        self.run(command, command.to_string(), Input::Parts(parts), deadline).await
    }

    /// Runs `command` with root rights (see [`Privilege`]) within [`DEFAULT_DEADLINE`].
    pub async fn exec_privileged(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, TransportError> {
        self.exec_privileged_within(command, stdin, DEFAULT_DEADLINE).await
    }

    /// Like [`exec_privileged`](Self::exec_privileged) with its own deadline, for commands known
    /// to be slow (kubeadm init).
    pub async fn exec_privileged_within(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        deadline: Duration,
    ) -> Result<ExecOutput, TransportError> {
        self.privileged(command, stdin.map(Bytes::copy_from_slice), deadline).await
    }

    /// Like [`exec_privileged`](Self::exec_privileged) with a shared stdin buffer: a large input
    /// (the agent) sent to many hosts is not copied for each. The deadline grows with its size.
    pub async fn exec_privileged_shared(
        &self,
        command: &str,
        stdin: Option<Bytes>,
    ) -> Result<ExecOutput, TransportError> {
        let deadline = deadline_for(DEFAULT_DEADLINE, stdin.as_ref().map_or(0, |d| d.len() as u64));
        self.privileged(command, stdin, deadline).await
    }

    async fn privileged(
        &self,
        command: &str,
        stdin: Option<Bytes>,
        deadline: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let live = self.live().await?;
        let (line, prefix) = live.privileged_command(command);
        let parts = [(!prefix.is_empty()).then(|| Bytes::from(prefix)), stdin].into_iter().flatten().collect();
        self.run_on(&live, command, line, Input::Parts(parts), deadline).await
    }

    /// Like [`exec_privileged`](Self::exec_privileged) with the content of a local file as stdin,
    /// streamed in chunks: a large file is never held in memory whole. The deadline grows with
    /// the file's size.
    pub async fn exec_privileged_file(&self, command: &str, file: &Path) -> Result<ExecOutput, TransportError> {
        let size = std::fs::metadata(file)
            .map_err(|e| TransportError::LocalFile { path: file.to_path_buf(), message: e.to_string() })?
            .len();
        let live = self.live().await?;
        let (line, prefix) = live.privileged_command(command);
        let prefix = (!prefix.is_empty()).then(|| Bytes::from(prefix));
        let deadline = deadline_for(DEFAULT_DEADLINE, size);
        self.run_on_with_prefix(&live, command, line, prefix, Input::File(file), deadline).await
    }

    async fn run(
        &self,
        command: &str,
        line: String,
        input: Input<'_>,
        deadline: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let live = self.live().await?;
        self.run_on(&live, command, line, input, deadline).await
    }

    async fn run_on(
        &self,
        live: &Live,
        command: &str,
        line: String,
        input: Input<'_>,
        deadline: Duration,
    ) -> Result<ExecOutput, TransportError> {
        self.run_on_with_prefix(live, command, line, None, input, deadline).await
    }

    /// Opens a channel, runs `line` in it with `prefix` then `input` on stdin, and collects the
    /// output, all within `deadline`; when it runs out the channel is closed.
    async fn run_on_with_prefix(
        &self,
        live: &Live,
        command: &str,
        line: String,
        prefix: Option<Bytes>,
        input: Input<'_>,
        deadline: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let host = &self.target.name;
        let opening = self.transport.options().connect_timeout;
        let mut channel = match tokio::time::timeout(opening, live.handle.channel_open_session()).await {
            Ok(channel) => channel?,
            Err(_) => {
                return Err(TransportError::Timeout {
                    host: host.clone(),
                    address: self.target.socket_label(),
                    seconds: opening.as_secs(),
                });
            }
        };
        let work = async {
            channel.exec(true, line).await?;
            if let Some(p) = prefix {
                channel.data_bytes(p).await?;
            }
            match input {
                Input::Parts(parts) => {
                    for part in parts {
                        channel.data_bytes(part).await?;
                    }
                }
                Input::File(file) => send_file(&channel, file).await?,
            }
            channel.eof().await?;
            collect(&mut channel, host, command).await
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(result) => result,
            Err(_) => {
                let _ = tokio::time::timeout(PING, channel.close()).await;
                Err(TransportError::CommandTimeout {
                    host: host.clone(),
                    command: label(command),
                    seconds: deadline.as_secs(),
                })
            }
        }
    }

    /// Runs `command` with root rights and streams its stdout into the new file `dest` (mode
    /// 0600), hashing it on the way: how a file too large to hold in memory (an etcd snapshot)
    /// comes to the controller. More than `limit` bytes is refused; on any failure `dest` is
    /// removed, so a partial file is never left looking like a whole one.
    pub async fn exec_privileged_to_file(
        &self,
        command: &str,
        dest: &Path,
        limit: u64,
        deadline: Duration,
    ) -> Result<Streamed, TransportError> {
        let result = self.stream_to_file(command, dest, limit, deadline).await;
        if !matches!(&result, Ok(s) if s.success()) {
            let _ = std::fs::remove_file(dest);
        }
        result
    }

    async fn stream_to_file(
        &self,
        command: &str,
        dest: &Path,
        limit: u64,
        deadline: Duration,
    ) -> Result<Streamed, TransportError> {
        use sha2::Digest;
        use std::os::unix::fs::OpenOptionsExt;
        use tokio::io::AsyncWriteExt;
        let host = &self.target.name;
        let local = |e: std::io::Error| TransportError::LocalWrite { path: dest.to_path_buf(), message: e.to_string() };
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(dest).map_err(local)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut channel = self.open_privileged(command).await?;
        let work = async {
            channel.eof().await?;
            let (mut hasher, mut bytes, mut stderr, mut status) = (sha2::Sha256::new(), 0u64, Vec::new(), None);
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        bytes += data.len() as u64;
                        if bytes > limit {
                            let _ = channel.close().await;
                            return Err(TransportError::OutputTooLarge {
                                host: host.clone(),
                                command: label(command),
                                limit: limit as usize,
                            });
                        }
                        hasher.update(&data);
                        file.write_all(&data).await.map_err(local)?;
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => keep_tail(&mut stderr, &data, STDERR_KEPT),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::ExitSignal { .. } => status = Some(255),
                    _ => {}
                }
            }
            file.sync_all().await.map_err(local)?;
            match status {
                Some(status) => Ok(Streamed { status, bytes, sha256: hex::encode(hasher.finalize()), stderr }),
                None => Err(TransportError::Dropped { host: host.clone(), command: label(command) }),
            }
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(result) => result,
            Err(_) => {
                let _ = tokio::time::timeout(PING, channel.close()).await;
                Err(TransportError::CommandTimeout {
                    host: host.clone(),
                    command: label(command),
                    seconds: deadline.as_secs(),
                })
            }
        }
    }

    /// Starts `command` with root rights and returns its channel, for a long conversation
    /// (the agent's JSON lines). The sudo password, if any, has already been written.
    pub async fn open_privileged(&self, command: &str) -> Result<russh::Channel<Msg>, TransportError> {
        let live = self.live().await?;
        let (line, prefix) = live.privileged_command(command);
        let opening = self.transport.options().connect_timeout;
        let open = async {
            let channel = live.handle.channel_open_session().await?;
            channel.exec(true, line).await?;
            if !prefix.is_empty() {
                channel.data_bytes(prefix).await?;
            }
            Ok::<_, TransportError>(channel)
        };
        tokio::time::timeout(opening, open).await.unwrap_or_else(|_| {
            Err(TransportError::Timeout {
                host: self.target.name.clone(),
                address: self.target.socket_label(),
                seconds: opening.as_secs(),
            })
        })
    }

    /// A TCP connection from this node to `host:port` (as the node sees them), carried by this
    /// session (`direct-tcpip`): how the controller reaches a service listening only on the node.
    pub async fn forward(&self, host: &str, port: u16) -> Result<russh::ChannelStream<Msg>, TransportError> {
        let live = self.live().await?;
        let opening = self.transport.options().connect_timeout;
        let open = live.handle.channel_open_direct_tcpip(host.to_string(), u32::from(port), "127.0.0.1", 0);
        match tokio::time::timeout(opening, open).await {
            Ok(channel) => Ok(channel?.into_stream()),
            Err(_) => Err(TransportError::Timeout {
                host: self.target.name.clone(),
                address: format!("{host}:{port}"),
                seconds: opening.as_secs(),
            }),
        }
    }

    pub async fn close(self) {
        if let Some(live) = self.live.take().await {
            let _ = live.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        }
    }
}

/// `base`, plus the time `bytes` of input take at the slowest acceptable rate.
fn deadline_for(base: Duration, bytes: u64) -> Duration {
    base + Duration::from_secs(bytes / MIN_UPLOAD_RATE)
}

async fn send_file(channel: &russh::Channel<Msg>, file: &Path) -> Result<(), TransportError> {
    use tokio::io::AsyncReadExt;
    let local = |e: std::io::Error| TransportError::LocalFile { path: file.to_path_buf(), message: e.to_string() };
    let mut source = tokio::fs::File::open(file).await.map_err(local)?;
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = source.read(&mut chunk).await.map_err(local)?;
        if n == 0 {
            return Ok(());
        }
        channel.data(&chunk[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn only_the_tail_of_stderr_is_kept() {
        let mut kept = Vec::new();
        for chunk in [&b"first line\n"[..], b"0123456789", b"abc"] {
            keep_tail(&mut kept, chunk, 8);
            assert!(kept.len() <= 8);
        }
        assert_eq!(kept, b"56789abc");
        keep_tail(&mut kept, b"a much longer chunk than the limit", 8);
        assert_eq!(kept, b"he limit");
    }

    #[test]
    fn uploads_get_time_in_proportion_to_their_size() {
        assert_eq!(deadline_for(DEFAULT_DEADLINE, 0), DEFAULT_DEADLINE);
        assert_eq!(deadline_for(DEFAULT_DEADLINE, 600 * 1024 * 1024), DEFAULT_DEADLINE + Duration::from_secs(600));
        assert_eq!(label("set -e; cat > /x\necho done"), "set -e; cat > /x...");
    }
}
