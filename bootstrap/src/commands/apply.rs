//! `groundwork apply` and `groundwork plan`: thin over `ops::apply`; this file parses arguments,
//! draws progress and prints the summary.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use groundwork::ops::apply::{ApplyOptions, ApplyProgress, ApplyReport, HostOutcome, PhaseReport, Workflow, apply};
use groundwork::ops::check::CheckSettings;
use groundwork::ops::facts::{Progress, Stage};
use groundwork::ops::interrupt;

use super::connect_args::ConnectArgs;
use super::exit;
pub use super::output::Format;
use super::table::{Table, human_ms};
use groundwork::ops::output::Body;

/// Bring the cluster to what the inventory says: every phase, in order (or the ones chosen).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(subcommand)]
    pub sub: Option<ApplySub>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ApplySub {
    /// Run one phase alone (as `kubeadm init phase NAME` does), e.g. `groundwork apply phase etcd -i FILE`.
    Phase(PhaseArgs),
}

#[derive(Debug, clap::Args)]
pub struct PhaseArgs {
    /// The phase (see `groundwork apply --help` for the list).
    pub name: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Show what `apply` would change on each host; change nothing.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Show the content differences of files that would change.
    #[arg(long)]
    pub diff: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Run only these phases (comma-separated). Phases: connect, facts, check, identity (always
    /// runs), package-repository, prepare-os, packages, bundle, container-runtime, pki, etcd, etcd-backup, endpoint, init, join-masters,
    /// apiserver, taints, join-workers, cni, wait-ready, storage-server, storage-clients, database, handoff.
    #[arg(long, value_delimiter = ',', value_name = "PHASES")]
    pub only: Vec<String>,
    /// Skip these phases (comma-separated).
    #[arg(long = "skip-phases", value_delimiter = ',', value_name = "PHASES")]
    pub skip: Vec<String>,
    /// After Ctrl-C or SIGTERM, how long steps already running may finish before they are given
    /// up (a second Ctrl-C aborts at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub grace_period: u64,
    /// Output: human-readable text, or the whole report as JSON on stdout (`groundwork schema
    /// --report` describes it).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub output: Format,
    /// Use the offline bundle even if its signature is missing or not by the key the inventory
    /// pins (packages.bundleKey). Its files are still checked against SHA256SUMS; the report
    /// says that the signature was not checked, and why.
    #[arg(long)]
    pub allow_unsigned_bundle: bool,
}

pub fn run_apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    match args.sub {
        Some(ApplySub::Phase(p)) => {
            let mut run = p.run;
            run.only = vec![p.name];
            execute(run, false, false, Workflow::Apply)
        }
        None => execute(args.run, false, false, Workflow::Apply),
    }
}

pub fn run_plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    execute(args.run, true, args.diff, Workflow::Apply)
}

/// Runs `workflow` (apply's phases or an upgrade's) and prints its progress and summary.
pub fn execute(args: RunArgs, dry_run: bool, show_diff: bool, workflow: Workflow) -> anyhow::Result<ExitCode> {
    let loaded = super::load_inventory(&args.connect.inventory)?;
    let command = match (workflow, dry_run) {
        (Workflow::Apply, false) => "apply",
        (Workflow::Apply, true) => "plan",
        (Workflow::Upgrade { .. }, false) => "upgrade",
        (Workflow::Upgrade { .. }, true) => "upgrade --plan",
    };
    execute_loaded(command, &loaded, args, dry_run, show_diff, workflow, CheckSettings::default())
}

