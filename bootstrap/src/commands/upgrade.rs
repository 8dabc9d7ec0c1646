//! `groundwork upgrade`: the cluster to the Kubernetes version of the inventory's bundle, one node
//! at a time (the phases are `phases::upgrade`; the runner, progress and summary are apply's).

use std::process::ExitCode;

use groundwork::ops::apply::Workflow;

use super::apply::{Format, RunArgs, execute};
use super::connect_args::ConnectArgs;

/// Upgrade Kubernetes to the version of the inventory's bundle, one node at a time
///
/// Edit packages.bundle and cluster.kubernetesVersion first. An etcd snapshot is taken, etcd's
/// binaries replaced when they differ, `kubeadm upgrade` runs on each master, then every node is
/// drained, gets the new kubelet, and is uncordoned, one at a time. Stopped anywhere, the same
/// command goes on; run again when done, it changes nothing.
#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Show what the upgrade would do on each node; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Refuse unless this is the version the inventory and its bundle name (a guard for scripts).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// How long draining one node may take before the upgrade stops there (the node stays cordoned).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub drain_timeout: u64,
    /// After Ctrl-C or SIGTERM, how long steps already running may finish before they are given up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub grace_period: u64,
    /// Output: human-readable text, or the whole report as JSON on stdout.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub output: Format,
    /// Use the bundle even if its signature is missing or not by the pinned key (as `apply`).
    #[arg(long)]
    pub allow_unsigned_bundle: bool,
}

pub fn run(args: UpgradeArgs) -> anyhow::Result<ExitCode> {
    if let Some(to) = &args.to {
        let loaded = super::load_inventory(&args.connect.inventory)?;
        let named = &loaded.inventory.cluster.kubernetes_version;
        if to.trim_start_matches('v') != named.trim_start_matches('v') {
            anyhow::bail!(
                "--to {to}, but {} says cluster.kubernetesVersion: {named}: edit the inventory (and packages.bundle) \
                 to the version to upgrade to; nothing was done",
                args.connect.inventory.display()
            );
        }
    }
    let run = RunArgs {
        connect: args.connect,
        only: vec![],
        skip: vec![],
        grace_period: args.grace_period,
        output: args.output,
        allow_unsigned_bundle: args.allow_unsigned_bundle,
    };
    let workflow = Workflow::Upgrade { drain_timeout: std::time::Duration::from_secs(args.drain_timeout.max(1)) };
    execute(run, args.plan, false, workflow)
}
