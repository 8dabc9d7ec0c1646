//! `apply` and `plan`: connect to every host, learn its facts, refuse to go on when the baseline
//! check fails, then run the phases in order, each on its hosts in parallel. `plan` is the same
//! run with every phase in dry-run mode: nothing on a host or in the state directory changes.
//!
//! A host that fails drops out of the later phases and the others go on; a failure in a critical
//! phase (PKI, etcd, init) stops the run after that phase. The journal records every host's
//! outcome per phase as it happens, so an interrupted run says how far it came and a re-run
//! resumes: finished work is verified by the phases' idempotent checks, not redone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::bundle_trust::{BundleTrust, BundleTrustError};
use super::check::{CheckReport, CheckSettings, evaluate};
use super::facts::{self, FactsOptions, HostFacts, HostReport, HostResult, NoProgress, Progress};
use super::interrupt::Stop;
use super::lease::{ClusterLease, LeaseError};
use crate::agent::{AgentBinary, AgentError};
use crate::inventory::LoadedInventory;
use crate::phases::{self, AgentSource, Change, Cluster, ErrorKind, Node};
use crate::state::{ClusterLock, Journal, LockError, LockHolder, StateDir, journal};
use crate::transport::{Transport, TransportError, target};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub facts: FactsOptions,
    /// `plan`: report what would change, change nothing.
    pub dry_run: bool,
    /// Run only these phases (connect and facts always run).
    pub only: Vec<String>,
    pub skip: Vec<String>,
    pub check: CheckSettings,
    pub workflow: Workflow,
    /// Go on with a bundle whose signature is missing or not good (`--allow-unsigned-bundle`);
    /// the report says so. Its files' sums are checked all the same.
    pub allow_unsigned_bundle: bool,
}

/// Which run this is: apply's phases, or an upgrade's (same runner, locks, journal and plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Apply,
    Upgrade {
        /// How long draining one node may take.
        drain_timeout: std::time::Duration,
    },
}

