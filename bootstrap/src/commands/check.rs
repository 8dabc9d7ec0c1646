use std::process::ExitCode;

use groundwork::ops::check::{CheckReport, CheckSettings, Status, evaluate};
use groundwork::ops::output::Body;

use super::connect_args::ConnectArgs;
use super::exit;
use super::table::Table;

/// Check every host against its role's hardware baseline, and the cluster as a whole; refuses
/// (exit code 1) when anything fails.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub output: Format,
    /// Largest clock offset between a host and this machine that passes, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub max_clock_skew: i64,
    /// Show only warnings and failures.
    #[arg(long)]
    pub problems: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let (loaded, reports) = args.connect.gather("check", args.output == Format::Table)?;
    let report = evaluate(
        &loaded.inventory,
        &reports,
        &CheckSettings { max_clock_skew_ms: args.max_clock_skew, ..CheckSettings::default() },
    );
    let code = if report.passed() { exit::OK } else { exit::FAILED };
    match args.output {
        Format::Json => super::output::print_json("check", Body::Check(report)),
        Format::Table => print_report(&report, args.problems),
    }
    Ok(ExitCode::from(code))
}

fn word(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
    }
}

pub fn print_report(report: &CheckReport, problems_only: bool) {
    for line in &report.baseline_relaxations {
        println!("{line}");
    }
    if !report.baseline_relaxations.is_empty() {
        println!();
    }
    let mut t = Table::new(["HOST", "CHECK", "STATUS", "MEASURED", "REQUIRED"]);
    let mut advice = Vec::new();
    let rows = report
        .hosts
        .iter()
        .flat_map(|h| h.findings.iter().map(move |f| (format!("{} ({})", h.name, h.roles.join(",")), f)))
        .chain(report.cluster.iter().map(|f| ("cluster".to_string(), f)));
    for (who, f) in rows {
        if let Some(a) = &f.advice {
            advice.push(format!("{} {who} {}: {a}", word(f.status), f.check));
        }
        if problems_only && f.status == Status::Pass {
            continue;
        }
        t.row([who, f.check.to_string(), word(f.status).to_string(), f.measured.clone(), f.required.clone()]);
    }
    print!("{}", t.render());
    if !advice.is_empty() {
        println!();
        for a in &advice {
            println!("{a}");
        }
    }
    println!();
    let (fails, warns) = (report.count(Status::Fail), report.count(Status::Warn));
    if fails == 0 {
        println!("check passed: {} hosts, {warns} warning(s)", report.hosts.len());
    } else {
        let failing: Vec<&str> = report
            .hosts
            .iter()
            .filter(|h| h.findings.iter().any(|f| f.status == Status::Fail))
            .map(|h| h.name.as_str())
            .collect();
        println!(
            "check FAILED: {fails} failure(s) on {} host(s) ({}), {warns} warning(s); fix them before `apply`",
            failing.len(),
            failing.join(", ")
        );
    }
}
