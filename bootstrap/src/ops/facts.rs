//! `facts`: reach every host (and the bastion) in parallel, put the agent there once, and ask it
//! what the host is. One host that cannot be reached is reported with the reason; the others go on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use groundwork_protocol::{Action, Facts, Outcome};
use serde::Serialize;

use crate::agent::{self, AgentBinary, AgentError, AgentSession};
use crate::inventory::LoadedInventory;
use crate::transport::{NodeSession, Target, Transport, TransportError, TransportOptions, target};

/// What happens to one host, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connecting,
    Uploading,
    Gathering,
    Done,
    Failed,
}

/// Receives progress; the command layer draws it, tests ignore it.
pub trait Progress: Send + Sync {
    fn stage(&self, host: &str, stage: Stage);
}

pub struct NoProgress;
impl Progress for NoProgress {
    fn stage(&self, _: &str, _: Stage) {}
}

#[derive(Debug, Clone)]
pub struct FactsOptions {
    pub transport: TransportOptions,
    /// The agent binary (None: found next to the controller; see `AgentBinary::locate`).
    pub agent: Option<PathBuf>,
    /// How long one agent request may take.
    pub agent_timeout: Duration,
}

/// One host's facts, as measured.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HostFacts {
    pub facts: Facts,
    /// Host clock minus controller clock, in ms, corrected for half the round trip.
    pub clock_skew_ms: i64,
    /// Whether the agent had to be uploaded this time.
    pub agent_uploaded: bool,
    pub elapsed_ms: u64,
}

/// One host's outcome: its facts, or why there are none.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    pub roles: Vec<String>,
    #[serde(flatten)]
    pub result: HostResult,
}

/// In JSON a host carries either `facts` (with `clock_skew_ms`, `agent_uploaded`, `elapsed_ms`) or `error`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum HostResult {
    Facts(Box<HostFacts>),
    /// Not reached, or reached but the agent failed; `error` names the host and says why.
    Failed {
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot reach the bastion: {0}")]
    Bastion(TransportError),
    /// A key that cannot be loaded or decrypted: nothing was attempted.
    #[error(transparent)]
    Credentials(TransportError),
}

/// Agent uploads in flight at once (see `ensure_uploaded`).
const CONCURRENT_UPLOADS: usize = 16;

pub fn transport_options(loaded: &LoadedInventory, accept_new: bool) -> TransportOptions {
    TransportOptions {
        known_hosts: target::known_hosts_file(loaded),
        accept_new,
        connect_timeout: Duration::from_secs(20),
        max_handshakes: 32,
        attempts: 3,
        reconnect_budget: Duration::from_secs(90),
        base_dir: loaded.base_dir.clone(),
    }
}

/// Gathers facts from the bastion (first) and every host, in parallel.
pub async fn gather(
    loaded: &LoadedInventory,
    opts: &FactsOptions,
    progress: Arc<dyn Progress>,
) -> Result<Vec<HostReport>, FactsError> {
    let agent = Arc::new(AgentBinary::locate(opts.agent.as_deref())?);
    let bastion = target::bastion(loaded);
    let hosts = target::hosts(loaded);
    let transport = match Transport::connect(bastion.as_ref(), &hosts, opts.transport.clone()).await {
        Ok(t) => Arc::new(t),
        Err(e @ TransportError::Key { .. }) => return Err(FactsError::Credentials(e)),
        Err(e) => return Err(FactsError::Bastion(e)),
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_UPLOADS));
    let mut targets: Vec<(Target, bool)> = bastion.into_iter().map(|b| (b, true)).collect();
    targets.extend(hosts.into_iter().map(|t| (t, false)));

    let tasks = targets.into_iter().map(|(t, is_bastion)| {
        let (transport, agent, progress, opts) = (transport.clone(), agent.clone(), progress.clone(), opts.clone());
        let uploads = uploads.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = host_facts(&transport, &t, is_bastion, &agent, &uploads, &opts, progress.as_ref()).await;
            progress.stage(&t.name, if result.is_ok() { Stage::Done } else { Stage::Failed });
            let roles = if is_bastion {
                vec!["bastion".to_string()]
            } else {
                t.roles.iter().map(|r| r.as_str().to_string()).collect()
            };
            HostReport {
                name: t.name.clone(),
                address: t.address.clone(),
                roles,
                result: match result {
                    Ok(mut f) => {
                        f.elapsed_ms = started.elapsed().as_millis() as u64;
                        HostResult::Facts(Box::new(f))
                    }
                    // One line per host, whatever the far side printed.
                    Err(e) => {
                        HostResult::Failed { error: e.to_string().split_whitespace().collect::<Vec<_>>().join(" ") }
                    }
                },
            }
        })
    });
    let mut reports = Vec::new();
    for joined in futures::future::join_all(tasks).await {
        match joined {
            Ok(r) => reports.push(r),
            Err(e) => tracing::error!("a host task panicked: {e}"),
        }
    }
    if let Ok(t) = Arc::try_unwrap(transport) {
        t.close().await;
    }
    Ok(reports)
}

async fn host_facts(
    transport: &Transport,
    t: &Target,
    is_bastion: bool,
    agent: &AgentBinary,
    uploads: &tokio::sync::Semaphore,
    opts: &FactsOptions,
    progress: &dyn Progress,
) -> Result<HostFacts, AgentError> {
    let start = Instant::now();
    let (session, mut running, uploaded) =
        connect_agent(transport, t, is_bastion, agent, uploads, opts, progress).await?;
    let (facts, clock_skew_ms) = ask_facts(&mut running, t, opts, progress).await?;
    running.finish().await;
    session.close().await;
    tracing::debug!(host = %t.name, done_ms = start.elapsed().as_millis() as u64, uploaded, "host timings");
    Ok(HostFacts { facts, clock_skew_ms, agent_uploaded: uploaded, elapsed_ms: 0 })
}

/// Logs in to `t` and starts the agent there, uploading it first when it is missing or differs.
/// Returns the session, the running agent, and whether it was uploaded.
pub async fn connect_agent(
    transport: &Transport,
    t: &Target,
    is_bastion: bool,
    agent: &AgentBinary,
    uploads: &tokio::sync::Semaphore,
    opts: &FactsOptions,
    progress: &dyn Progress,
) -> Result<(NodeSession, AgentSession, bool), AgentError> {
    progress.stage(&t.name, Stage::Connecting);
    let session = if is_bastion { transport.open_bastion(t).await? } else { transport.open(t).await? };
    progress.stage(&t.name, Stage::Uploading);
    let (running, uploaded) = agent::launch(&session, agent, uploads, opts.agent_timeout).await?;
    Ok((session, running, uploaded))
}

/// Asks a running agent for its host's facts; returns them with the host's clock offset.
pub async fn ask_facts(
    running: &mut AgentSession,
    t: &Target,
    opts: &FactsOptions,
    progress: &dyn Progress,
) -> Result<(Facts, i64), AgentError> {
    progress.stage(&t.name, Stage::Gathering);
    let sent = now_ms();
    let outcome = running.call(Action::Facts, opts.agent_timeout).await?;
    let received = now_ms();
    let Outcome::Facts(facts) = outcome else {
        return Err(AgentError::Protocol {
            host: t.name.clone(),
            message: "answered facts with something else".into(),
        });
    };
    // NTP's offset: the request arrived at finished - gather_ms by the host's clock.
    let arrived = facts.time_unix_ms - facts.gather_ms as i64;
    let clock_skew_ms = ((arrived - sent) + (facts.time_unix_ms - received)) / 2;
    Ok((*facts, clock_skew_ms))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
