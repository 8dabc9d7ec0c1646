use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::inventory::{Diagnostic, LoadError, LocalFiles};
use groundwork::ops::output::{Body, Validation};
use groundwork::ops::validate::{Summary, validate};

use super::exit;
use super::output::Format;

/// Check an inventory file: syntax, unknown keys, types, and the cluster it describes.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Inventory file.
    #[arg(short, long, value_name = "FILE", env = "GROUNDWORK_INVENTORY")]
    pub inventory: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub output: Format,
    /// Also require every file the inventory names on this machine (key files, the bundle, secret
    /// files, the CNI manifest), as `plan` and `apply` do; without it their absence is a warning.
    #[arg(long)]
    pub here: bool,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let local = if args.here { LocalFiles::Required } else { LocalFiles::Reported };
    match validate(&args.inventory, local) {
        Ok((loaded, summary)) => {
            match args.output {
                Format::Json => super::output::print_json(
                    "validate",
                    Body::Validation(Validation {
                        valid: true,
                        diagnostics: summary.warnings.clone(),
                        summary: Some(summary),
                    }),
                ),
                Format::Text => print_valid(&loaded.source, &args.inventory, &summary),
            }
            Ok(ExitCode::from(exit::OK))
        }
        Err(LoadError::Invalid { source_text, diagnostics, path }) => {
            match args.output {
                Format::Json => super::output::print_json(
                    "validate",
                    Body::Validation(Validation { valid: false, summary: None, diagnostics }),
                ),
                Format::Text => print_invalid(&source_text, &path, &diagnostics),
            }
            Ok(ExitCode::from(exit::FAILED))
        }
        Err(e @ LoadError::Read { .. }) => Err(e.into()),
    }
}

fn print_valid(source: &str, file: &std::path::Path, s: &Summary) {
    for w in &s.warnings {
        eprint!("{}", w.render(source));
    }
    println!("{}: valid", file.display());
    println!("  cluster   {} (Kubernetes {})", s.cluster, s.kubernetes_version);
    if let Some(b) = &s.bastion {
        println!("  bastion   {b}");
    }
    for (role, names) in &s.hosts_by_role {
        println!("  {role:<9} {} ({})", names.len(), names.join(", "));
    }
    println!("  packages  {}", s.package_source);
    if s.baseline_relaxations.is_empty() {
        println!("  baselines the deployment guide's");
    } else {
        for line in &s.baseline_relaxations {
            println!("  {line}");
        }
    }
    if !s.warnings.is_empty() {
        println!("  {} warning(s) above", s.warnings.len());
    }
}

fn print_invalid(source: &str, file: &std::path::Path, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{}", d.render(source));
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    eprintln!("{}: {errors} error(s), {warnings} warning(s); nothing was changed", file.display());
}
