//! The controller's side of `groundwork-agent`: finding the static binary, putting it on a node
//! (once: skipped when the node has the same checksum; written to a temporary file, verified and
//! renamed, so a node never runs a half-written agent), and talking to it.
//!
//! What the agent says is untrusted: a line longer than [`LINE_LIMIT`] is refused, every string
//! is cleaned of control characters (see `crate::sanitize`), and after anything goes wrong in a
//! conversation (a deadline, a broken line) the session is closed and never read again, so a late
//! answer can never be taken for the answer to a later request.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use groundwork_protocol::{Action, Hello, Outcome, PROTOCOL_VERSION, Request, Response, encode_line};
use russh::ChannelMsg;
use russh::client::Msg;
use sha2::{Digest, Sha256};

use crate::transport::{NodeSession, TransportError};

pub const REMOTE_DIR: &str = "/var/lib/groundwork/bin";
pub const REMOTE_PATH: &str = "/var/lib/groundwork/bin/groundwork-agent";
/// The agent is built for this architecture only (see README, "The agent").
pub const AGENT_ARCH: &str = "x86_64";
const BUILT_AT: &str = "x86_64-unknown-linux-musl/release-agent/groundwork-agent";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "the agent binary was not found (looked at {searched}); build it with `cargo agent`, or point \
         GROUNDWORK_AGENT at it"
    )]
    NotFound { searched: String },
    #[error(
        "the agent binary {} is dynamically linked; groundwork uploads a static one: \
         cargo build -p groundwork-agent --profile release-agent --target x86_64-unknown-linux-musl",
        path.display()
    )]
    NotStatic { path: PathBuf },
    #[error("cannot read the agent binary {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{host}: the node is {arch}; this agent is built for {AGENT_ARCH} only")]
    Architecture { host: String, arch: String },
    #[error("{host}: uploading the agent failed: {message}")]
    Upload { host: String, message: String },
    #[error("{host}: the agent speaks protocol {agent}, this controller {controller}; upload the matching agent")]
    Version { host: String, agent: u32, controller: u32 },
    #[error("{host}: the agent {message}")]
    Protocol { host: String, message: String },
    #[error("{host}: the agent sent a line longer than {} MiB; its channel was closed", limit / (1024 * 1024))]
    LineTooLong { host: String, limit: usize },
    #[error("{host}: the agent {message}")]
    Exited { host: String, message: String },
    #[error("{host}: the agent did not answer within {seconds} s; its channel was closed")]
    Timeout { host: String, seconds: u64 },
    #[error("{host}: the agent session was closed after an earlier failure")]
    Discarded { host: String },
    #[error("{host}: {message}")]
    Action { host: String, message: String },
}

/// The agent binary the controller carries.
#[derive(Debug, Clone)]
pub struct AgentBinary {
    pub path: PathBuf,
    /// Shared, not copied, by every upload.
    pub bytes: Bytes,
    pub sha256: String,
}

