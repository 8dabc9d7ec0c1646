//! One connected node as the phases see it: its facts, its agent (for idempotent tasks) and its
//! SSH session (for the few steps that are commands, such as `kubeadm init`).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use groundwork_protocol::{Action, Ensure, EnsureAll, Facts, Outcome, Report, Task};

use crate::agent::{self, AgentBinary, AgentError, AgentSession};
use crate::transport::{NodeSession, Target, TransportError};

/// Why a step failed, so that the runner knows what to do about it and the report can say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// The connection was lost (and, if the host is reported, could not be reopened).
    Transport,
    /// A command or agent call ran out of its deadline on a connection that still answers.
    Timeout,
    /// The step ran and failed.
    Failed,
    /// The host refused (host key, login, sudo), or broke the protocol or a bound on its input.
    Refused,
}

impl ErrorKind {
    fn of_transport(e: &TransportError) -> ErrorKind {
        if e.is_refusal() {
            ErrorKind::Refused
        } else if e.is_deadline() {
            ErrorKind::Timeout
        } else if e.is_local() {
            ErrorKind::Failed
        } else {
            ErrorKind::Transport
        }
    }

    pub fn of_agent(e: &AgentError) -> ErrorKind {
        match e {
            AgentError::Transport(t) => ErrorKind::of_transport(t),
            AgentError::Timeout { .. } => ErrorKind::Timeout,
            AgentError::Exited { .. } | AgentError::Discarded { .. } => ErrorKind::Transport,
            AgentError::Protocol { .. }
            | AgentError::LineTooLong { .. }
            | AgentError::Version { .. }
            | AgentError::Architecture { .. } => ErrorKind::Refused,
            AgentError::NotFound { .. }
            | AgentError::NotStatic { .. }
            | AgentError::Read { .. }
            | AgentError::Upload { .. }
            | AgentError::Action { .. } => ErrorKind::Failed,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Transport => "connection lost",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Failed => "step failed",
            ErrorKind::Refused => "refused",
        })
    }
}

/// A step that failed on a node: one line that an operator can act on (`.0`), and its kind (`.1`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StepError(pub String, pub ErrorKind);

impl StepError {
    /// A step that ran and failed.
    pub fn new(message: impl Into<String>) -> Self {
        StepError(message.into(), ErrorKind::Failed)
    }

    pub fn kind(&self) -> ErrorKind {
        self.1
    }
}

impl From<AgentError> for StepError {
    fn from(e: AgentError) -> Self {
        StepError(e.to_string(), ErrorKind::of_agent(&e))
    }
}
impl From<TransportError> for StepError {
    fn from(e: TransportError) -> Self {
        StepError(e.to_string(), ErrorKind::of_transport(&e))
    }
}
impl From<crate::playbooks::TemplateError> for StepError {
    fn from(e: crate::playbooks::TemplateError) -> Self {
        StepError::new(e.to_string())
    }
}

/// One change a phase made (or, in a plan, would make) on a node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Change {
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Change {
    pub fn new(summary: impl Into<String>) -> Self {
        Change { summary: summary.into(), diff: None }
    }
}

/// What a node needs to start its agent again after its session was lost or closed.
#[derive(Clone)]
pub struct AgentSource {
    pub binary: Arc<AgentBinary>,
    /// Bounds the uploads in flight (see `agent::upload`).
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// How long the agent may take to greet.
    pub start_timeout: Duration,
}

pub struct Node {
    pub target: Target,
    pub facts: Facts,
    pub session: NodeSession,
    /// None, or closed after a failure: started again by the next call.
    agent: tokio::sync::Mutex<Option<AgentSession>>,
    source: AgentSource,
    dry_run: bool,
    timeout: Duration,
    notes: std::sync::Mutex<Vec<String>>,
}

/// Packages and image imports can take minutes; everything else is quick.
const SLOW_TASK: Duration = Duration::from_secs(900);
/// Shell steps known to take minutes (by the name the phase gives them); the others get the
/// session's default deadline.
const SLOW_STEPS: &[&str] = &["kubeadm init", "kubeadm join", "kubeadm upgrade", "drain"];
const SLOW_STEP: Duration = Duration::from_secs(900);
/// How many times a step is run again after its connection was lost and reopened.
const STEP_RETRIES: u32 = 2;

