//! An authenticated SSH session on one machine: run a command (optionally with stdin), as the
//! login user or with root rights through sudo, or open a long-running channel for the agent.

use bytes::Bytes;
use russh::ChannelMsg;
use russh::client::{Handle, Msg};

use super::TransportError;
use super::host_keys::Verifier;
use super::target::Target;
use crate::secrets::Secret;

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
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

pub struct NodeSession {
    pub target: Target,
    handle: Handle<Verifier>,
    privilege: Privilege,
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl NodeSession {
    pub(super) fn new(target: Target, handle: Handle<Verifier>) -> Self {
        NodeSession { target, handle, privilege: Privilege::User }
    }

    pub(super) fn into_handle(self) -> Handle<Verifier> {
        self.handle
    }

    pub fn privilege(&self) -> &Privilege {
        &self.privilege
    }

    /// Works out how to get root rights, checking a sudo password before it is relied on.
    pub(super) async fn establish_privilege(&mut self, password: Option<Secret>) -> Result<(), TransportError> {
        let t = &self.target;
        self.privilege = if t.user == "root" {
            Privilege::Root
        } else if !t.sudo {
            Privilege::User
        } else if self.exec("sudo -n true", None).await?.success() {
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
            let out = self.exec("sudo -S -p '' true", Some(&stdin)).await?;
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

    /// Runs `command` through `sh -c` as the login user; `stdin` is written and then closed.
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, TransportError> {
        let parts = stdin.map(|d| vec![Bytes::copy_from_slice(d)]).unwrap_or_default();
        self.exec_parts(command, parts).await
    }

    /// Like [`exec`](Self::exec), with stdin given as shared buffers (no copy of large inputs).
    async fn exec_parts(&self, command: &str, stdin: Vec<Bytes>) -> Result<ExecOutput, TransportError> {
        let mut channel = self.handle.channel_open_session().await?;
        channel.exec(true, command).await?;
        for part in stdin {
            channel.data_bytes(part).await?;
        }
        channel.eof().await?;
        collect(&mut channel).await
    }
}

/// Reads a finished command's output and exit status off its channel.
async fn collect(channel: &mut russh::Channel<Msg>) -> Result<ExecOutput, TransportError> {
    {
        let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    stderr.extend_from_slice(format!("killed by signal {signal_name:?}").as_bytes());
                    status = Some(255);
                }
                _ => {}
            }
        }
        Ok(ExecOutput { status: status.unwrap_or(255), stdout, stderr })
    }
}

impl NodeSession {
    /// The command line and stdin prefix that run `command` with root rights.
    pub fn privileged_command(&self, command: &str) -> (String, Vec<u8>) {
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

    /// Runs `command` with root rights (see [`Privilege`]).
    pub async fn exec_privileged(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, TransportError> {
        self.exec_privileged_shared(command, stdin.map(Bytes::copy_from_slice)).await
    }

    /// Like [`exec_privileged`](Self::exec_privileged) with a shared stdin buffer: a large input
    /// (the agent) sent to many hosts is not copied for each.
    pub async fn exec_privileged_shared(
        &self,
        command: &str,
        stdin: Option<Bytes>,
    ) -> Result<ExecOutput, TransportError> {
        let (line, prefix) = self.privileged_command(command);
        let parts = [(!prefix.is_empty()).then(|| Bytes::from(prefix)), stdin].into_iter().flatten().collect();
        self.exec_parts(&line, parts).await
    }

    /// Like [`exec_privileged`](Self::exec_privileged) with the content of a local file as stdin,
    /// streamed in chunks: a large file is never held in memory whole.
    pub async fn exec_privileged_file(
        &self,
        command: &str,
        file: &std::path::Path,
    ) -> Result<ExecOutput, TransportError> {
        use tokio::io::AsyncReadExt;
        let (line, prefix) = self.privileged_command(command);
        let mut source = tokio::fs::File::open(file)
            .await
            .map_err(|e| TransportError::LocalFile { path: file.to_path_buf(), message: e.to_string() })?;
        let mut channel = self.handle.channel_open_session().await?;
        channel.exec(true, line).await?;
        if !prefix.is_empty() {
            channel.data_bytes(Bytes::from(prefix)).await?;
        }
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = source
                .read(&mut chunk)
                .await
                .map_err(|e| TransportError::LocalFile { path: file.to_path_buf(), message: e.to_string() })?;
            if n == 0 {
                break;
            }
            channel.data(&chunk[..n]).await?;
        }
        channel.eof().await?;
        collect(&mut channel).await
    }

    /// Starts `command` with root rights and returns its channel, for a long conversation
    /// (the agent's JSON lines). The sudo password, if any, has already been written.
    pub async fn open_privileged(&self, command: &str) -> Result<russh::Channel<Msg>, TransportError> {
        let (line, prefix) = self.privileged_command(command);
        let channel = self.handle.channel_open_session().await?;
        channel.exec(true, line).await?;
        if !prefix.is_empty() {
            channel.data_bytes(prefix).await?;
        }
        Ok(channel)
    }

    /// A TCP connection from this node to `host:port` (as the node sees them), carried by this
    /// session (`direct-tcpip`): how the controller reaches a service listening only on the node.
    pub async fn forward(&self, host: &str, port: u16) -> Result<russh::ChannelStream<Msg>, TransportError> {
        let channel = self.handle.channel_open_direct_tcpip(host.to_string(), u32::from(port), "127.0.0.1", 0).await?;
        Ok(channel.into_stream())
    }

    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
