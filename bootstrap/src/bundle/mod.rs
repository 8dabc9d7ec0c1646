//! The offline bundle an air-gapped operator brings (`packages.bundle` in the inventory): a
//! directory with `manifest.json` (what each artifact is, where it goes, its SHA-256 and size),
//! `SHA256SUMS` (the same sums, for `sha256sum -c`) and the artifacts themselves: binaries,
//! Debian packages and container image tarballs. The lab builds one with `tests/lab/bundle`.
//!
//! [`Bundle::open`] reads and cross-checks the two lists without reading the artifacts (cheap:
//! do it first, always); [`Bundle::verify`] hashes every file (hundreds of MB: do it once before
//! anything is uploaded to the nodes).

pub mod apt;
pub mod build;
pub mod manifest;
pub mod openpgp;
pub mod signature;
mod sums;
mod verify;
pub mod write;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

pub use manifest::{Artifact, ArtifactKind, FORMAT, Manifest};
pub use verify::{Verified, VerifyProblem, hash_file};

pub const MANIFEST: &str = "manifest.json";
pub const SUMS: &str = "SHA256SUMS";

/// What to do about a bundle whose files do not agree with each other.
const REBUILD: &str =
    "rebuild the bundle (in the lab: tests/lab/bundle --force) or copy it again from the operator's media";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "{} is not an offline bundle: it has no {MANIFEST}; point `packages.bundle` at the directory \
         that holds {MANIFEST} and {SUMS} (the lab builds one with tests/lab/bundle)",
        dir.display()
    )]
    NoManifest { dir: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is not a valid bundle manifest: {source}; {REBUILD}", path.display())]
    Manifest { path: PathBuf, source: serde_json::Error },
    #[error(
        "{} is bundle format {found}, this groundwork reads format {FORMAT} only; use the groundwork \
         release the bundle was made for, or a bundle made for this release",
        path.display()
    )]
    UnsupportedFormat { path: PathBuf, found: u64 },
    #[error(
        "artifact `{name}`: its path `{path}` {reason}; every path in a bundle is relative and stays \
         inside the bundle's directory. Do not use this bundle: {REBUILD}"
    )]
    PathEscapes { name: String, path: String, reason: &'static str },
    #[error("artifact `{name}` is listed more than once in {MANIFEST}; {REBUILD}")]
    DuplicateArtifact { name: String },
    #[error("artifact `{name}` in {MANIFEST}: {problem}; {REBUILD}")]
    InvalidArtifact { name: String, problem: String },
    #[error("{} is missing; every bundle carries it beside {MANIFEST}: {REBUILD}", path.display())]
    NoSums { path: PathBuf },
    #[error("{}, line {line}: `{text}` is not a `SHA256  PATH` line; {REBUILD}", path.display())]
    SumsLine { path: PathBuf, line: usize, text: String },
    #[error(
        "artifact `{name}` ({path}) has no sum in {SUMS}: the manifest and {SUMS} are not from the \
         same build; {REBUILD}"
    )]
    NotInSums { name: String, path: String },
    #[error(
        "{path}: {MANIFEST} says sha256 {manifest}, {SUMS} says {sums}: the two are not from the same \
         build; {REBUILD}"
    )]
    SumsDisagree { path: String, manifest: String, sums: String },
    #[error("{SUMS} lists {path}, which {MANIFEST} does not name; {REBUILD}")]
    NotInManifest { path: String },
    #[error(
        "the bundle {} does not match its manifest ({} of its files):\n{}\n{REBUILD}",
        dir.display(),
        problems.len(),
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Verify { dir: PathBuf, problems: Vec<VerifyProblem> },
}

/// An opened bundle whose manifest and `SHA256SUMS` agree and whose paths stay inside it.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
}

impl Bundle {
    /// Reads `dir/manifest.json` and `dir/SHA256SUMS` and checks them against each other: the
    /// format version, every artifact path relative and inside `dir` (also through symbolic
    /// links), names unique, sums well-formed, and both files listing the same files with the
    /// same sums. The artifacts themselves are not read: that is [`Bundle::verify`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = read_manifest(&dir)?;
        check_artifacts(&dir, &manifest)?;
        check_sums(&dir, &manifest)?;
        Ok(Bundle { dir, manifest })
    }

    /// Hashes every artifact and compares it with the manifest. All problems are reported at
    /// once, each naming the file and both sums.
    pub fn verify(&self) -> Result<Verified, BundleError> {
        verify::check_all(&self.dir, &self.manifest.artifacts)
            .map_err(|problems| BundleError::Verify { dir: self.dir.clone(), problems })
    }

    /// [`verify`](Self::verify), skipping files unchanged since the verification kept in `memo`;
    /// with `record`, `memo` is updated.
    pub fn verify_remembered(&self, memo: &Path, record: bool) -> Result<Verified, BundleError> {
        verify::check_all_remembered(&self.dir, &self.manifest.artifacts, memo, record)
            .map_err(|problems| BundleError::Verify { dir: self.dir.clone(), problems })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn kubernetes_version(&self) -> &str {
        &self.manifest.kubernetes_version
    }

    pub fn artifacts(&self) -> &[Artifact] {
        &self.manifest.artifacts
    }

    /// The artifact called `name` (`kubeadm`, `etcd`, `kubernetes-images`).
    pub fn artifact(&self, name: &str) -> Option<&Artifact> {
        self.manifest.artifacts.iter().find(|a| a.name == name)
    }

    /// The artifacts of one kind, in manifest order.
    pub fn of_kind(&self, kind: ArtifactKind) -> impl Iterator<Item = &Artifact> {
        self.manifest.artifacts.iter().filter(move |a| a.kind == kind)
    }

    /// Every image reference the bundle's image tarballs hold, in manifest order.
    pub fn images(&self) -> Vec<&str> {
        self.of_kind(ArtifactKind::Images).flat_map(|a| a.images.iter().map(String::as_str)).collect()
    }

    /// Where `artifact`'s file is on this machine.
    pub fn path_of(&self, artifact: &Artifact) -> PathBuf {
        self.dir.join(&artifact.path)
    }
}

