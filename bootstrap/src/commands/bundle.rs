//! `groundwork bundle build|keygen|sign|verify`: the offline bundle from the official release
//! downloads, and who made it (a signature an inventory can pin).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use groundwork::bundle::apt::OsRelease;
use groundwork::bundle::build::release::{ARCHES, ETCD_URL, KUBERNETES_URL};
use groundwork::bundle::signature::{self, TrustedKey};
use groundwork::ops::bundle_build::{self, BuildOptions, Built, How};
use groundwork::ops::bundle_packages::{self, Packaged, PackagesOptions};
use groundwork::ops::bundle_trust::{self, BundleTrust};
use groundwork::ops::output::{Body, BundleBuild, BundleKey};
use groundwork::secrets::Secret;

use super::output::{OutputArg, print_json};

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
    /// Make a signing key pair for bundles: the secret key in FILE (mode 0600), the public key in
    /// FILE.pub, both in minisign's format (`minisign -Vm SHA256SUMS -p FILE.pub` checks a
    /// signature as groundwork does).
    ///
    /// The secret key is encrypted with the password in GROUNDWORK_BUNDLE_KEY_PASSWORD (read from
    /// the environment, never from a flag), unless --unencrypted. Keep it off the site's machines.
    /// Pin the public key in the inventory: `packages.bundleKey: {file: FILE.pub}`.
    Keygen(KeygenArgs),
    /// Sign a bundle's SHA256SUMS (writes SHA256SUMS.minisig), after checking every file against
    /// it. An encrypted key's password comes from GROUNDWORK_BUNDLE_KEY_PASSWORD.
    Sign(SignArgs),
    /// Check a bundle as `apply` does before it touches a host: the signature by the given public
    /// key, then every file against SHA256SUMS.
    Verify(VerifyArgs),
    /// Put every OS package groundwork installs, with its whole dependency closure, into a bundle:
    /// one apt repository per OS release (apt/<os>/), signed with the bundle's key in OpenPGP form
    /// so that apt on the nodes checks it; then the bundle is signed again with that key.
    ///
    /// Runs apt-get on this machine in a private directory (Debian with apt; the machine's own apt
    /// state is not touched), resolving against an empty system so that a bare node lacks nothing.
    Packages(PackagesArgs),
}

#[derive(Debug, clap::Args)]
pub struct PackagesArgs {
    /// The bundle's directory (its other artifacts are kept).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// An OS release to carry packages for (repeat for more): debian-12, debian-13.
    #[arg(long = "os", value_name = "RELEASE", required = true)]
    pub releases: Vec<String>,
    /// The Debian archive (a mirror in the site's network, or the public one).
    #[arg(long, value_name = "URL", default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// The bundle's secret key (`groundwork bundle keygen`); an encrypted key's password comes
    /// from GROUNDWORK_BUNDLE_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The secret key's file (the public key goes to FILE.pub). Neither is ever overwritten.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Leave the secret key unencrypted (for a key kept offline, or a lab).
    #[arg(long)]
    pub unencrypted: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The secret key (made by `groundwork bundle keygen` or `minisign -G`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The bundle's directory.
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The public key the bundle must be signed with (a `.pub` file, or its `RW...` line).
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// The bundle's directory.
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub output: OutputArg,
}

/// The environment variable an encrypted signing key's password is read from.
const PASSWORD_VARIABLE: &str = "GROUNDWORK_BUNDLE_KEY_PASSWORD";

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
    /// Also put every OS package for this OS release into the bundle, as `bundle packages` does
    /// (repeat for more): debian-12, debian-13. Needs --key.
    #[arg(long = "os", value_name = "RELEASE", requires = "key")]
    pub releases: Vec<String>,
    /// The Debian archive the OS packages come from.
    #[arg(long, value_name = "URL", default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// The bundle's secret key, to sign the packages' repository and the bundle (with --os).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArg,
}

pub fn run(args: BundleArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        BundleAction::Build(a) => build(a),
        BundleAction::Keygen(a) => keygen(a),
        BundleAction::Sign(a) => sign(a),
        BundleAction::Verify(a) => verify(a),
        BundleAction::Packages(a) => packages(a),
    }
}

fn packages(args: PackagesArgs) -> anyhow::Result<ExitCode> {
    let json = args.output.json();
    let (bundle, done) = add_packages(args)?;
    if json {
        print_json("bundle packages", Body::BundlePackages(done));
    } else {
        print_packaged(&bundle, &done);
    }
    Ok(ExitCode::SUCCESS)
}

