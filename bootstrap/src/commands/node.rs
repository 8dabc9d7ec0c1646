//! `groundwork node remove NAME -i INV`: thin over `ops::nodes`, then apply's phases on the
//! inventory without the node, so every other host stops naming it.

use std::process::ExitCode;
use std::time::Duration;

use groundwork::ops::apply::Workflow;
use groundwork::ops::check::CheckSettings;
use groundwork::ops::nodes::{self, RemoveOptions};

use super::apply::{Format, RunArgs, execute_loaded};
use super::connect_args::ConnectArgs;

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub action: NodeAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum NodeAction {
    /// Take a master or worker out of the running cluster: drain it, remove its etcd member (a
    /// master; refused when the others would lose quorum), delete its Node, reset the host, then
    /// bring every other host up to date (load balancers, API servers' etcd lists, /etc/hosts, pod
    /// routes, storage ACLs). Delete it from the inventory afterwards: while it is listed, `apply`
    /// joins it again (which is how a node is replaced). Stopped anywhere, the same command goes on.
    Remove {
        /// The host's inventory name.
        name: String,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Say what would be done; change nothing (the rest of the cluster is shown as `plan` shows it).
        #[arg(long)]
        plan: bool,
        /// Remove a host that cannot be reached (a dead machine): not drained, not reset.
        #[arg(long)]
        force: bool,
        /// How long the drain may take before the removal stops there (the node stays cordoned).
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        drain_timeout: u64,
        /// Use the bundle even if its signature is missing or not by the pinned key (as `apply`).
        #[arg(long)]
        allow_unsigned_bundle: bool,
        /// Output: human-readable text, or the report of the update as JSON on stdout.
        #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
        output: Format,
    },
}

pub fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let NodeAction::Remove { name, connect, plan, force, drain_timeout, allow_unsigned_bundle, output } = args.action;
    let loaded = super::load_inventory(&connect.inventory)?;
    let opts = RemoveOptions {
        transport: connect.facts_options(&loaded).transport,
        name: name.clone(),
        drain_timeout: Duration::from_secs(drain_timeout.max(1)),
        force,
        dry_run: plan,
    };
    let say = |line: &str| eprintln!("  - {line}");
    let mode = if plan { " (plan: what would be done; nothing changes)" } else { "" };
    let runtime = super::runtime()?;
    eprintln!("==> node remove {name}{mode}: checks, cordon and drain");
    let taken = runtime.block_on(nodes::take_out(&loaded, &opts, &say))?;
    eprintln!("==> node remove {name}{mode}: the other hosts, as apply brings them to the inventory without {name}");
    let rest = nodes::without(&loaded, &name);
    let run = RunArgs { connect, only: vec![], skip: vec![], grace_period: 60, output, allow_unsigned_bundle };
    let check = CheckSettings { replacing_master: taken.master, ..CheckSettings::default() };
    let code = execute_loaded(
        if plan { "node remove --plan" } else { "node remove" },
        &rest,
        run,
        plan,
        false,
        Workflow::Apply,
        check,
    )?;
    if code != ExitCode::from(super::exit::OK) {
        eprintln!(
            "{name} is drained but still a member: not every other host was brought up to date (see above). Fix \
             that and run `groundwork node remove {name}` again (what is done is not redone)"
        );
        return Ok(code);
    }
    eprintln!("==> node remove {name}{mode}: {}Node and host", if taken.master { "its etcd member, " } else { "" });
    let finished = runtime.block_on(nodes::finish(&loaded, &opts, &say))?;
    if plan {
        return Ok(code);
    }
    let line = loaded.map.get(&format!("hosts[{}]", index_of(&loaded, &name))).map(|e| e.value.line);
    eprintln!(
        "{name} is removed ({:.1} s). Delete it from {}{}: while it is listed, `groundwork apply` joins it again \
         (that is how a node is replaced: reinstall or fix the host, then apply).{}",
        (taken.took_ms + finished.took_ms) as f64 / 1000.0,
        loaded.file.display(),
        line.map(|l| format!(" (line {l})")).unwrap_or_default(),
        if taken.master { " The cluster needs an odd number of masters: add this one back or another." } else { "" }
    );
    Ok(code)
}

fn index_of(loaded: &groundwork::inventory::LoadedInventory, name: &str) -> usize {
    loaded.inventory.hosts.iter().position(|h| h.name == name).unwrap_or_default()
}