fn read_manifest(dir: &Path) -> Result<Manifest, BundleError> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::NoManifest { dir: dir.to_path_buf() });
        }
        Err(source) => return Err(BundleError::Read { path, source }),
    };
    // The version first, on its own: a newer format may not parse as this one, and "format 2"
    // says more than whatever field it trips on.
    #[derive(Deserialize)]
    struct Version {
        format: u64,
    }
    let version: Version =
        serde_json::from_slice(&bytes).map_err(|source| BundleError::Manifest { path: path.clone(), source })?;
    if version.format != FORMAT {
        return Err(BundleError::UnsupportedFormat { path, found: version.format });
    }
    serde_json::from_slice(&bytes).map_err(|source| BundleError::Manifest { path, source })
}

fn check_artifacts(dir: &Path, manifest: &Manifest) -> Result<(), BundleError> {
    let root = dir.canonicalize().map_err(|source| BundleError::Read { path: dir.to_path_buf(), source })?;
    let mut names = BTreeSet::new();
    for a in &manifest.artifacts {
        let invalid = |problem: String| BundleError::InvalidArtifact { name: a.name.clone(), problem };
        if a.name.is_empty() {
            return Err(invalid(format!("the artifact with path `{}` has an empty name", a.path)));
        }
        if !names.insert(a.name.as_str()) {
            return Err(BundleError::DuplicateArtifact { name: a.name.clone() });
        }
        if a.path.is_empty() || a.path.ends_with('/') {
            return Err(invalid(format!("path `{}` does not name a file", a.path)));
        }
        check_path(&root, a)?;
        if !sums::is_sha256(&a.sha256) {
            return Err(invalid(format!("sha256 `{}` is not 64 hex digits", a.sha256)));
        }
        if a.kind == ArtifactKind::Images && a.images.is_empty() {
            return Err(invalid("an `images` artifact must list the images it holds".into()));
        }
        if let Some(to) = &a.install_to
            && !to.starts_with('/')
        {
            return Err(invalid(format!("installTo `{to}` is not an absolute path")));
        }
    }
    Ok(())
}

/// Relative, no `..`, and (when the file exists) not a symbolic link out of the bundle.
fn check_path(root: &Path, a: &Artifact) -> Result<(), BundleError> {
    let escapes = |reason| BundleError::PathEscapes { name: a.name.clone(), path: a.path.clone(), reason };
    let rel = Path::new(&a.path);
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(escapes("contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(escapes("is absolute")),
        }
    }
    // A missing file is reported by `verify`, with the others.
    if let Ok(real) = root.join(rel).canonicalize()
        && !real.starts_with(root)
    {
        return Err(escapes("leads out of the bundle through a symbolic link"));
    }
    Ok(())
}

fn check_sums(dir: &Path, manifest: &Manifest) -> Result<(), BundleError> {
    let path = dir.join(SUMS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BundleError::NoSums { path }),
        Err(source) => return Err(BundleError::Read { path, source }),
    };
    let mut listed: BTreeMap<String, String> = sums::parse(&text).map_err(|bad| BundleError::SumsLine {
        path: path.clone(),
        line: bad.line,
        text: bad.text,
    })?;
    for a in &manifest.artifacts {
        let key = sums::normalize(&a.path);
        let Some(sum) = listed.remove(key) else {
            return Err(BundleError::NotInSums { name: a.name.clone(), path: a.path.clone() });
        };
        if sum != a.sha256.to_ascii_lowercase() {
            return Err(BundleError::SumsDisagree { path: a.path.clone(), manifest: a.sha256.clone(), sums: sum });
        }
    }
    if let Some(extra) = listed.into_keys().next() {
        return Err(BundleError::NotInManifest { path: extra });
    }
    Ok(())
}
