//! The `groundwork` command line: parses arguments and hands them to `commands`.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "groundwork", version, about = "From one inventory file to a Kubernetes cluster behind a bastion")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Also write a structured log (JSON lines: every phase and step on every host), for the
    /// site's audit trail; appended to, created 0600, secrets written as [REDACTED].
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a first, commented inventory from flags (or answers on a terminal); never replaces a file.
    Init(commands::init::InitArgs),
    /// A groundwork inventory from another tool's: `import ansible FILE` (Kubespray's layout).
    Import(commands::import::ImportArgs),
    Validate(commands::validate::ValidateArgs),
    Facts(commands::facts::FactsArgs),
    Check(commands::check::CheckArgs),
    Plan(commands::apply::PlanArgs),
    Apply(commands::apply::ApplyArgs),
    Upgrade(commands::upgrade::UpgradeArgs),
    Handoff(commands::handoff::HandoffArgs),
    /// The PostgreSQL host's backups: `db backup`, `db restore --database NAME`.
    Db(commands::db::DbArgs),
    /// The cluster's certificates: `certs check` (every node's and the state's expiries), `certs renew`.
    Certs(commands::certs::CertsArgs),
    /// The cluster's etcd: `etcd backup` (a snapshot on this machine), `etcd restore --snapshot FILE`.
    Etcd(commands::etcd::EtcdArgs),
    /// A kubeconfig for a person: a client certificate and an RBAC role (`--revoke` takes it back).
    Kubeconfig(commands::kubeconfig::KubeconfigArgs),
    /// Nodes of the running cluster: `node remove NAME` takes a master or worker out.
    Node(commands::node::NodeArgs),
    Reset(commands::reset::ResetArgs),
    Schema(commands::schema::SchemaArgs),
    /// The state directory: `state adopt` (from a running cluster), `state backup`, `state restore`.
    State(commands::state::StateArgs),
    /// Offline bundles: `bundle build` makes one from the official release downloads.
    Bundle(commands::bundle::BundleArgs),
    /// A shell completion script on stdout: `groundwork completions bash > /etc/bash_completion.d/groundwork`.
    Completions(commands::docs::CompletionsArgs),
    /// Man pages for groundwork and every subcommand: `groundwork man --out DIR`.
    Man(commands::docs::ManArgs),
    /// The site registry: `images push --from DIR` loads image tarballs into it.
    Images(commands::images::ImagesArgs),
    /// A handover report: one self-contained HTML page (and PDF) of the cluster, its hosts, volumes, database, certificates and last apply.
    Report(commands::report::ReportArgs),
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    // Finding and hashing the agent is for `--version` alone, not for every run.
    if std::env::args_os().any(|a| a == "--version") {
        command = command.long_version(long_version());
    }
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(e) = commands::logging::init(cli.verbose, cli.log_file.as_deref()) {
        eprintln!("error: {e:#}");
        return ExitCode::from(commands::exit::FAILED);
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), command = %command_line(), "groundwork started");
    let result = match cli.command {
        Command::Init(a) => commands::init::run(a),
        Command::Import(a) => commands::import::run(a),
        Command::Validate(a) => commands::validate::run(a),
        Command::Facts(a) => commands::facts::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Plan(a) => commands::apply::run_plan(a),
        Command::Apply(a) => commands::apply::run_apply(a),
        Command::Upgrade(a) => commands::upgrade::run(a),
        Command::Handoff(a) => commands::handoff::run(a),
        Command::Db(a) => commands::db::run(a),
        Command::Certs(a) => commands::certs::run(a),
        Command::Etcd(a) => commands::etcd::run(a),
        Command::Kubeconfig(a) => commands::kubeconfig::run(a),
        Command::Node(a) => commands::node::run(a),
        Command::Reset(a) => commands::reset::run(a),
        Command::Schema(a) => commands::schema::run(a),
        Command::State(a) => commands::state::run(a),
        Command::Bundle(a) => commands::bundle::run(a),
        Command::Completions(a) => commands::docs::completions(a, Cli::command()),
        Command::Man(a) => commands::docs::man(a, Cli::command()),
        Command::Images(a) => commands::images::run(a),
        Command::Report(a) => commands::report::run(a),
    };
    match result {
        Ok(code) => {
            tracing::info!(?code, "groundwork finished");
            code
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "groundwork failed");
            eprintln!("error: {e:#}");
            ExitCode::from(commands::exit::FAILED)
        }
    }
}

/// `groundwork --version`: the controller, the agent protocol it speaks, and the agent binary it
/// would upload (the same search `apply` makes without `--agent`), so an operator can tell which
/// agent a packaged or copied controller carries.
fn long_version() -> &'static str {
    let version = env!("CARGO_PKG_VERSION");
    let protocol = groundwork_protocol::PROTOCOL_VERSION;
    let agent = match groundwork::agent::AgentBinary::locate(None) {
        Ok(a) => format!("{} (sha256 {})", a.path.display(), &a.sha256[..16]),
        Err(e) => e.to_string(),
    };
    let text = format!("{version}\nagent: groundwork-agent {version}, protocol {protocol}\nagent binary: {agent}");
    // clap keeps the text for the whole run; it is made once.
    Box::leak(text.into_boxed_str())
}

/// The subcommand and its arguments, for the log (no secret is ever an argument: they come from
/// files, the environment or a prompt).
fn command_line() -> String {
    std::env::args().skip(1).collect::<Vec<_>>().join(" ")
}
