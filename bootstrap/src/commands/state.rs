//! `groundwork state adopt|backup|restore -i INV`: thin over `ops::state`.

use std::path::PathBuf;
use std::process::ExitCode;

use age::secrecy::SecretString;
use groundwork::ops::output::Body;
use groundwork::ops::state;
use groundwork::state::archive::{BackupKey, RestoreKey};

use super::connect_args::ConnectArgs;
use super::output::{OutputArg, print_json};

/// The environment variable a backup or restore passphrase is read from (else a terminal prompt).
const PASSPHRASE_ENV: &str = "GROUNDWORK_STATE_PASSPHRASE";

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub action: StateAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum StateAction {
    /// Take a running cluster's PKI and secrets from its masters (identical on all) into a new
    /// state directory, so that this machine can manage the cluster without replacing its keys.
    Adopt {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Write the whole state directory (PKI, secrets, identity, journal) as an age-encrypted
    /// archive. Passphrase from GROUNDWORK_STATE_PASSPHRASE or a prompt, unless --recipient.
    Backup {
        /// Inventory file.
        #[arg(short, long, value_name = "FILE", env = "GROUNDWORK_INVENTORY")]
        inventory: PathBuf,
        /// The archive to write (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Encrypt to this age public key (`age1...`) instead of a passphrase; repeatable.
        #[arg(long, value_name = "AGE1...")]
        recipient: Vec<String>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Restore the state directory from an archive `state backup` wrote.
    Restore {
        /// Inventory file.
        #[arg(short, long, value_name = "FILE", env = "GROUNDWORK_INVENTORY")]
        inventory: PathBuf,
        /// The archive to read.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// An age identity file, for an archive made with --recipient.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Replace an existing state (it is moved aside, not deleted).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: OutputArg,
    },
}

pub fn run(args: StateArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        StateAction::Adopt { connect, output } => {
            let json = output.json();
            let loaded = super::load_inventory(&connect.inventory)?;
            let opts = connect.facts_options(&loaded).transport;
            let report = super::runtime()?.block_on(state::adopt(&loaded, opts))?;
            let attention = report.items.iter().any(|i| i.attention);
            if json {
                print_json("state adopt", Body::StateAdoption(report));
            } else {
                println!("adopted the cluster's state into {}", report.state_dir.display());
                for (file, fp) in &report.fingerprints {
                    println!("  {file:<20} {fp}");
                }
                if let Some(uid) = &report.cluster_uid {
                    println!("  cluster uid          {uid}");
                }
                for item in &report.items {
                    let mark = if item.attention { "ATTENTION" } else { "ok" };
                    println!("  {mark:<9} {}: {}", item.what, item.outcome);
                }
            }
            if attention && !json {
                println!(
                    "what is marked ATTENTION could not be recovered from the cluster: read it before the next apply"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StateAction::Backup { inventory, out, recipient, output } => {
            let loaded = super::load_inventory(&inventory)?;
            let key = if recipient.is_empty() {
                BackupKey::Passphrase(passphrase(true)?)
            } else {
                BackupKey::Recipients(recipient)
            };
            let summary = state::backup(&loaded, &out, &key)?;
            if output.json() {
                print_json("state backup", Body::StateArchive(summary));
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "backed up the state of cluster {} ({} files) to {}",
                summary.cluster,
                summary.files.len(),
                summary.archive.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        StateAction::Restore { inventory, from, identity, force, output } => {
            let loaded = super::load_inventory(&inventory)?;
            let key = match identity {
                Some(path) => RestoreKey::IdentityFile(path),
                None => RestoreKey::Passphrase(passphrase(false)?),
            };
            let summary = state::restore(&loaded, &from, &key, force)?;
            if output.json() {
                print_json("state restore", Body::StateArchive(summary));
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "restored the state of cluster {} ({} files) from {}",
                summary.cluster,
                summary.files.len(),
                summary.archive.display()
            );
            if let Some(kept) = summary.replaced_kept_in {
                println!("the state it replaced is kept in {}", kept.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The passphrase from the environment, or asked on the terminal (twice for a new backup).
fn passphrase(confirm: bool) -> anyhow::Result<SecretString> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        anyhow::ensure!(!p.is_empty(), "{PASSPHRASE_ENV} is empty");
        return Ok(SecretString::from(p));
    }
    use std::io::IsTerminal;
    anyhow::ensure!(
        std::io::stdin().is_terminal() || std::io::stderr().is_terminal(),
        "no passphrase: set {PASSPHRASE_ENV}, run on a terminal, or use --recipient/--identity"
    );
    let p = rpassword::prompt_password("state backup passphrase: ")?;
    anyhow::ensure!(!p.is_empty(), "an empty passphrase is not accepted");
    if confirm {
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(again == p, "the two passphrases differ");
    }
    Ok(SecretString::from(p))
}
