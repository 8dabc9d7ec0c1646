//! `bundle packages`: every OS package groundwork installs, with its whole dependency closure, put
//! into an existing bundle as one signed apt repository per OS release (`bundle::apt`), then the
//! bundle's manifest and `SHA256SUMS` rewritten and signed again with the same key, so the
//! repositories are covered by the bundle's signature too. Run where the bundle is built (Debian
//! with apt, and a reachable archive or mirror). A repository already there for a release is
//! replaced; the bundle's other artifacts are kept as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bundle::apt::closure::{self, ArchiveSource};
use crate::bundle::apt::{AptError, OsRelease, repository};
use crate::bundle::signature::{self, SignatureError, Signed};
use crate::bundle::write::{self, WriteError};
use crate::bundle::{ArtifactKind, Bundle, BundleError, Verified};
use crate::inventory::Role;
use crate::secrets::Secret;

#[derive(Debug, Clone)]
pub struct PackagesOptions {
    pub bundle: PathBuf,
    pub releases: Vec<OsRelease>,
    /// The Debian archive's base URL (a mirror inside the site's network, or deb.debian.org).
    pub mirror: String,
    /// The bundle's secret key (it signs the repositories and, again, `SHA256SUMS`).
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot use {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// What went into the bundle, per release: packages and bytes.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Added {
    pub os: OsRelease,
    pub packages: usize,
    pub bytes: u64,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Packaged {
    pub added: Vec<Added>,
    pub signed: Signed,
    pub verified: Verified,
}

pub fn add(
    opts: &PackagesOptions,
    password: Option<&Secret>,
    progress: &dyn Fn(&str),
) -> Result<Packaged, PackagesError> {
    let bundle = Bundle::open(&opts.bundle)?;
    let key = signature::openpgp_key(&opts.key, password)?;
    let mut manifest = bundle.manifest().clone();
    let mut added = Vec::new();
    for os in &opts.releases {
        let prefix = format!("{}/", os.repository_dir());
        manifest.artifacts.retain(|a| !a.path.starts_with(&prefix));
        let wanted: BTreeMap<String, Vec<String>> = Role::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), crate::os_packages::for_role(*r, os.postgresql)))
            .collect();
        let work = opts.bundle.join(format!(".apt-work-{}", os.id));
        let source = ArchiveSource::debian(os, &opts.mirror);
        progress(&format!("{}: resolving what each role installs, from {}", os.id, source.mirror));
        let resolved = closure::resolve(&source, &wanted, &work, progress)?;
        let artifacts = repository::write(&opts.bundle, os, &resolved, &key, now())?;
        remove_dir(&work)?;
        let debs: Vec<_> = artifacts.iter().filter(|a| a.kind == ArtifactKind::Deb).collect();
        added.push(Added { os: *os, packages: debs.len(), bytes: debs.iter().map(|a| a.size).sum() });
        manifest.artifacts.extend(artifacts);
    }
    progress("writing manifest.json and SHA256SUMS, verifying and signing the bundle");
    write::write(&opts.bundle, &manifest)?;
    let verified = Bundle::open(&opts.bundle)?.verify()?;
    // Every release the bundle now carries, those added before included.
    let carried: std::collections::BTreeSet<&str> = manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::AptIndex)
        .filter_map(|a| a.name.split_once(':').map(|(os, _)| os))
        .collect();
    let comment = format!(
        "groundwork bundle {} (Kubernetes {}) with packages for {}, {} files",
        manifest.name,
        manifest.kubernetes_version,
        carried.into_iter().collect::<Vec<_>>().join(", "),
        verified.files
    );
    let signed = signature::sign(&opts.bundle, &opts.key, password, &comment)?;
    Ok(Packaged { added, signed, verified })
}

fn remove_dir(path: &Path) -> Result<(), PackagesError> {
    std::fs::remove_dir_all(path).map_err(|source| PackagesError::Io { path: path.to_path_buf(), source })
}

fn now() -> u32 {
    u32::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(u32::MAX)
}
