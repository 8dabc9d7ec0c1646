use std::io::Write;
use std::process::ExitCode;

/// Print a JSON Schema: the inventory's (point yaml-language-server at it for completion and hover
/// help), or with --report the shape of every command's `-o json`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The schema of the reports `-o json` prints (committed as schema/report.json).
    #[arg(long)]
    pub report: bool,
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let text =
        if args.report { groundwork::ops::output::schema_json() } else { groundwork::ops::schema::schema_json() };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