/// [`execute`] on an inventory already loaded (`node remove` runs apply on the inventory without
/// the node); `command` names it in the JSON report.
pub fn execute_loaded(
    command: &str,
    loaded: &groundwork::inventory::LoadedInventory,
    args: RunArgs,
    dry_run: bool,
    show_diff: bool,
    workflow: Workflow,
    check: CheckSettings,
) -> anyhow::Result<ExitCode> {
    for w in &loaded.warnings {
        eprintln!("{}", w.render(&loaded.source));
    }
    let text = args.output == Format::Text;
    if text {
        for line in loaded.inventory.baselines.relaxations() {
            eprintln!("{line}");
        }
    }
    let opts = ApplyOptions {
        facts: args.connect.facts_options(loaded),
        dry_run,
        only: args.only,
        skip: args.skip,
        check,
        workflow,
        allow_unsigned_bundle: args.allow_unsigned_bundle,
    };
    let progress = Arc::new(Lines::new(text, dry_run));
    let runtime = super::runtime()?;
    let (handle, stop) = interrupt::channel(std::time::Duration::from_secs(args.grace_period));
    let report = runtime.block_on(async {
        super::signals::stop_on_signals(handle, args.grace_period);
        apply(loaded, &opts, progress, stop).await
    })?;
    let code = match (&report.interrupted, report.succeeded()) {
        (Some(_), _) => exit::INTERRUPTED,
        (None, true) => exit::OK,
        (None, false) => exit::FAILED,
    };
    match args.output {
        Format::Json => super::output::print_json(command, Body::Apply(report)),
        Format::Text => print_summary(&report, show_diff, workflow),
    }
    Ok(ExitCode::from(code))
}

/// Progress as plain lines on stderr: a header per phase and a line per host as it finishes.
/// Lines (not redrawn bars) read the same in a terminal, a CI log and a pipe.
struct Lines {
    enabled: bool,
    dry_run: bool,
    connected: Mutex<(usize, usize)>,
}

impl Lines {
    fn new(enabled: bool, dry_run: bool) -> Self {
        Lines { enabled, dry_run, connected: Mutex::new((0, 0)) }
    }
}

impl Progress for Lines {
    fn stage(&self, _host: &str, _stage: Stage) {}
}

impl ApplyProgress for Lines {
    fn phase_started(&self, name: &str, about: &str, hosts: usize) {
        if self.enabled {
            let s = if hosts == 1 { "" } else { "s" };
            eprintln!("==> {name} ({hosts} host{s}): {about}");
        }
    }

    fn host_finished(&self, phase: &str, host: &str, outcome: &HostOutcome) {
        if !self.enabled {
            return;
        }
        if phase == "connect" {
            let mut c = self.connected.lock().unwrap_or_else(|p| p.into_inner());
            c.0 += 1;
            if let HostOutcome::Failed { error, kind } = outcome {
                c.1 += 1;
                eprintln!("    {host:<12} FAILED  ({kind}) {error}");
            }
            return;
        }
        // Hosts go through their phases at their own pace, so lines of several phases interleave:
        // each names its phase.
        let verb = if self.dry_run { "would change" } else { "changed" };
        let at = format!("{host:<12} {phase:<17}");
        match outcome {
            HostOutcome::Ok { changes, notes } => {
                if changes.is_empty() {
                    eprintln!("    {at} ok      no change");
                } else if changes.len() > 3 {
                    // One line per change: a storage host creates a dozen volumes at once.
                    eprintln!("    {at} ok      {verb} ({}):", changes.len());
                    for c in changes {
                        eprintln!("    {:<30}           {}", "", c.summary);
                    }
                } else {
                    eprintln!(
                        "    {at} ok      {verb}: {}",
                        changes.iter().map(|c| c.summary.as_str()).collect::<Vec<_>>().join("; ")
                    );
                }
                for note in notes {
                    eprintln!("    {at} NOTE    {note}");
                }
            }
            HostOutcome::Failed { error, kind } => {
                // "(refused) refused: ..." says it twice.
                let error = error.strip_prefix(&format!("{kind}: ")).unwrap_or(error);
                eprintln!("    {at} FAILED  ({kind}) {error}")
            }
            // What a stop leaves unstarted is summed up by the table and the STOPPED line: one line
            // per host and phase would bury the reason above it.
            HostOutcome::Skipped { reason } if skipped_by_a_stop(reason) => {}
            HostOutcome::Skipped { reason } => eprintln!("    {at} skipped ({reason})"),
        }
    }

