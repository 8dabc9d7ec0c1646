use std::process::ExitCode;

use groundwork::ops::facts::{HostReport, HostResult};
use groundwork::ops::output::{Body, FactsOutput};

use super::connect_args::ConnectArgs;
use super::exit;
use super::table::{Table, bytes, human_ms};

/// Log in to every host through the bastion and show what each one is.
#[derive(Debug, clap::Args)]
pub struct FactsArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

pub fn run(args: FactsArgs) -> anyhow::Result<ExitCode> {
    let (_, reports) = args.connect.gather("facts", args.output == Format::Table)?;
    let failed = reports.iter().filter(|r| matches!(r.result, HostResult::Failed { .. })).count();
    match args.output {
        Format::Json => super::output::print_json("facts", Body::Facts(FactsOutput { hosts: reports })),
        Format::Yaml => super::output::print_yaml("facts", Body::Facts(FactsOutput { hosts: reports }))?,
        Format::Table => print_table(&reports),
    }
    Ok(ExitCode::from(if failed == 0 { exit::OK } else { exit::FAILED }))
}

fn print_table(reports: &[HostReport]) {
    let mut t = Table::new([
        "HOST", "ROLES", "ADDRESS", "OS", "KERNEL", "CPU", "MEMORY", "SWAP", "ROOT FS", "CGROUP", "SKEW", "AGENT",
    ]);
    let mut failures = Vec::new();
    for r in reports {
        match &r.result {
            HostResult::Facts(h) => {
                let f = &h.facts;
                let root = f.filesystems.iter().find(|fs| fs.path == "/");
                t.row([
                    r.name.clone(),
                    r.roles.join(","),
                    r.address.clone(),
                    format!("{} {}", f.os.id, f.os.version_id),
                    f.kernel.clone(),
                    f.cpu.count.to_string(),
                    bytes(f.memory.total_bytes),
                    if f.memory.swap_total_bytes == 0 { "off".into() } else { bytes(f.memory.swap_total_bytes) },
                    root.map(|fs| format!("{} ({} free)", bytes(fs.total_bytes), bytes(fs.available_bytes)))
                        .unwrap_or_else(|| "?".into()),
                    format!("v{}", f.cgroup.version),
                    human_ms(h.clock_skew_ms),
                    if h.agent_uploaded { "uploaded".into() } else { "present".into() },
                ]);
            }
            HostResult::Failed { error } => failures.push(error.clone()),
        }
    }
    print!("{}", t.render());
    let ok = reports.len() - failures.len();
    println!("{ok} of {} hosts answered", reports.len());
    for f in failures {
        eprintln!("failed: {f}");
    }
}
