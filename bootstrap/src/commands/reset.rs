//! `groundwork reset -i INV [--hosts A,B]`: thin over `ops::reset`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use groundwork::ops::output::Body;
use groundwork::ops::reset::{self, ResetOptions};

use super::connect_args::ConnectArgs;
use super::output::{OutputArg, print_json};

/// Take the cluster down (every master and worker, or --hosts); the volumes and PostgreSQL are kept
///
/// kubeadm reset, etcd data, CNI, KUBE-/CNI- iptables chains and groundwork's files and units on
/// every master and worker (or only --hosts). The volumes' data and PostgreSQL's are
/// kept unless --wipe-volumes / --wipe-database. A whole reset sets the cluster's identity (CAs,
/// keys, admin kubeconfig) aside in the state directory: the next apply builds a new cluster.
/// Asks for the cluster's name unless --yes.
#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Only these hosts (comma-separated): hosts that are not nodes of the running cluster (take
    /// those out with `groundwork node remove`).
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    pub hosts: Vec<String>,
    /// Also delete the volumes on the storage host, with everything stored on them.
    #[arg(long)]
    pub wipe_volumes: bool,
    /// Also drop PostgreSQL's cluster on the database host, with every database in it.
    #[arg(long)]
    pub wipe_database: bool,
    /// Do not ask for the cluster's name.
    #[arg(long)]
    pub yes: bool,
    /// Say what would be reset, wiped and kept on each host; change nothing.
    #[arg(long)]
    pub plan: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

pub fn run(args: ResetArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load_inventory(&args.connect.inventory)?;
    let cluster = loaded.inventory.cluster.name.clone();
    if !args.plan && !args.yes && !confirmed(&cluster, &args)? {
        eprintln!("not confirmed: nothing was changed");
        return Ok(ExitCode::from(super::exit::FAILED));
    }
    let opts = ResetOptions {
        transport: args.connect.facts_options(&loaded).transport,
        hosts: args.hosts,
        wipe_volumes: args.wipe_volumes,
        wipe_database: args.wipe_database,
        dry_run: args.plan,
    };
    let json = args.output.json();
    let args_whole = opts.hosts.is_empty();
    let say = move |line: &str| {
        if !json || std::io::stderr().is_terminal() {
            eprintln!("  {line}");
        }
    };
    let report = super::runtime()?.block_on(reset::reset(&loaded, opts, &say))?;
    if json {
        print_json(if report.dry_run { "reset --plan" } else { "reset" }, Body::Reset(report));
        return Ok(ExitCode::from(super::exit::OK));
    }
    if report.dry_run {
        println!("plan: what `groundwork reset` would do to cluster {} (nothing was changed)", report.cluster);
    } else {
        println!("cluster {} reset ({:.1} s)", report.cluster, report.took_ms as f64 / 1000.0);
    }
    for (host, what) in &report.hosts {
        println!("  {host:<12} {what}");
    }
    for (host, what) in &report.kept {
        println!("  {host:<12} kept: {what}");
    }
    if report.dry_run && args_whole {
        println!("  the cluster's CAs, keys and admin kubeconfig would be set aside in the state directory");
    }
    if let Some(dir) = &report.identity_moved_to {
        println!(
            "  the old cluster's CAs, keys and admin kubeconfig are kept in {} (the next apply makes new ones)",
            dir.display()
        );
    }
    Ok(ExitCode::from(super::exit::OK))
}

/// The operator types the cluster's name.
fn confirmed(cluster: &str, args: &ResetArgs) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("reset takes the cluster down: confirm on a terminal, or pass --yes");
    }
    let scope = if args.hosts.is_empty() { "every master and worker".to_string() } else { args.hosts.join(", ") };
    let mut kept = Vec::new();
    if !args.wipe_volumes {
        kept.push("the volumes' data");
    }
    if !args.wipe_database {
        kept.push("PostgreSQL's data");
    }
    eprintln!(
        "This resets {scope} of cluster `{cluster}`: everything running there stops and its state is deleted.\n\
         {}\nType the cluster's name to go on:",
        if kept.is_empty() {
            "The volumes and PostgreSQL's data are deleted too.".to_string()
        } else {
            format!("Kept: {}.", kept.join(" and "))
        }
    );
    eprint!("> ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == cluster)
}
