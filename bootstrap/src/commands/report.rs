//! `groundwork report -i INV --out DIR`: thin over `ops::report`.

use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::inventory::LocalFiles;
use groundwork::ops::report::{self, output::Pdf};

use super::connect_args::ConnectArgs;
use super::exit;
use super::output::{Format, print_json};
use groundwork::ops::output::Body;

/// A handover report of the site: one self-contained HTML page (and its PDF when Chromium is on
/// PATH) with the cluster drawn, every host against its baseline, versions, volumes and their
/// claims, the database, certificate expiries and the last apply's phases and times. Only reads.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Directory to write report.html (and report.pdf) into; created if missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// From the inventory and the state directory alone: no host is asked (the page says which
    /// sections were not gathered).
    #[arg(long)]
    pub offline: bool,
    /// What to print: where the files went, or the gathered data as JSON (`groundwork schema
    /// --report` describes it).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub output: Format,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    // Offline, the files a connection needs (keys, known_hosts) may be elsewhere: only reported.
    let local = if args.offline { LocalFiles::Reported } else { LocalFiles::Required };
    let loaded = super::load_inventory_checking(&args.connect.inventory, local)?;
    let live = (!args.offline).then(|| args.connect.facts_options(&loaded));
    let data = super::runtime()?.block_on(report::gather(&loaded, live.as_ref()));
    let written = report::output::write(&args.out, &data)?;
    if args.output == Format::Json {
        print_json("report", Body::Report(Box::new(data)));
        return Ok(ExitCode::from(exit::OK));
    }
    println!("report: {}", written.html.display());
    match &written.pdf {
        Pdf::Written { path, converter } => println!("pdf: {} (printed by {})", path.display(), converter.display()),
        Pdf::NoConverter => println!(
            "pdf: not written: no converter found (install Chromium: `apt-get install chromium`; {} on PATH)",
            report::output::CONVERTERS.join(" or ")
        ),
        Pdf::Failed { converter, reason } => println!("pdf: not written: {}: {reason}", converter.display()),
    }
    for n in &data.not_gathered {
        println!("not gathered: {}: {}", n.section, n.reason);
    }
    let unreachable: Vec<&str> = data
        .bastion
        .iter()
        .chain(&data.hosts)
        .filter(|h| matches!(h.reach, report::data::Reach::Unreachable { .. }))
        .map(|h| h.name.as_str())
        .collect();
    if !unreachable.is_empty() {
        println!("unreachable (shown as such in the report): {}", unreachable.join(", "));
    }
    Ok(ExitCode::from(exit::OK))
}