    fn phase_finished(&self, report: &PhaseReport) {
        if self.enabled && report.name == "connect" {
            let c = self.connected.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!("    {} of {} hosts connected ({})", c.0 - c.1, c.0, human_ms(report.took_ms as i64));
        }
    }
}

fn skipped_by_a_stop(reason: &str) -> bool {
    reason.starts_with("the run stopped after") || reason.ends_with("before it started")
}

fn print_summary(report: &ApplyReport, show_diff: bool, workflow: Workflow) {
    if let Some(check) = &report.check
        && !check.passed()
    {
        super::check::print_report(check, true);
    }
    println!();
    let mut t = Table::new(["PHASE", "HOSTS", "CHANGED", "FAILED", "SKIPPED", "TIME"]);
    for p in &report.phases {
        let count = |f: fn(&HostOutcome) -> bool| p.hosts.iter().filter(|h| f(&h.outcome)).count().to_string();
        t.row([
            p.name.clone(),
            p.hosts.len().to_string(),
            count(|o| matches!(o, HostOutcome::Ok { changes, .. } if !changes.is_empty())),
            count(|o| matches!(o, HostOutcome::Failed { .. })),
            count(|o| matches!(o, HostOutcome::Skipped { .. })),
            human_ms(p.took_ms as i64),
        ]);
    }
    print!("{}", t.render());
    if let Some(b) = &report.bundle {
        match (&b.signed_by, &b.unchecked) {
            (Some(s), _) => println!(
                "bundle {}: signed by key {} ({}); {} files checked",
                b.dir.display(),
                s.key_id,
                s.trusted_comment,
                b.files
            ),
            (None, why) => println!(
                "WARNING: --allow-unsigned-bundle: the bundle {} was used without a good signature ({}); its {} \
                 files matched its SHA256SUMS, which nothing vouches for",
                b.dir.display(),
                why.as_deref().unwrap_or("not checked"),
                b.files
            ),
        }
    }
    for (host, at) in &report.rejoining {
        println!(
            "NOTE: {host} was taken out by `groundwork node remove` ({}) and is still in the inventory: this {} \
             it again. Delete it from the inventory if it is gone for good.",
            super::table::utc(*at),
            if report.dry_run { "plan would join" } else { "run joins" }
        );
    }
    if show_diff {
        for p in &report.phases {
            for h in &p.hosts {
                if let HostOutcome::Ok { changes, .. } = &h.outcome {
                    for c in changes.iter().filter(|c| c.diff.is_some()) {
                        println!("\n--- {} {} {}", p.name, h.host, c.summary);
                        print!("{}", c.diff.as_deref().unwrap_or_default());
                    }
                }
            }
        }
    }
    println!();
    let failed = report.failed_hosts();
    let command = match workflow {
        Workflow::Apply => "apply",
        Workflow::Upgrade { .. } => "upgrade",
    };
    let verb = match (report.dry_run, workflow) {
        (false, _) => command,
        (true, Workflow::Apply) => "plan",
        (true, Workflow::Upgrade { .. }) => "upgrade plan",
    };
    let changes = report.change_count();
    if let Some(why) = &report.stopped {
        println!("{verb} STOPPED: {why}");
    } else if failed.is_empty() {
        if report.dry_run {
            println!("{verb}: {changes} change(s) would be made ({})", human_ms(report.took_ms as i64));
        } else {
            println!("{verb} finished: {changes} change(s) in {}", human_ms(report.took_ms as i64));
        }
    } else {
        println!(
            "{verb} finished with failures on {}: {}; run {command} again once they are fixed (it resumes)",
            failed.len(),
            failed.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(k) = &report.kubeconfig {
        println!("admin kubeconfig: {}", k.display());
        if let Some(tunnel) = &report.kubeconfig_tunnel {
            println!("  its server is each node's local endpoint; from here, keep a tunnel open:  {tunnel}");
            println!("  then:  kubectl --kubeconfig {} get nodes", k.display());
        }
    }
    if let Some(next) = &report.next_steps {
        println!("handed off to the deployer: {} says what to run next", next.display());
    }
}