impl Node {
    pub fn new(
        target: Target,
        facts: Facts,
        session: NodeSession,
        agent: AgentSession,
        source: AgentSource,
        dry_run: bool,
    ) -> Node {
        Node {
            target,
            facts,
            session,
            agent: tokio::sync::Mutex::new(Some(agent)),
            source,
            dry_run,
            timeout: Duration::from_secs(120),
            notes: Default::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.target.name
    }

    pub fn address(&self) -> &str {
        &self.target.address
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Something the operator must read in this phase's report although nothing failed.
    pub fn note(&self, text: impl Into<String>) {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(text.into());
    }

    /// The notes of the phase that just ran on this node (the runner collects them).
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `step` (idempotent, like every phase) and, when it failed because the connection was
    /// lost, reopens the session and the agent and runs it again, at most [`STEP_RETRIES`]
    /// times. A deadline on a connection that still answers is not retried: the step is slow,
    /// and running it twice would not help.
    pub async fn with_recovery<T, F, Fut>(&self, mut step: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StepError>>,
    {
        let mut retries = 0;
        loop {
            let error = match step().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let lost = match error.kind() {
                ErrorKind::Transport => true,
                ErrorKind::Timeout => !self.session.responsive().await,
                ErrorKind::Failed | ErrorKind::Refused => false,
            };
            if !lost || retries == STEP_RETRIES {
                return Err(error);
            }
            retries += 1;
            tracing::warn!(host = %self.name(), error = %error, retries, "connection lost; reopening and running the step again");
            if let Err(why) = self.recover().await {
                return Err(StepError(format!("{error}; reconnecting failed: {why}"), ErrorKind::Transport));
            }
        }
    }

    /// A fresh session (unless the current one answers) and a fresh agent.
    async fn recover(&self) -> Result<(), StepError> {
        if !self.session.responsive().await {
            self.session.reopen().await?;
        }
        let mut slot = self.agent.lock().await;
        if let Some(old) = slot.take() {
            old.finish().await;
        }
        *slot = Some(self.start_agent().await?);
        Ok(())
    }

    async fn start_agent(&self) -> Result<AgentSession, AgentError> {
        let s = &self.source;
        let (running, uploaded) = agent::launch(&self.session, &s.binary, &s.uploads, s.start_timeout).await?;
        tracing::debug!(host = %self.name(), uploaded, "agent restarted");
        Ok(running)
    }

    /// Asks the agent to make `task` so (or, in a dry run, whether it would change anything).
    /// An agent closed by an earlier failure is started again first.
    pub async fn ensure(&self, task: Task) -> Result<Report, StepError> {
        let timeout = match task {
            Task::Packages { .. } | Task::ImportImages { .. } => SLOW_TASK,
            _ => self.timeout,
        };
        let mut slot = self.agent.lock().await;
        let agent = match slot.take() {
            Some(a) if a.usable() => slot.insert(a),
            _ => slot.insert(self.start_agent().await?),
        };
        match agent.call(Action::Ensure(Ensure { dry_run: self.dry_run, task }), timeout).await? {
            Outcome::Ensured(report) => {
                self.log_step(&report);
                Ok(report)
            }
            _ => Err(StepError(
                format!("{}: the agent answered a task with something else", self.name()),
                ErrorKind::Refused,
            )),
        }
    }

    /// One agent task's result in the log (its summary, never its content or diff).
    fn log_step(&self, report: &Report) {
        tracing::debug!(
            host = %self.name(),
            step = %report.summary,
            changed = report.changed,
            dry_run = self.dry_run,
            "task"
        );
    }

    /// Runs every task in order, in one round trip to the agent, collecting the changes. Stops at
    /// the first failure.
    pub async fn ensure_all(&self, tasks: Vec<Task>) -> Result<Vec<Change>, StepError> {
        Ok(self
            .ensure_batch(tasks)
            .await?
            .into_iter()
            .filter(|r| r.changed)
            .map(|r| Change { summary: r.summary, diff: r.diff })
            .collect())
    }

    /// Every task's report, in order (one request to the agent).
    pub async fn ensure_batch(&self, tasks: Vec<Task>) -> Result<Vec<Report>, StepError> {
        match tasks.len() {
            0 => return Ok(vec![]),
            1 => return Ok(vec![self.ensure(tasks.into_iter().next().expect("one task")).await?]),
            _ => {}
        }
        let timeout = if tasks.iter().any(|t| matches!(t, Task::Packages { .. } | Task::ImportImages { .. })) {
            SLOW_TASK
        } else {
            self.timeout
        };
        let mut slot = self.agent.lock().await;
        let agent = match slot.take() {
            Some(a) if a.usable() => slot.insert(a),
            _ => slot.insert(self.start_agent().await?),
        };
        match agent.call(Action::EnsureAll(EnsureAll { dry_run: self.dry_run, tasks }), timeout).await? {
            Outcome::EnsuredAll { reports, error: None } => {
                reports.iter().for_each(|r| self.log_step(r));
                Ok(reports)
            }
            Outcome::EnsuredAll { error: Some(message), .. } => {
                Err(StepError::new(format!("{}: {message}", self.name())))
            }
            _ => Err(StepError::new(format!("{}: the agent answered a batch with something else", self.name()))),
        }
    }

    /// Files a service reads, then the service enabled and running, restarted when any of the
    /// files changed in this run.
    pub async fn ensure_service_with(&self, service: &str, files: Vec<Task>) -> Result<Vec<Change>, StepError> {
        let mut changes = self.ensure_all(files).await?;
        let restart = !changes.is_empty();
        changes.extend(
            self.ensure_all(vec![Task::Service { name: service.into(), enabled: true, running: true, restart }])
                .await?,
        );
        Ok(changes)
    }

    /// A script a systemd timer runs (a backup): its directory (0700), the script, the oneshot
    /// service and the timer, enabled and running, restarted when any of them changed.
    pub async fn ensure_timed_job(&self, job: TimedJob<'_>) -> Result<Vec<Change>, StepError> {
        let mut changes = self
            .ensure_all(vec![
                Task::Directory { path: job.directory.to_string(), mode: 0o700 },
                file(job.script_path, job.script, 0o755),
                file(&format!("/etc/systemd/system/{}.service", job.unit), job.service, 0o644),
            ])
            .await?;
        let timer = vec![file(&format!("/etc/systemd/system/{}.timer", job.unit), job.timer, 0o644)];
        changes.extend(self.ensure_service_with(&format!("{}.timer", job.unit), timer).await?);
        Ok(changes)
    }

    /// Runs a shell command with root rights; a non-zero exit is an error carrying the tail of
    /// its output. `what` names the step for the operator ("kubeadm init").
    pub async fn sh(&self, what: &str, command: &str) -> Result<String, StepError> {
        let deadline = if SLOW_STEPS.iter().any(|s| what.starts_with(s)) {
            SLOW_STEP
        } else {
            crate::transport::session::DEFAULT_DEADLINE
        };
        let started = std::time::Instant::now();
        let out = self.session.exec_privileged_within(command, None, deadline).await?;
        // The step's name, not its command: the log says what was done, the command is in the code.
        tracing::debug!(
            host = %self.name(),
            step = what,
            exit = out.status,
            took_ms = started.elapsed().as_millis() as u64,
            "command"
        );
        if out.success() {
            return Ok(out.stdout_text());
        }
        Err(StepError::new(format!(
            "{}: {what} failed (exit {}): {}",
            self.name(),
            out.status,
            tail(&format!("{}\n{}", out.stdout_text(), out.stderr_text()), 15)
        )))
    }

    /// Runs a command whose exit status is the answer (a check), never an error.
    pub async fn test(&self, command: &str) -> Result<bool, StepError> {
        Ok(self.session.exec_privileged(command, None).await?.success())
    }

    /// Puts controller files on the node unless they are already there with their SHA-256: one
    /// agent request compares them all (the agent remembers each file's checksum with its size
    /// and mtime, so a re-run hashes nothing), then each missing one is streamed (image archives
    /// are hundreds of MB) to a temporary name and renamed once its checksum is verified.
    /// Returns, per file, whether it was (in a plan: would be) uploaded.
    pub async fn upload_all(&self, files: &[(&Path, String, String)]) -> Result<Vec<bool>, StepError> {
        let checks =
            files.iter().map(|(_, remote, sha256)| Task::Uploaded { path: remote.clone(), sha256: sha256.clone() });
        let missing: Vec<bool> = self.ensure_batch(checks.collect()).await?.into_iter().map(|r| r.changed).collect();
        if !self.dry_run {
            for ((local, remote, sha256), _) in files.iter().zip(&missing).filter(|(_, m)| **m) {
                self.upload_now(local, remote, sha256).await?;
            }
        }
        Ok(missing)
    }

    async fn upload_now(&self, local: &Path, remote: &str, sha256: &str) -> Result<(), StepError> {
        let q = crate::transport::shell_quote(remote);
        let tmp = crate::transport::shell_quote(&format!("{remote}.part"));
        let script = format!(
            "set -e; mkdir -p \"$(dirname {q})\"; cat > {tmp}; echo '{sha256}  '{tmp} | sha256sum -c --status \
             || {{ rm -f {tmp}; echo 'checksum mismatch after upload' >&2; exit 1; }}; mv -f {tmp} {q}"
        );
        let out = self.session.exec_privileged_file(&script, local).await?;
        if !out.success() {
            return Err(StepError::new(format!(
                "{}: uploading {} to {remote} failed: {}",
                self.name(),
                local.display(),
                tail(&out.stderr_text(), 5)
            )));
        }
        Ok(())
    }
}

/// A root-owned file with this content and mode.
/// What [`Node::ensure_timed_job`] writes.
pub struct TimedJob<'a> {
    pub directory: &'a str,
    pub script_path: &'a str,
    pub script: String,
    /// The unit's name, without `.service` / `.timer`.
    pub unit: &'a str,
    pub service: String,
    pub timer: String,
}

pub fn file(path: &str, content: String, mode: u32) -> Task {
    Task::File { path: path.into(), content, mode, owner: "root".into(), group: "root".into() }
}

/// Reports quote the end of a command's output: see `crate::sanitize::tail`.
pub use crate::sanitize::tail;