fn add_packages(args: PackagesArgs) -> anyhow::Result<(PathBuf, Packaged)> {
    let releases = args.releases.iter().map(|r| OsRelease::find(r)).collect::<Result<Vec<_>, _>>()?;
    let opts = PackagesOptions { bundle: args.bundle, releases, mirror: args.mirror, key: args.key };
    let password = Secret::from_env(PASSWORD_VARIABLE);
    let progress = |step: &str| eprintln!("bundle: {step}");
    let done = bundle_packages::add(&opts, password.as_ref(), &progress)
        .with_context(|| format!("adding OS packages to the bundle in {}", opts.bundle.display()))?;
    Ok((opts.bundle, done))
}

fn print_packaged(bundle: &std::path::Path, done: &Packaged) {
    for a in &done.added {
        println!(
            "{}: apt/{} with {} packages ({} MiB), signed for apt with the bundle key",
            bundle.display(),
            a.os.id,
            a.packages,
            mib(a.bytes)
        );
    }
    println!(
        "  {} files ({} MiB) signed by key {}: {}",
        done.verified.files,
        mib(done.verified.bytes),
        done.signed.key_id,
        done.signed.trusted_comment
    );
}

fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let password = Secret::from_env(PASSWORD_VARIABLE);
    if password.is_none() && !args.unencrypted {
        anyhow::bail!(
            "no password for the new key: set {PASSWORD_VARIABLE} (read from the environment, never a flag), or \
             pass --unencrypted for a key kept offline; nothing was written"
        );
    }
    let password = if args.unencrypted { None } else { password };
    let key = signature::generate(&args.key, password.as_ref())?;
    if args.output.json() {
        let report = BundleKey {
            secret_key: args.key.clone(),
            encrypted: password.is_some(),
            public_key_file: signature::pub_file(&args.key),
            key_id: key.id().to_string(),
            public_key: key.to_base64(),
        };
        print_json("bundle keygen", Body::BundleKey(report));
        return Ok(ExitCode::SUCCESS);
    }
    println!("secret key: {} ({})", args.key.display(), if password.is_some() { "encrypted" } else { "not encrypted" });
    println!("public key: {} (key id {})", signature::pub_file(&args.key).display(), key.id());
    println!("pin it in the inventory:  packages.bundleKey: {}", key.to_base64());
    Ok(ExitCode::SUCCESS)
}

fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let password = Secret::from_env(PASSWORD_VARIABLE);
    eprintln!("bundle: checking every file of {} against its sums before signing", args.bundle.display());
    let (signed, verified) = bundle_trust::sign(&args.bundle, &args.key, password.as_ref())
        .with_context(|| format!("signing the bundle in {}", args.bundle.display()))?;
    if args.output.json() {
        print_json("bundle sign", Body::BundleSignature(trust(args.bundle, signed, verified)));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: signed by key {} ({} files, {} MiB)\n  trusted comment: {}",
        args.bundle.join(signature::SIGNATURE).display(),
        signed.key_id,
        verified.files,
        mib(verified.bytes),
        signed.trusted_comment
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = match std::fs::read_to_string(&args.key) {
        Ok(text) => TrustedKey::parse(&text)?,
        Err(_) => TrustedKey::parse(&args.key)?,
    };
    let (signed, verified) = bundle_trust::verify(&args.bundle, &key)?;
    if args.output.json() {
        print_json("bundle verify", Body::BundleSignature(trust(args.bundle, signed, verified)));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: good signature by key {}, {} files ({} MiB) match SHA256SUMS\n  trusted comment: {}",
        args.bundle.display(),
        signed.key_id,
        verified.files,
        mib(verified.bytes),
        signed.trusted_comment
    );
    Ok(ExitCode::SUCCESS)
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
    let json = args.output.json();
    if !json {
        print_summary(&built);
    }
    let packages = match args.key {
        Some(key) if !args.releases.is_empty() => {
            let more = PackagesArgs {
                bundle: opts.out,
                releases: args.releases,
                mirror: args.mirror,
                key,
                output: args.output,
            };
            let (bundle, done) = add_packages(more)?;
            if !json {
                print_packaged(&bundle, &done);
            }
            Some(done)
        }
        _ => None,
    };
    if json {
        print_json("bundle build", Body::BundleBuilt(BundleBuild { built, packages }));
    }
    Ok(ExitCode::SUCCESS)
}

/// A signed and verified bundle, as the reports of `apply` show one.
fn trust(dir: PathBuf, signed: signature::Signed, verified: groundwork::bundle::Verified) -> BundleTrust {
    BundleTrust { dir, signed_by: Some(signed), unchecked: None, files: verified.files, bytes: verified.bytes }
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
