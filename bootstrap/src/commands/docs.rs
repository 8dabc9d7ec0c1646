//! `groundwork completions SHELL` and `groundwork man --out DIR`: shell completion scripts and man
//! pages made from the command line's own definition, so they never drift from it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Where to write groundwork.1 and one page per subcommand (groundwork-apply.1, ...).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Prints the completion script for `args.shell` (e.g. `groundwork completions bash >
/// /etc/bash_completion.d/groundwork`).
pub fn completions(args: CompletionsArgs, mut cli: clap::Command) -> anyhow::Result<ExitCode> {
    let name = cli.get_name().to_string();
    clap_complete::generate(args.shell, &mut cli, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Writes a man page for the command and for every subcommand, at every depth.
pub fn man(args: ManArgs, cli: clap::Command) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut written = Vec::new();
    write_pages(&cli.clone(), &args.out, &mut written)?;
    for page in &written {
        println!("{}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `command`'s page (named after its path, `groundwork-bundle-build.1`), then its subcommands'.
fn write_pages(command: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    // Subcommands are named by their full path in their page's title and file name.
    let command = command.clone().disable_help_subcommand(true);
    let name = command.get_display_name().unwrap_or_else(|| command.get_name()).to_string();
    let mut buffer = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(name.to_uppercase())
        .source(format!("groundwork {}", env!("CARGO_PKG_VERSION")))
        .manual("groundwork manual")
        .render(&mut buffer)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buffer).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let sub = sub.clone().display_name(format!("{name}-{}", sub.get_name())).bin_name(format!(
            "{} {}",
            command.get_bin_name().unwrap_or(&name).replace('-', " "),
            sub.get_name()
        ));
        write_pages(&sub, dir, written)?;
    }
    Ok(())
}
