//! `groundwork handoff`: thin over `ops::handoff`; prints each file written or unchanged and
//! where NEXT-STEPS.md is, and with `--run-deployer` runs its deploy commands.

use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::handoff::{FileStatus, HandoffOutcome};
use groundwork::ops::handoff::{handoff_locked, run_deployer};
use groundwork::ops::output::Body;

use super::exit;
use super::table::Table;

/// Write what the service deployer needs (kubeconfig, manifests, DIGIT and GitOps files,
/// NEXT-STEPS.md) into the inventory's handoff directory.
#[derive(Debug, clap::Args)]
pub struct HandoffArgs {
    /// Inventory file.
    #[arg(short, long, value_name = "FILE", env = "GROUNDWORK_INVENTORY")]
    pub inventory: PathBuf,
    /// Then run the deploy commands of NEXT-STEPS.md (needs the deployer's program on PATH).
    #[arg(long)]
    pub run_deployer: bool,
    /// Fail (after writing the files) while any of DIGIT's `<placeholders>` is left in them.
    #[arg(long)]
    pub strict: bool,
    /// Output: a table of files, or the whole outcome as JSON on stdout.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: HandoffArgs) -> anyhow::Result<ExitCode> {
    let loaded = super::load_inventory(&args.inventory)?;
    for w in &loaded.warnings {
        eprintln!("{}", w.render(&loaded.source));
    }
    let outcome = handoff_locked(&loaded)?;
    match args.output {
        Format::Json => super::output::print_json("handoff", Body::Handoff(outcome.clone())),
        Format::Table => print_outcome(&outcome),
    }
    if args.strict && !outcome.placeholders.is_empty() {
        eprintln!(
            "error: {} placeholder(s) of DIGIT's are left for the site to fill in; set them in your DIGIT checkout (or the inventory's handoff.digit.environments) and run `groundwork handoff` again:",
            outcome.placeholders.len()
        );
        for p in &outcome.placeholders {
            eprintln!("  {}:{}: {}", outcome.directory.join(&p.file).display(), p.line, p.text);
        }
        return Ok(ExitCode::from(exit::FAILED));
    }
    if args.run_deployer {
        eprintln!(
            "==> running the deployer ({}) for environment {}",
            outcome.deploy.deployer, outcome.deploy.environment
        );
        if let Err(e) = run_deployer(&outcome) {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(exit::FAILED));
        }
    }
    Ok(ExitCode::from(exit::OK))
}

fn print_outcome(outcome: &HandoffOutcome) {
    let mut t = Table::new(["FILE", "STATUS", "MODE", "SECRETS"]);
    for f in &outcome.files {
        let status = match f.status {
            FileStatus::Written => "written",
            FileStatus::Unchanged => "unchanged",
        };
        let secrets = match (f.secret, f.encrypted) {
            (true, true) => "encrypted (sops)",
            (true, false) => "plain text",
            (false, _) => "",
        };
        t.row([f.path.display().to_string(), status.to_string(), format!("{:o}", f.mode), secrets.to_string()]);
    }
    print!("{}", t.render());
    for note in &outcome.notes {
        println!("note: {note}");
    }
    if !outcome.placeholders.is_empty() {
        println!(
            "note: {} of DIGIT's placeholders are left for the site to fill in (listed in {}; `--strict` fails on them)",
            outcome.placeholders.len(),
            groundwork::handoff::NEXT_STEPS
        );
    }
    println!(
        "{} of {} files written in {}; next steps: {}",
        outcome.changed(),
        outcome.files.len(),
        outcome.directory.display(),
        outcome.next_steps().display()
    );
}
