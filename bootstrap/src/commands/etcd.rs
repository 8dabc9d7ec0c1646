//! `groundwork etcd backup|restore -i INV`: thin over `ops::etcd`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::ops::etcd::{self, BackupOptions, RestoreOptions};
use groundwork::ops::output::Body;

use super::connect_args::ConnectArgs;
use super::output::{OutputArg, print_json};

#[derive(Debug, clap::Args)]
pub struct EtcdArgs {
    #[command(subcommand)]
    pub action: EtcdAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum EtcdAction {
    /// Take a snapshot of the cluster's etcd on a healthy member, check it, and keep it on this
    /// machine with its checksum (the state directory's backups/etcd unless --dir). It holds every
    /// Secret of the cluster: keep it as safe as the state directory.
    Backup {
        #[command(flatten)]
        connect: ConnectArgs,
        /// How many snapshots of this cluster to keep in the directory (the oldest go first).
        #[arg(long, value_name = "N", default_value_t = 7)]
        keep: usize,
        /// Where snapshots go.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Disaster recovery: every etcd member restored from one snapshot. The control plane stops
    /// meanwhile, and every change made after the snapshot is lost. Asks for the cluster's name
    /// unless --yes. Stopped anywhere, the same command finishes it.
    Restore {
        #[command(flatten)]
        connect: ConnectArgs,
        /// The snapshot (from `etcd backup`; checked against FILE.sha256 when that exists).
        #[arg(long, value_name = "FILE")]
        snapshot: PathBuf,
        /// Do not ask for the cluster's name.
        #[arg(long)]
        yes: bool,
        /// Check the snapshot and the masters, say what the restore would do; change nothing.
        #[arg(long)]
        plan: bool,
        #[command(flatten)]
        output: OutputArg,
    },
}

pub fn run(args: EtcdArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        EtcdAction::Backup { connect, keep, dir, output } => {
            let json = output.json();
            let loaded = super::load_inventory(&connect.inventory)?;
            let opts = BackupOptions { transport: connect.facts_options(&loaded).transport, keep, dir };
            let report = super::runtime()?.block_on(etcd::backup(&loaded, opts, &say(json)))?;
            if json {
                print_json("etcd backup", Body::EtcdBackup(report));
            } else {
                let i = &report.info;
                println!("etcd snapshot of {} from {}: {}", i.cluster, i.member, report.file.display());
                println!(
                    "  {} bytes, sha256 {}, revision {}, {} keys ({:.1} s)",
                    i.bytes,
                    i.sha256,
                    i.status.revision,
                    i.status.total_key,
                    report.took_ms as f64 / 1000.0
                );
                for old in &report.removed {
                    println!("  removed the older {}", old.display());
                }
            }
            Ok(ExitCode::from(super::exit::OK))
        }
        EtcdAction::Restore { connect, snapshot, plan: true, output, .. } => {
            super::print_plan(&connect, output.json(), "etcd restore", move |l, transport| {
                Box::pin(async move { Ok(etcd::restore_plan(l, RestoreOptions { transport, snapshot }).await?) })
            })
        }
        EtcdAction::Restore { connect, snapshot, yes, output, plan: false } => {
            let json = output.json();
            let loaded = super::load_inventory(&connect.inventory)?;
            let cluster = loaded.inventory.cluster.name.clone();
            // The file is checked before anyone is asked anything.
            let sha256 = etcd::verify_snapshot_file(&snapshot)?;
            if !yes && !confirmed(&cluster, &snapshot, &sha256)? {
                eprintln!("not confirmed: nothing was changed");
                return Ok(ExitCode::from(super::exit::FAILED));
            }
            let opts = RestoreOptions { transport: connect.facts_options(&loaded).transport, snapshot };
            let report = super::runtime()?.block_on(etcd::restore(&loaded, opts, &say(json)))?;
            if json {
                print_json("etcd restore", Body::EtcdRestore(report));
            } else {
                println!(
                    "etcd restored from {} on every master (cluster token {}); every node Ready ({:.1} s)",
                    report.snapshot.display(),
                    report.cluster_token,
                    report.took_ms as f64 / 1000.0
                );
                for (host, dir) in &report.kept {
                    println!(
                        "  {host}: the data directory from before the restore is kept at {dir} (remove it once satisfied)"
                    );
                }
                if !report.not_restarted.is_empty() {
                    println!(
                        "  ATTENTION: not reached, their kubelets were not restarted: {} (restart them: systemctl restart kubelet)",
                        report.not_restarted.join(", ")
                    );
                }
            }
            Ok(ExitCode::from(super::exit::OK))
        }
    }
}

/// Progress lines on stderr (stdout carries the report).
fn say(json: bool) -> impl Fn(&str) + Sync {
    move |line: &str| {
        if !json || std::io::stderr().is_terminal() {
            eprintln!("  {line}");
        }
    }
}

/// The operator types the cluster's name.
fn confirmed(cluster: &str, snapshot: &std::path::Path, sha256: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("etcd restore replaces the whole cluster state: confirm on a terminal, or pass --yes");
    }
    eprintln!(
        "This replaces the state of cluster `{cluster}` with the snapshot {} (sha256 {sha256}).\n\
         The API is down meanwhile and every change made after the snapshot is lost.\n\
         Type the cluster's name to go on:",
        snapshot.display()
    );
    eprint!("> ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == cluster)
}