impl Workflow {
    /// The command, as the lock and the lease name their holder.
    pub fn command(self) -> &'static str {
        match self {
            Workflow::Apply => "groundwork apply",
            Workflow::Upgrade { .. } => "groundwork upgrade",
        }
    }
    fn phases(self) -> &'static [phases::Phase] {
        match self {
            Workflow::Apply => phases::all(),
            Workflow::Upgrade { .. } => phases::upgrade::phases(),
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum HostOutcome {
    /// Done; `changes` lists what was changed (empty: it already was as wanted).
    Ok {
        changes: Vec<Change>,
        /// What the operator must know though nothing failed (e.g. "configured, not logged in:
        /// the kernel lacks iSCSI"): said on every run, never silently skipped.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    Failed {
        error: String,
        /// transport, timeout, failed or refused (see `phases::ErrorKind`).
        kind: ErrorKind,
    },
    /// Not run on this host, and why (it failed earlier, or is not connected).
    Skipped { reason: String },
}

/// One host's outcome of one phase, for the log (`--log-file`): what the report says, as it happens.
pub fn log_outcome(phase: &str, host: &str, outcome: &HostOutcome, took_ms: u64) {
    match outcome {
        HostOutcome::Ok { changes, notes } => tracing::info!(
            phase,
            host,
            outcome = "ok",
            changes = changes.len(),
            changed = ?changes.iter().map(|c| c.summary.as_str()).collect::<Vec<_>>(),
            notes = ?notes,
            took_ms,
            "phase finished"
        ),
        HostOutcome::Failed { error, kind } => {
            tracing::warn!(phase, host, outcome = "failed", kind = %kind, error = %error, took_ms, "phase failed")
        }
        HostOutcome::Skipped { reason } => {
            tracing::info!(phase, host, outcome = "skipped", reason = %reason, took_ms, "phase skipped")
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HostPhase {
    pub host: String,
    #[serde(flatten)]
    pub outcome: HostOutcome,
    pub took_ms: u64,
    /// The journal said this host had finished this phase in an earlier run.
    pub done_before: bool,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PhaseReport {
    pub name: String,
    pub hosts: Vec<HostPhase>,
    pub took_ms: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ApplyReport {
    pub cluster: String,
    pub dry_run: bool,
    pub phases: Vec<PhaseReport>,
    /// Why the run stopped before the last phase, if it did.
    pub stopped: Option<String>,
    /// The signal that interrupted the run, if one did (the exit code is then 130).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    pub check: Option<CheckReport>,
    /// The offline bundle, and who signed it (or why its signature was not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleTrust>,
    pub took_ms: u64,
    /// The admin kubeconfig, once the control plane exists.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// How to reach the API server it names from this machine (an SSH tunnel through the bastion).
    pub kubeconfig_tunnel: Option<String>,
    /// The handoff's NEXT-STEPS.md, once the handoff phase has written it.
    pub next_steps: Option<std::path::PathBuf>,
    /// Hosts `node remove` took out that the inventory still lists: this run joins them again
    /// (host, when it was removed, seconds since the epoch).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejoining: Vec<(String, i64)>,
}

impl ApplyReport {
    pub fn failed_hosts(&self) -> BTreeSet<String> {
        self.phases
            .iter()
            .flat_map(|p| p.hosts.iter())
            .filter(|h| matches!(h.outcome, HostOutcome::Failed { .. }))
            .map(|h| h.host.clone())
            .collect()
    }
    pub fn change_count(&self) -> usize {
        self.phases
            .iter()
            .flat_map(|p| p.hosts.iter())
            .map(|h| if let HostOutcome::Ok { changes, .. } = &h.outcome { changes.len() } else { 0 })
            .sum()
    }
    pub fn succeeded(&self) -> bool {
        self.stopped.is_none() && self.failed_hosts().is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("cannot reach the bastion: {0}")]
    Bastion(TransportError),
    #[error(transparent)]
    Credentials(TransportError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("cannot create the state directory {}: {source}", path.display())]
    State { path: std::path::PathBuf, source: std::io::Error },
    /// Printed with its cause (`{:#}`): the bundle's own error says what is wrong with it.
    #[error("the offline bundle is refused before anything was changed")]
    Bundle(#[from] BundleTrustError),
    #[error("unknown phase `{name}`; phases: {}", phases::names().join(", "))]
    UnknownPhase { name: String },
}

/// What the command layer shows while a run goes on.
pub trait ApplyProgress: Progress {
    fn phase_started(&self, name: &str, about: &str, hosts: usize);
    fn host_finished(&self, phase: &str, host: &str, outcome: &HostOutcome);
    fn phase_finished(&self, report: &PhaseReport);
}

impl ApplyProgress for NoProgress {
    fn phase_started(&self, _: &str, _: &str, _: usize) {}
    fn host_finished(&self, _: &str, _: &str, _: &HostOutcome) {}
    fn phase_finished(&self, _: &PhaseReport) {}
}

/// Checks `--only` and `--skip-phases` names before anything is touched.
pub fn check_phase_names(opts: &ApplyOptions) -> Result<(), ApplyError> {
    let known: Vec<&str> = match opts.workflow {
        // connect, facts and check (the runner's own) and handoff too.
        Workflow::Apply => phases::names(),
        Workflow::Upgrade { .. } => opts.workflow.phases().iter().map(|p| p.name).collect(),
    };
    for name in opts.only.iter().chain(&opts.skip) {
        if !known.contains(&name.as_str()) {
            return Err(ApplyError::UnknownPhase { name: name.clone() });
        }
    }
    Ok(())
}

fn selected(opts: &ApplyOptions, name: &str) -> bool {
    !opts.skip.iter().any(|s| s == name) && (opts.only.is_empty() || opts.only.iter().any(|s| s == name))
}

pub async fn apply(
    loaded: &LoadedInventory,
    opts: &ApplyOptions,
    progress: Arc<dyn ApplyProgress>,
    stop: Stop,
) -> Result<ApplyReport, ApplyError> {
    check_phase_names(opts)?;
    let started = Instant::now();
    let inv = &loaded.inventory;
    let state = StateDir::for_cluster(&loaded.base_dir, &inv.cluster.name);
    // A plan takes no lock and writes nothing; an apply holds the lock until it returns.
    let _lock = if opts.dry_run {
        None
    } else {
        state.create().map_err(|source| ApplyError::State { path: state.root().to_path_buf(), source })?;
        Some(ClusterLock::acquire(&state.lock_file(), opts.workflow.command())?)
    };
    let journal = if opts.dry_run { None } else { Some(std::sync::Mutex::new(Journal::load(&state.journal_file())?)) };
    let mut report = ApplyReport {
        cluster: inv.cluster.name.clone(),
        dry_run: opts.dry_run,
        phases: vec![],
        stopped: None,
        interrupted: None,
        check: None,
        bundle: None,
        took_ms: 0,
        kubeconfig: None,
        kubeconfig_tunnel: None,
        next_steps: None,
        rejoining: crate::state::removed::load(&state)
            .into_iter()
            .filter(|(h, _)| inv.hosts.iter().any(|i| &i.name == h))
            .collect(),
    };

    // The bundle, before any host is touched: who made it (signature), and every file's sum.
    let bundle = match super::bundle_trust::check(loaded, state.root(), opts.allow_unsigned_bundle, !opts.dry_run)? {
        Some((bundle, trust)) => {
            report.bundle = Some(trust);
            Some(bundle)
        }
        None => None,
    };

    // connect + facts
    progress.phase_started("connect", "log in through the bastion, start the agent, gather facts", inv.hosts.len());
    let phase_start = Instant::now();
    // A stop asked while logging in ends the run there: nothing has changed yet.
    let (transport, source, connected) = tokio::select! {
        connected = connect_all(loaded, opts, progress.clone()) => connected?,
        _ = stop.asked() => {
            report.interrupted = stop.requested();
            report.stopped = Some("interrupted while connecting: nothing was changed".into());
            report.took_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
    };
    let mut connect = PhaseReport { name: "connect".into(), hosts: vec![], took_ms: 0 };
    let mut nodes = BTreeMap::new();
    let mut fact_reports = Vec::new();
    for (t, result, took) in connected {
        let outcome = match result {
            Ok((session, running, facts, skew)) => {
                fact_reports.push(HostReport {
                    name: t.name.clone(),
                    address: t.address.clone(),
                    roles: t.roles.iter().map(|r| r.as_str().to_string()).collect(),
                    result: HostResult::Facts(Box::new(HostFacts {
                        facts: facts.clone(),
                        clock_skew_ms: skew,
                        agent_uploaded: false,
                        elapsed_ms: took,
                    })),
                });
                let node = Node::new(t.clone(), facts, session, running, source.clone(), opts.dry_run);
                nodes.insert(t.name.clone(), Arc::new(node));
                HostOutcome::Ok { changes: vec![], notes: vec![] }
            }
            Err(e) => {
                let error = one_line(&e.to_string());
                fact_reports.push(HostReport {
                    name: t.name.clone(),
                    address: t.address.clone(),
                    roles: t.roles.iter().map(|r| r.as_str().to_string()).collect(),
                    result: HostResult::Failed { error: error.clone() },
                });
                HostOutcome::Failed { error, kind: ErrorKind::of_agent(&e) }
            }
        };
        log_outcome("connect", &t.name, &outcome, took);
        progress.host_finished("connect", &t.name, &outcome);
        connect.hosts.push(HostPhase { host: t.name.clone(), outcome, took_ms: took, done_before: false });
    }
    connect.took_ms = phase_start.elapsed().as_millis() as u64;
    progress.phase_finished(&connect);
    report.phases.push(connect);

    // The cluster-wide lease, on the masters themselves: another controller is refused here,
    // before anything on a host changes.
    let lease = if opts.dry_run {
        None
    } else {
        match take_lease(inv, &nodes, opts.workflow.command()).await {
            Ok(lease) => lease,
            Err(e) => {
                finish(transport, nodes).await;
                return Err(e.into());
            }
        }
    };

    // check: refuse to touch a cluster whose hosts fall short.
    if opts.workflow == Workflow::Apply && selected(opts, "check") {
        let check = evaluate(inv, &fact_reports, &opts.check);
        let failed = !check.passed();
        report.check = Some(check);
        if failed {
            report.stopped = Some(
                "the baseline check failed (see the report above; `groundwork check -i INVENTORY` shows it alone): nothing was changed".into(),
            );
            release(lease).await;
            finish(transport, nodes).await;
            report.took_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
    }

    let cluster = Cluster {
        inventory: inv.clone(),
        state: state.clone(),
        dry_run: opts.dry_run,
        nodes,
        base_dir: loaded.base_dir.clone(),
        bundle,
        shared: Default::default(),
        drain_timeout: match opts.workflow {
            Workflow::Upgrade { drain_timeout } => drain_timeout,
            Workflow::Apply => std::time::Duration::from_secs(300),
        },
    };
    // Hosts out of the run, with the phase that put them out.
    let out: BTreeMap<String, String> = report.phases[0]
        .hosts
        .iter()
        .filter(|h| matches!(h.outcome, HostOutcome::Failed { .. }))
        .map(|h| (h.host.clone(), "connect".to_string()))
        .collect();

    let selected_phases: Vec<&'static phases::Phase> =
        // The identity check runs whatever --only/--skip-phases say: nothing writes before it.
        opts.workflow.phases().iter().filter(|p| selected(opts, p.name) || p.name == phases::identity::NAME).collect();
    let finished = super::pipeline::Run {
        cluster: &cluster,
        phases: selected_phases,
        out,
        journal: journal.as_ref(),
        progress: progress.as_ref(),
        stop: &stop,
    }
    .go()
    .await;
    if let Some(e) = finished.journal_error {
        release(lease).await;
        finish(transport, cluster.nodes).await;
        return Err(e.into());
    }
    report.phases.extend(finished.phases);
    report.stopped = finished.stopped;
    let identity_failed = report.phases.iter().any(|p| {
        p.name == phases::identity::NAME && p.hosts.iter().any(|h| matches!(h.outcome, HostOutcome::Failed { .. }))
    });
    if identity_failed {
        report.stopped =
            Some("this state directory does not match the cluster (see above): nothing was changed".into());
    }
    report.interrupted = stop.requested();
    if let Some(why) = &report.interrupted {
        report.stopped = Some(format!(
            "interrupted ({why}): no step was started after it; the journal records every step that finished, \
             and the next apply verifies those and goes on from there"
        ));
    }
    if report.stopped.is_none() && opts.workflow == Workflow::Apply && selected(opts, HANDOFF) {
        let phase = handoff_phase(loaded, opts.dry_run, progress.as_ref());
        let next_steps = super::handoff::output_dir(loaded).join("NEXT-STEPS.md");
        if !opts.dry_run
            && phase.hosts.iter().all(|h| matches!(h.outcome, HostOutcome::Ok { .. }))
            && next_steps.exists()
        {
            report.next_steps = Some(next_steps);
        }
        report.phases.push(phase);
    }
    let kubeconfig = state.kubeconfig_file();
    if kubeconfig.exists() {
        report.kubeconfig = Some(kubeconfig);
        report.kubeconfig_tunnel = tunnel_hint(loaded, &cluster);
    }
    if !opts.dry_run && opts.workflow == Workflow::Apply && report.succeeded() && !report.rejoining.is_empty() {
        // Members again: the record has said what it had to.
        let joined = report.rejoining.iter().map(|(h, _)| h.as_str());
        if let Err(e) = crate::state::removed::forget(&state, joined) {
            tracing::warn!("could not update the record of removed hosts: {e}");
        }
    }
    release(lease).await;
    finish(transport, cluster.nodes).await;
    report.took_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The lease on the connected masters, needing a majority of the inventory's masters. An
/// inventory without masters (storage or database hosts alone) has nothing to lease on: the
/// controller's lock file is then the only lock.
async fn take_lease(
    inv: &crate::inventory::Inventory,
    nodes: &BTreeMap<String, Arc<Node>>,
    command: &str,
) -> Result<Option<ClusterLease>, LeaseError> {
    let masters: Vec<&str> = inv
        .hosts
        .iter()
        .filter(|h| h.roles.contains(&crate::inventory::Role::Master))
        .map(|h| h.name.as_str())
        .collect();
    if masters.is_empty() {
        return Ok(None);
    }
    let sessions: Vec<(&str, &crate::transport::NodeSession)> =
        masters.iter().filter_map(|m| nodes.get(*m).map(|n| (*m, &n.session))).collect();
    let me = LockHolder::me(command);
    ClusterLease::take(&sessions, masters.len(), &me, std::time::Duration::from_secs(20)).await.map(Some)
}

async fn release(lease: Option<ClusterLease>) {
    if let Some(l) = lease {
        l.release().await;
    }
}

type Connected = (
    crate::transport::Target,
    Result<(crate::transport::NodeSession, crate::agent::AgentSession, groundwork_protocol::Facts, i64), AgentError>,
    u64,
);

/// Logs in to every host in parallel and starts its agent; a host that fails is reported, the
/// others go on.
async fn connect_all(
    loaded: &LoadedInventory,
    opts: &ApplyOptions,
    progress: Arc<dyn ApplyProgress>,
) -> Result<(Arc<Transport>, AgentSource, Vec<Connected>), ApplyError> {
    let agent = Arc::new(AgentBinary::locate(opts.facts.agent.as_deref())?);
    let bastion = target::bastion(loaded);
    let hosts = target::hosts(loaded);
    let transport = match Transport::connect(bastion.as_ref(), &hosts, opts.facts.transport.clone()).await {
        Ok(t) => Arc::new(t),
        Err(e @ TransportError::Key { .. }) => return Err(ApplyError::Credentials(e)),
        Err(e) => return Err(ApplyError::Bastion(e)),
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(16));
    let tasks = hosts.into_iter().map(|t| {
        let (transport, agent, uploads, opts, progress) =
            (transport.clone(), agent.clone(), uploads.clone(), opts.facts.clone(), progress.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let result = async {
                let (session, mut running, _) =
                    facts::connect_agent(&transport, &t, false, &agent, &uploads, &opts, progress.as_ref()).await?;
                let (facts, skew) = facts::ask_facts(&mut running, &t, &opts, progress.as_ref()).await?;
                Ok((session, running, facts, skew))
            }
            .await;
            (t, result, start.elapsed().as_millis() as u64)
        })
    });
    let mut connected = Vec::new();
    for joined in futures::future::join_all(tasks).await {
        match joined {
            Ok(c) => connected.push(c),
            Err(e) => tracing::error!("a host task panicked: {e}"),
        }
    }
    let source = AgentSource { binary: agent, uploads, start_timeout: opts.facts.agent_timeout };
    Ok((transport, source, connected))
}

/// The last phase: the deployer's files, written on the controller (`groundwork handoff`).
const HANDOFF: &str = "handoff";

fn handoff_phase(loaded: &LoadedInventory, dry_run: bool, progress: &dyn ApplyProgress) -> PhaseReport {
    let started = Instant::now();
    let dir = super::handoff::output_dir(loaded);
    progress.phase_started(HANDOFF, "kubeconfig, volumes, DB secret and DIGIT's files for the deployer", 1);
    let outcome = if dry_run {
        // Rendering needs the passwords and writes nothing useful to compare against yet: say where.
        HostOutcome::Ok {
            changes: vec![],
            notes: vec![format!("apply writes the deployer's files into {}", dir.display())],
        }
    } else {
        match super::handoff::handoff(loaded) {
            Ok(outcome) => HostOutcome::Ok {
                changes: outcome
                    .files
                    .iter()
                    .filter(|f| f.status == crate::handoff::FileStatus::Written)
                    .map(|f| Change::new(format!("wrote {}", dir.join(&f.path).display())))
                    .collect(),
                notes: outcome.notes,
            },
            Err(e) => HostOutcome::Failed { error: one_line(&e.to_string()), kind: ErrorKind::Failed },
        }
    };
    let took_ms = started.elapsed().as_millis() as u64;
    log_outcome(HANDOFF, "controller", &outcome, took_ms);
    progress.host_finished(HANDOFF, "controller", &outcome);
    let report = PhaseReport {
        name: HANDOFF.into(),
        hosts: vec![HostPhase { host: "controller".into(), outcome, took_ms, done_before: false }],
        took_ms,
    };
    progress.phase_finished(&report);
    report
}

async fn finish(transport: Arc<Transport>, nodes: BTreeMap<String, Arc<Node>>) {
    drop(nodes);
    if let Ok(t) = Arc::try_unwrap(transport) {
        t.close().await;
    }
}

/// The kubeconfig names the endpoint as the nodes see it (`127.0.0.1:6444` with the local proxy):
/// the same port forwarded from this machine to a master makes it work here unchanged.
fn tunnel_hint(loaded: &LoadedInventory, cluster: &Cluster) -> Option<String> {
    let endpoint = cluster.endpoint();
    let (host, port) = endpoint.rsplit_once(':')?;
    if host != "127.0.0.1" {
        return None;
    }
    let master = cluster.first_master()?;
    let user = &loaded.inventory.ssh.user;
    let jump = target::bastion(loaded).map(|b| format!("-J {}@{}:{} ", b.user, b.address, b.port)).unwrap_or_default();
    Some(format!("ssh -N {jump}-L {port}:127.0.0.1:{port} {user}@{}", master.address))
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
