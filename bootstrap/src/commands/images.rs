//! `groundwork images push -i INV --from DIR`: image tarballs into the site registry.

use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::ops::images;
use groundwork::ops::output::Body;

use super::connect_args::ConnectArgs;
use super::facts::Format;

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub action: ImagesAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImagesAction {
    /// Push every image tarball in a directory (`docker save` archives, OCI image layouts; .tar,
    /// .tar.gz) into the site registry under the names they carry, each reported with its digest.
    Push {
        #[command(flatten)]
        connect: ConnectArgs,
        /// The directory of image tarballs.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Output format (table: one line per image as it lands).
        #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
        output: Format,
    },
}

pub fn run(args: ImagesArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        ImagesAction::Push { connect, from, output } => {
            let loaded = super::load_inventory(&connect.inventory)?;
            let opts = connect.facts_options(&loaded).transport;
            let table = output == Format::Table;
            let report = super::runtime()?.block_on(images::push(&loaded, opts, &from, |p| {
                if table {
                    let p = &p.pushed;
                    let sent = if p.blobs_uploaded == 0 {
                        "every blob already there".to_string()
                    } else {
                        format!(
                            "{} of {} blobs sent, {} bytes",
                            p.blobs_uploaded,
                            p.blobs_uploaded + p.blobs_present,
                            p.bytes_uploaded
                        )
                    };
                    println!("pushed {}  {}  ({sent})", p.stored_as, p.digest);
                }
            }))?;
            match output {
                Format::Json => super::output::print_json("images push", Body::Images(report)),
                Format::Yaml => super::output::print_yaml("images push", Body::Images(report))?,
                Format::Table => println!("{} image(s) in the registry at {}", report.images.len(), report.registry),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
