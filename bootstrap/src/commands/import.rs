//! `groundwork import ansible FILE`: a groundwork inventory from an Ansible/Kubespray one.

use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::ops::output::Body;
use groundwork::ops::{import, init};

use super::exit;
use super::output::Format;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: ImportFrom,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImportFrom {
    /// An Ansible inventory (INI or YAML) in Kubespray's layout, with group_vars/ and host_vars/
    /// beside it: prints (or writes) a groundwork inventory and lists, with file and line, every
    /// setting it could not carry over.
    Ansible {
        /// The Ansible inventory file (e.g. inventory/mycluster/hosts.yaml).
        file: PathBuf,
        /// The cluster's name (default: the inventory's directory name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Write the inventory here (never replacing a file) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Output format: text (the inventory, the list on stderr) or json (both, and what validate says).
        #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
        output: Format,
    },
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let ImportFrom::Ansible { file, name, out, output } = args.from;
    let name = name.unwrap_or_else(|| cluster_name(&file));
    let imported = import::ansible(&file, &name)?;
    let valid = imported.problems.is_empty();
    if output == Format::Text {
        for n in &imported.not_carried {
            eprintln!("not carried: {n}");
        }
        for p in &imported.problems {
            eprintln!("{p}");
        }
    }
    match (&out, valid) {
        (Some(path), true) => {
            init::write_new(path, &imported.text)?;
            eprintln!(
                "wrote {} ({} setting(s) not carried, listed above); next: groundwork validate -i {0}",
                path.display(),
                imported.not_carried.len()
            );
        }
        (Some(path), false) => {
            eprintln!("{} not written: the imported inventory does not validate (see above)", path.display());
        }
        (None, _) if output == Format::Text => print!("{}", imported.text),
        (None, _) => {}
    }
    if output == Format::Json {
        super::output::print_json("import ansible", Body::Import(imported));
    }
    Ok(ExitCode::from(if valid { exit::OK } else { exit::FAILED }))
}

/// Kubespray keeps each cluster's inventory in its own directory: `inventory/mycluster/hosts.yaml`.
fn cluster_name(file: &std::path::Path) -> String {
    let dir = file
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()));
    let cleaned: String = dir
        .unwrap_or_default()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if cleaned.is_empty() { "imported".into() } else { cleaned }
}
