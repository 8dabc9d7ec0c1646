//! `groundwork bundle build`: the offline bundle from the official release downloads.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use groundwork::bundle::build::release::{ARCHES, ETCD_URL, KUBERNETES_URL};
use groundwork::ops::bundle_build::{self, BuildOptions, Built, How};

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub action: BundleAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum BundleAction {
    /// Build an offline bundle (for `packages.bundle`) from the official release downloads, on a
    /// machine with internet access and docker.
    ///
    /// Downloads kubeadm, kubelet and kubectl (checked against their published .sha256), etcd and
    /// etcdctl from etcd's release archive (checked against the release's SHA256SUMS), pulls the
    /// images the downloaded kubeadm lists for the version (etcd's excepted: etcd runs from the
    /// bundle's binary) and saves them into images/control-plane-images.tar (masters) and
    /// images/node-images.tar (every node); then writes manifest.json and SHA256SUMS and verifies
    /// the result. Running it again into the same directory fetches only what changed.
    Build(BuildArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Kubernetes version, e.g. v1.33.3.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes: String,
    /// etcd version, e.g. 3.5.16 (kubeadm 1.33 needs 3.5.11 or newer).
    #[arg(long, value_name = "VERSION")]
    pub etcd: String,
    /// The bundle directory (created if missing; an earlier bundle there is brought up to date).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The nodes' architecture. kubeadm is run on this machine to list the images, so build on one
    /// of the same architecture.
    #[arg(long, default_value = "amd64", value_parser = clap::builder::PossibleValuesParser::new(ARCHES))]
    pub arch: String,
    /// Base URL of the Kubernetes release layout ({URL}/release/VERSION/bin/linux/ARCH/NAME[.sha256]);
    /// a mirror of dl.k8s.io.
    #[arg(long, value_name = "URL", default_value = KUBERNETES_URL)]
    pub kubernetes_url: String,
    /// Base URL of etcd's releases ({URL}/vVERSION/etcd-vVERSION-linux-ARCH.tar.gz and SHA256SUMS).
    #[arg(long, value_name = "URL", default_value = ETCD_URL)]
    pub etcd_url: String,
    /// Do not `docker pull`: the images are already among docker's local images.
    #[arg(long)]
    pub no_pull: bool,
    /// The docker CLI that pulls and saves the images.
    #[arg(long, value_name = "PROGRAM", default_value = "docker")]
    pub docker: PathBuf,
}

pub fn run(args: BundleArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        BundleAction::Build(a) => build(a),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let opts = BuildOptions {
        kubernetes_version: args.kubernetes,
        etcd_version: args.etcd,
        arch: args.arch,
        out: args.out,
        kubernetes_url: args.kubernetes_url,
        etcd_url: args.etcd_url,
        pull: !args.no_pull,
        docker: args.docker,
    };
    let progress = |step: &str| eprintln!("bundle: {step}");
    let built = super::runtime()?
        .block_on(bundle_build::build(&opts, &progress))
        .with_context(|| format!("building the bundle in {}", opts.out.display()))?;
    print_summary(&built);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(built: &Built) {
    println!(
        "{}: bundle {} (Kubernetes {})",
        built.dir.display(),
        built.manifest.name,
        built.manifest.kubernetes_version
    );
    for (a, how) in built.manifest.artifacts.iter().zip(&built.how) {
        let how = match how {
            How::Downloaded => "downloaded",
            How::Extracted => "extracted",
            How::Saved => "saved",
            How::Reused => "unchanged",
        };
        let roles = if a.roles.is_empty() { "every node".to_string() } else { a.roles.join(", ") };
        println!("  {:<34} {:>9} MiB  {:<10} {roles}", a.path, mib(a.size), how);
        for image in &a.images {
            println!("    {image}");
        }
    }
    println!("  {:<34} {:>9} MiB  {} files, verified", "total", mib(built.verified.bytes), built.verified.files);
    for image in &built.not_bundled {
        println!("  not bundled: {image} (etcd runs from bin/etcd)");
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}
