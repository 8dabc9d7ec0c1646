//! `-o text|json` for every command; JSON is printed in the one versioned shape of
//! `groundwork::ops::output` (`groundwork schema --report`).

use groundwork::ops::output::{Body, Report, to_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// The report as JSON on stdout (progress, if any, stays on stderr).
    Json,
}

impl Format {
    pub fn is_json(self) -> bool {
        self == Format::Json
    }
}

/// `-o/--output` for a command's arguments.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArg {
    /// Output: human-readable text, or the report as JSON on stdout (`groundwork schema --report`
    /// describes it).
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub format: Format,
}

impl OutputArg {
    pub fn json(self) -> bool {
        self.format.is_json()
    }
}

/// Prints `body` as the JSON report of `command` (as typed after `groundwork`).
pub fn print_json(command: &str, body: Body) {
    print!("{}", to_json(&Report::new(command, body)));
}

/// Prints `body` as the report of `command` in YAML (the same shape as the JSON).
pub fn print_yaml(command: &str, body: Body) -> anyhow::Result<()> {
    print!("{}", serde_yaml_ng::to_string(&Report::new(command, body))?);
    Ok(())
}