impl AgentBinary {
    /// `explicit` (from `--agent` or GROUNDWORK_AGENT), else next to the controller's executable,
    /// else in `../lib/groundwork/` from it (where the Debian package installs it: /usr/bin and
    /// /usr/lib/groundwork), else where `cargo agent` puts it relative to the controller's target
    /// directory.
    pub fn locate(explicit: Option<&Path>) -> Result<AgentBinary, AgentError> {
        let candidates: Vec<PathBuf> = match explicit {
            Some(p) => vec![p.to_path_buf()],
            None => {
                let exe = std::env::current_exe().ok();
                let dir = exe.as_deref().and_then(Path::parent);
                let mut c = Vec::new();
                if let Some(d) = dir {
                    c.push(d.join("groundwork-agent"));
                    if let Some(prefix) = d.parent() {
                        c.push(prefix.join("lib/groundwork/groundwork-agent"));
                    }
                    // target/{debug,release}/groundwork -> target/x86_64-unknown-linux-musl/release-agent/
                    if let Some(target_dir) = d.parent() {
                        c.push(target_dir.join(BUILT_AT));
                    }
                    // target/debug/deps/test-binary -> target/...
                    if let Some(target_dir) = d.parent().and_then(Path::parent) {
                        c.push(target_dir.join(BUILT_AT));
                    }
                }
                c
            }
        };
        for path in candidates.iter().filter(|p| p.is_file()) {
            let bytes = std::fs::read(path).map_err(|source| AgentError::Read { path: path.clone(), source })?;
            // A dynamically linked agent (e.g. a plain `cargo build` beside the controller) may not
            // run on the nodes' libc: only a static one is carried.
            if !is_static_elf(&bytes) {
                if explicit.is_some() {
                    return Err(AgentError::NotStatic { path: path.clone() });
                }
                tracing::debug!(path = %path.display(), "skipping an agent binary that is not static");
                continue;
            }
            let sha256 = hex(&Sha256::digest(&bytes));
            return Ok(AgentBinary { path: path.clone(), bytes: Bytes::from(bytes), sha256 });
        }
        Err(AgentError::NotFound {
            searched: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// True for a 64-bit little-endian ELF executable without an interpreter (PT_INTERP), i.e. one
/// that needs no dynamic loader or libc on the node.
fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o: usize| bytes.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o: usize| bytes.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    if bytes.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff as usize + i * phentsize) != Some(PT_INTERP))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the node had when the controller tried to start the agent.
pub enum Started {
    Running(AgentSession),
    /// The node has no agent, or another one; `arch` is the node's `uname -m`.
    Missing {
        arch: String,
    },
}

/// The line the start script prints instead of starting an agent that is missing or differs.
const MISSING: &str = "GROUNDWORK-AGENT-MISSING";

/// Starts the agent with one command when the node already has this exact binary (the usual,
/// warm case: one SSH channel per host); otherwise reports what must be uploaded.
pub async fn start(session: &NodeSession, agent: &AgentBinary, timeout: Duration) -> Result<Started, AgentError> {
    let script = format!(
        "a={REMOTE_PATH}; if [ \"$(sha256sum < $a 2>/dev/null)\" = \"{sum}  -\" ]; then exec $a serve; fi; \
         echo {MISSING} $(uname -m)",
        sum = agent.sha256
    );
    let mut running = AgentSession::open(session, &script).await?;
    let line = running.read_line(timeout).await?;
    if let Some(arch) = line.strip_prefix(MISSING) {
        running.finish().await;
        return Ok(Started::Missing { arch: crate::sanitize::line(arch.trim()) });
    }
    running.greeted(&line)?;
    Ok(Started::Running(running))
}

/// Starts the agent on the node, uploading it first when it is missing or differs. Returns the
/// running agent and whether it was uploaded.
pub async fn launch(
    session: &NodeSession,
    agent: &AgentBinary,
    uploads: &tokio::sync::Semaphore,
    timeout: Duration,
) -> Result<(AgentSession, bool), AgentError> {
    match start(session, agent, timeout).await? {
        Started::Running(running) => Ok((running, false)),
        Started::Missing { arch } => {
            upload(session, agent, &arch, uploads).await?;
            Ok((AgentSession::start_known(session, timeout).await?, true))
        }
    }
}

/// Puts the agent on the node: written beside its final name, checksum verified, then renamed,
/// so that a node never runs a half-written agent. `uploads` bounds how many hosts receive it at
/// once: each upload in flight holds the binary in SSH window buffers, so this bounds the
/// controller's memory on a cold run.
pub async fn upload(
    session: &NodeSession,
    agent: &AgentBinary,
    arch: &str,
    uploads: &tokio::sync::Semaphore,
) -> Result<(), AgentError> {
    let host = &session.target.name;
    if arch != AGENT_ARCH {
        return Err(AgentError::Architecture { host: host.clone(), arch: arch.to_string() });
    }
    let script = format!(
        "set -e; umask 022; mkdir -p {REMOTE_DIR}; tmp={REMOTE_DIR}/.groundwork-agent.$$; \
         trap 'rm -f \"$tmp\"' EXIT; cat > \"$tmp\"; \
         echo \"{sum}  $tmp\" | sha256sum -c --quiet - >/dev/null; chmod 0755 \"$tmp\"; mv -f \"$tmp\" {REMOTE_PATH}; \
         trap - EXIT",
        sum = agent.sha256
    );
    let _permit =
        uploads.acquire().await.map_err(|e| AgentError::Upload { host: host.clone(), message: e.to_string() })?;
    let out = session.exec_privileged_shared(&script, Some(agent.bytes.clone())).await?;
    if !out.success() {
        let why = out.stderr_text();
        return Err(AgentError::Upload {
            host: host.clone(),
            message: if why.is_empty() { format!("exit status {}", out.status) } else { why },
        });
    }
    Ok(())
}

/// The longest line the agent may send (a facts answer is a few KiB, a diff at most a few MiB).
pub const LINE_LIMIT: usize = 16 * 1024 * 1024;

/// What an agent conversation runs over: an SSH channel, or in tests a pair of queues.
pub trait Wire: Send {
    fn send(&mut self, data: Vec<u8>) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// The next thing that arrived; None once the channel has closed.
    fn recv(&mut self) -> impl Future<Output = Option<Arrived>> + Send;
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

pub enum Arrived {
    Stdout(Bytes),
    Stderr(Bytes),
    Exit(u32),
    Other,
}

impl Wire for russh::Channel<Msg> {
    async fn send(&mut self, data: Vec<u8>) -> Result<(), TransportError> {
        Ok(self.data_bytes(data).await?)
    }
    async fn recv(&mut self) -> Option<Arrived> {
        Some(match self.wait().await? {
            ChannelMsg::Data { data } => Arrived::Stdout(data),
            ChannelMsg::ExtendedData { data, .. } => Arrived::Stderr(data),
            ChannelMsg::ExitStatus { exit_status } => Arrived::Exit(exit_status),
            _ => Arrived::Other,
        })
    }
    async fn close(&mut self) {
        let _ = self.eof().await;
        let _ = russh::Channel::close(self).await;
    }
}

/// Splits what arrives into lines, refusing a line longer than its limit before holding it.
pub struct Lines {
    buffer: Vec<u8>,
    limit: usize,
    /// The first `scanned` bytes of `buffer` hold no line break (searched already).
    scanned: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

impl Lines {
    pub fn new(limit: usize) -> Self {
        Lines { buffer: Vec::new(), limit, scanned: 0 }
    }

    /// The next complete line (without its `\n`), if one has arrived. Each byte is searched
    /// once, however many pieces a long line arrives in.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        let Some(pos) = self.buffer[self.scanned..].iter().position(|b| *b == b'\n') else {
            self.scanned = self.buffer.len();
            return None;
        };
        let mut line: Vec<u8> = self.buffer.drain(..=self.scanned + pos).collect();
        line.pop();
        self.scanned = 0;
        Some(line)
    }

    /// Takes `data` in; refused when the line it continues would pass the limit.
    pub fn push(&mut self, data: &[u8]) -> Result<(), TooLong> {
        // The partial line already held: all of the buffer once `next_line` found no break in it.
        let pending = if self.scanned == self.buffer.len() {
            self.buffer.len()
        } else {
            self.buffer.iter().rposition(|b| *b == b'\n').map_or(self.buffer.len(), |p| self.buffer.len() - p - 1)
        };
        let continues = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
        let after = data.iter().rposition(|b| *b == b'\n').map_or(0, |p| data.len() - p - 1);
        if pending + continues > self.limit || after > self.limit {
            self.buffer = Vec::new();
            self.scanned = 0;
            return Err(TooLong);
        }
        self.buffer.extend_from_slice(data);
        Ok(())
    }
}

/// A running agent on one node.
pub struct AgentSession<W: Wire = russh::Channel<Msg>> {
    host: String,
    wire: W,
    lines: Lines,
    stderr: Vec<u8>,
    next_id: u64,
    /// Set once the conversation went wrong: the session is closed and answers nothing more.
    broken: bool,
    /// The agent's exit status, once sshd has reported it.
    exit: Option<u32>,
    pub hello: Hello,
}

const STDERR_KEPT: usize = 4096;

impl AgentSession {
    /// Starts the agent that is known to be on the node.
    pub async fn start_known(session: &NodeSession, timeout: Duration) -> Result<AgentSession, AgentError> {
        let mut agent = AgentSession::open(session, &format!("{REMOTE_PATH} serve")).await?;
        let line = agent.read_line(timeout).await?;
        agent.greeted(&line)?;
        Ok(agent)
    }

    /// Runs `command` with root rights and keeps its channel.
    async fn open(session: &NodeSession, command: &str) -> Result<AgentSession, AgentError> {
        let channel = session.open_privileged(command).await?;
        Ok(AgentSession::over(session.target.name.clone(), channel))
    }
}

impl<W: Wire> AgentSession<W> {
    pub fn over(host: String, wire: W) -> Self {
        AgentSession {
            host,
            wire,
            lines: Lines::new(LINE_LIMIT),
            stderr: Vec::new(),
            next_id: 1,
            broken: false,
            exit: None,
            hello: Hello { protocol: 0, agent_version: String::new() },
        }
    }

    /// False once a failure closed this session: it must be replaced.
    pub fn usable(&self) -> bool {
        !self.broken
    }

    /// Checks the agent's greeting: the protocol versions must match.
    fn greeted(&mut self, line: &str) -> Result<(), AgentError> {
        let hello: Result<Hello, _> = serde_json::from_str(line);
        let hello = match hello {
            Ok(h) => h,
            Err(e) => {
                let message = format!("sent an unreadable greeting ({e}): {}", shown(line));
                return Err(self.protocol_error(message));
            }
        };
        if hello.protocol != PROTOCOL_VERSION {
            return Err(AgentError::Version {
                host: self.host.clone(),
                agent: hello.protocol,
                controller: PROTOCOL_VERSION,
            });
        }
        self.hello = Hello { agent_version: crate::sanitize::line(&hello.agent_version), ..hello };
        Ok(())
    }

    /// Sends one request and waits for its answer. Any failure but the action's own closes the
    /// session (see [`usable`](Self::usable)).
    pub async fn call(&mut self, action: Action, timeout: Duration) -> Result<Outcome, AgentError> {
        if self.broken {
            return Err(AgentError::Discarded { host: self.host.clone() });
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Err(e) = self.wire.send(encode_line(&Request { id, action }).into_bytes()).await {
            return Err(self.fail(e.into()).await);
        }
        let line = self.read_line(timeout).await?;
        let response = match parse_response(&line) {
            Ok(r) => r,
            Err(e) => {
                let error = self.protocol_error(format!("sent an unreadable answer ({e}): {}", shown(&line)));
                return Err(self.fail(error).await);
            }
        };
        if response.id != id {
            let error = self.protocol_error(format!("answered request {} when {id} was asked", response.id));
            return Err(self.fail(error).await);
        }
        match response.outcome {
            Outcome::Error { message } => Err(AgentError::Action { host: self.host.clone(), message }),
            other => Ok(other),
        }
    }

    /// Closes stdin; the agent exits.
    pub async fn finish(mut self) {
        self.wire.close().await;
    }

    fn protocol_error(&self, message: String) -> AgentError {
        AgentError::Protocol { host: self.host.clone(), message }
    }

    /// Marks the session broken and closes its channel; returns `error` for the caller.
    async fn fail(&mut self, error: AgentError) -> AgentError {
        if !self.broken {
            self.broken = true;
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wire.close()).await;
        }
        error
    }

    async fn read_line(&mut self, timeout: Duration) -> Result<String, AgentError> {
        let seconds = timeout.as_secs();
        let result = match tokio::time::timeout(timeout, self.read_line_inner()).await {
            Ok(r) => r,
            Err(_) => Err(AgentError::Timeout { host: self.host.clone(), seconds }),
        };
        match result {
            Ok(line) => Ok(line),
            Err(e) => Err(self.fail(e).await),
        }
    }

    async fn read_line_inner(&mut self) -> Result<String, AgentError> {
        loop {
            if let Some(line) = self.lines.next_line() {
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            match self.wire.recv().await {
                Some(Arrived::Stdout(data)) => {
                    if self.lines.push(&data).is_err() {
                        return Err(AgentError::LineTooLong { host: self.host.clone(), limit: LINE_LIMIT });
                    }
                }
                Some(Arrived::Stderr(data)) => {
                    self.stderr.extend_from_slice(&data);
                    let excess = self.stderr.len().saturating_sub(STDERR_KEPT);
                    self.stderr.drain(..excess);
                }
                // sshd may report the exit before the last of the output: read on to the close.
                Some(Arrived::Exit(status)) => self.exit = Some(status),
                Some(Arrived::Other) => {}
                None => {
                    let stderr = crate::sanitize::line(String::from_utf8_lossy(&self.stderr).trim());
                    let how = match self.exit {
                        Some(status) => format!("exited with status {status}"),
                        None => "closed the connection".to_string(),
                    };
                    return Err(AgentError::Exited { host: self.host.clone(), message: format!("{how}: {stderr}") });
                }
            }
        }
    }
}

/// The start of an unreadable line, safe to show.
fn shown(line: &str) -> String {
    crate::sanitize::line(&line.chars().take(200).collect::<String>())
}

/// A response with every string cleaned of control characters; one-line fields (summaries,
/// error messages, facts) without line breaks either.
fn parse_response(line: &str) -> Result<Response, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(line)?;
    match value.get_mut("facts") {
        // Facts are shown in tables: one line each.
        Some(facts) => crate::sanitize::json_lines(facts),
        None => crate::sanitize::json(&mut value),
    }
    let mut response: Response = serde_json::from_value(value)?;
    match &mut response.outcome {
        Outcome::Ensured(report) => report.summary = crate::sanitize::line(&report.summary),
        Outcome::EnsuredAll { reports, error } => {
            for report in reports {
                report.summary = crate::sanitize::line(&report.summary);
            }
            if let Some(message) = error {
                *message = crate::sanitize::line(message);
            }
        }
        Outcome::Error { message } => *message = crate::sanitize::line(message),
        Outcome::Facts(_) => {}
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundwork_protocol::Report;

    #[test]
    fn tells_static_from_dynamic_executables() {
        // This test binary is dynamically linked (glibc); /bin/sh on Debian too.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        assert!(!is_static_elf(&[]));
    }

    #[test]
    fn lines_longer_than_the_limit_are_refused_before_they_are_held() {
        let mut lines = Lines::new(10);
        lines.push(b"{\"a\":1}\n{\"b\"").unwrap();
        assert_eq!(lines.next_line().unwrap(), b"{\"a\":1}");
        assert_eq!(lines.next_line(), None);
        lines.push(b":2}\n").unwrap();
        assert_eq!(lines.next_line().unwrap(), b"{\"b\":2}");
        // 6 + 6 bytes of one line: over 10.
        lines.push(b"aaaaaa").unwrap();
        assert_eq!(lines.push(b"bbbbbb"), Err(TooLong));
        assert!(lines.buffer.capacity() <= 16, "nothing beyond the limit is kept");
        // A line ending within the limit, then a too long one in the same chunk.
        let mut lines = Lines::new(10);
        assert_eq!(lines.push(b"short\nlonger than ten"), Err(TooLong));
    }

    /// An in-memory agent: what the controller sends, and a script of what it answers.
    struct Fake {
        incoming: tokio::sync::mpsc::UnboundedReceiver<Arrived>,
        closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Wire for Fake {
        async fn send(&mut self, _: Vec<u8>) -> Result<(), TransportError> {
            Ok(())
        }
        async fn recv(&mut self) -> Option<Arrived> {
            self.incoming.recv().await
        }
        async fn close(&mut self) {
            self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn answer(id: u64, summary: &str) -> Arrived {
        let r =
            Response { id, outcome: Outcome::Ensured(Report { changed: true, summary: summary.into(), diff: None }) };
        Arrived::Stdout(Bytes::from(encode_line(&r)))
    }

    fn facts_request() -> Action {
        Action::Facts
    }

    #[tokio::test]
    async fn a_deadline_closes_the_session_so_a_late_answer_is_never_read() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut agent = AgentSession::over("node-1".into(), Fake { incoming: rx, closed: closed.clone() });

        tx.send(answer(1, "first")).unwrap();
        let ok = agent.call(facts_request(), Duration::from_secs(5)).await.unwrap();
        assert!(matches!(ok, Outcome::Ensured(ref r) if r.summary == "first"));

        // Request 2 gets no answer in time...
        let late = agent.call(facts_request(), Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(late, AgentError::Timeout { .. }), "{late}");
        assert!(closed.load(std::sync::atomic::Ordering::SeqCst), "the channel is closed at the deadline");
        assert!(!agent.usable());
        // ...and its late answer is never taken for the answer to request 3.
        tx.send(answer(2, "late")).unwrap();
        let next = agent.call(facts_request(), Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(next, AgentError::Discarded { .. }), "{next}");
    }

    #[tokio::test]
    async fn answers_are_cleaned_and_bounded() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut agent = AgentSession::over("node-1".into(), Fake { incoming: rx, closed: closed.clone() });
        tx.send(answer(1, "wrote /etc/x\n    worker-9 ok\x1b[2K")).unwrap();
        let Outcome::Ensured(report) = agent.call(facts_request(), Duration::from_secs(5)).await.unwrap() else {
            panic!("not a report")
        };
        assert_eq!(report.summary, "wrote /etc/x     worker-9 ok[2K");

        // A line that never ends: refused at the limit, not held.
        let chunk = Bytes::from(vec![b'x'; 1024 * 1024]);
        for _ in 0..(LINE_LIMIT / chunk.len() + 1) {
            tx.send(Arrived::Stdout(chunk.clone())).unwrap();
        }
        let e = agent.call(facts_request(), Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(e.to_string(), "node-1: the agent sent a line longer than 16 MiB; its channel was closed");
        assert!(closed.load(std::sync::atomic::Ordering::SeqCst));
    }
}
