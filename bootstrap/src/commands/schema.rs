use std::io::Write;
use std::process::ExitCode;

/// Print the inventory's JSON Schema (point yaml-language-server at it for completion and hover help).
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {}

pub fn run(_: SchemaArgs) -> anyhow::Result<ExitCode> {
    std::io::stdout().write_all(groundwork::ops::schema::schema_json().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
