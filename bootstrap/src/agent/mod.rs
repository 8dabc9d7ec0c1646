//! The controller's side of `groundwork-agent`: finding the static binary, putting it on a node
//! (once: skipped when the node has the same checksum; written to a temporary file, verified and
//! renamed, so a node never runs a half-written agent), and talking to it.

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
    #[error("{host}: the agent did not answer within {seconds} s")]
    Timeout { host: String, seconds: u64 },
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
    /// else where `cargo agent` puts it relative to the controller's target directory.
    pub fn locate(explicit: Option<&Path>) -> Result<AgentBinary, AgentError> {
        let candidates: Vec<PathBuf> = match explicit {
            Some(p) => vec![p.to_path_buf()],
            None => {
                let exe = std::env::current_exe().ok();
                let dir = exe.as_deref().and_then(Path::parent);
                let mut c = Vec::new();
                if let Some(d) = dir {
                    c.push(d.join("groundwork-agent"));
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
        return Ok(Started::Missing { arch: arch.trim().to_string() });
    }
    running.greeted(&line)?;
    Ok(Started::Running(running))
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

/// A running agent on one node.
pub struct AgentSession {
    host: String,
    channel: russh::Channel<Msg>,
    buffer: Vec<u8>,
    stderr: Vec<u8>,
    next_id: u64,
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
        Ok(AgentSession {
            host: session.target.name.clone(),
            channel,
            buffer: Vec::new(),
            stderr: Vec::new(),
            next_id: 1,
            hello: Hello { protocol: 0, agent_version: String::new() },
        })
    }

    /// Checks the agent's greeting: the protocol versions must match.
    fn greeted(&mut self, line: &str) -> Result<(), AgentError> {
        let hello: Hello = serde_json::from_str(line)
            .map_err(|e| self.protocol_error(format!("sent an unreadable greeting ({e}): {line:.200}")))?;
        if hello.protocol != PROTOCOL_VERSION {
            return Err(AgentError::Version {
                host: self.host.clone(),
                agent: hello.protocol,
                controller: PROTOCOL_VERSION,
            });
        }
        self.hello = hello;
        Ok(())
    }

    /// Sends one request and waits for its answer.
    pub async fn call(&mut self, action: Action, timeout: Duration) -> Result<Outcome, AgentError> {
        let id = self.next_id;
        self.next_id += 1;
        self.channel
            .data_bytes(encode_line(&Request { id, action }).into_bytes())
            .await
            .map_err(TransportError::from)?;
        let line = self.read_line(timeout).await?;
        let response: Response = serde_json::from_str(&line)
            .map_err(|e| self.protocol_error(format!("sent an unreadable answer ({e}): {line:.200}")))?;
        if response.id != id {
            return Err(self.protocol_error(format!("answered request {} when {id} was asked", response.id)));
        }
        match response.outcome {
            Outcome::Error { message } => Err(AgentError::Action { host: self.host.clone(), message }),
            other => Ok(other),
        }
    }

    /// Closes stdin; the agent exits.
    pub async fn finish(self) {
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
    }

    fn protocol_error(&self, message: String) -> AgentError {
        AgentError::Protocol { host: self.host.clone(), message }
    }

    async fn read_line(&mut self, timeout: Duration) -> Result<String, AgentError> {
        let seconds = timeout.as_secs();
        match tokio::time::timeout(timeout, self.read_line_inner()).await {
            Ok(r) => r,
            Err(_) => Err(AgentError::Timeout { host: self.host.clone(), seconds }),
        }
    }

    async fn read_line_inner(&mut self) -> Result<String, AgentError> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => self.buffer.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    self.stderr.extend_from_slice(&data);
                    let excess = self.stderr.len().saturating_sub(STDERR_KEPT);
                    self.stderr.drain(..excess);
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    let stderr = String::from_utf8_lossy(&self.stderr).trim().to_string();
                    return Err(self.protocol_error(format!("exited with status {exit_status}: {stderr}")));
                }
                Some(_) => {}
                None => {
                    let stderr = String::from_utf8_lossy(&self.stderr).trim().to_string();
                    return Err(self.protocol_error(format!("closed the connection: {stderr}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_static_elf;

    #[test]
    fn tells_static_from_dynamic_executables() {
        // This test binary is dynamically linked (glibc); /bin/sh on Debian too.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        assert!(!is_static_elf(&[]));
    }
}
