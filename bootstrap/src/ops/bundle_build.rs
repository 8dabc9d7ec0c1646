//! `bundle build`: an offline bundle made from the official release downloads, on a machine with
//! internet access and docker. kubeadm, kubelet and kubectl come from dl.k8s.io, etcd, etcdctl, etcdutl
//! from etcd's GitHub release, the images are the ones kubeadm names for its version (pulled and
//! `docker save`d); then `SHA256SUMS` and `manifest.json` are written, and the result is opened and
//! verified like any bundle `apply` is given. Artifact names, kinds, paths and roles are those of
//! the lab's bundle (tests/lab/bundle), so `apply` consumes both alike.
//!
//! Running again into the same directory reuses what is still right: a Kubernetes binary whose sum
//! is the published one; etcd's binaries or an image archive when the previous manifest records the
//! same source (the same archive sum, the same image ids) and the file still has its recorded sum.

use std::path::{Path, PathBuf};

use crate::bundle::build::download::{DownloadError, Downloader, Fetched};
use crate::bundle::build::etcd::{self, ExtractError};
use crate::bundle::build::images::{self, Docker, ImageError};
use crate::bundle::build::release::{self, Release, ReleaseError, SumsError};
use crate::bundle::write::{self, WriteError};
use crate::bundle::{Artifact, ArtifactKind, Bundle, BundleError, FORMAT, Manifest, Verified, hash_file};

pub const KUBERNETES_BINARIES: [&str; 3] = ["kubeadm", "kubelet", "kubectl"];
pub const ETCD_BINARIES: [&str; 3] = ["etcd", "etcdctl", "etcdutl"];
pub const CONTROL_PLANE_IMAGES: &str = "images/control-plane-images.tar";
pub const NODE_IMAGES: &str = "images/node-images.tar";
const INSTALL_DIR: &str = "/usr/local/bin";
const MASTER: &str = "master";
/// Where the etcd archive is downloaded to and unpacked from; removed once etcd is extracted.
const WORK_DIR: &str = ".build";

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `v1.33.3` (the `v` is optional).
    pub kubernetes_version: String,
    /// `3.5.16` (a `v` is accepted).
    pub etcd_version: String,
    pub arch: String,
    /// The bundle directory, created if missing.
    pub out: PathBuf,
    /// Base of the Kubernetes release layout (`https://dl.k8s.io`).
    pub kubernetes_url: String,
    /// Base of etcd's release downloads (`https://github.com/etcd-io/etcd/releases/download`).
    pub etcd_url: String,
    /// `docker pull` the images first; when false they must be local already.
    pub pull: bool,
    /// The docker CLI.
    pub docker: PathBuf,
}

/// How an artifact came to be in the bundle this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub enum How {
    Downloaded,
    /// Out of the downloaded etcd archive.
    Extracted,
    /// `docker save`.
    Saved,
    /// Already there and right: nothing was fetched or written.
    Reused,
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Built {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// How each artifact came to be, in manifest order.
    pub how: Vec<How>,
    /// Images kubeadm lists that the bundle does not carry (etcd's: it runs from `bin/etcd`).
    pub not_bundled: Vec<String>,
    pub verified: Verified,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("{url} is not a checksum file: expected 64 hex digits, got `{text}`")]
    NotASha256File { url: String, text: String },
    #[error("{url}: {problem}")]
    Sums { url: String, problem: SumsError },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Images(#[from] ImageError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("the bundle just built does not pass its own checks: {0}")]
    Bundle(#[from] BundleError),
    #[error("cannot {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("a background task failed: {0}")]
    Task(String),
}

/// Builds (or brings up to date) the bundle in `opts.out`; `progress` is told each step.
pub async fn build(opts: &BuildOptions, progress: &(dyn Fn(&str) + Sync)) -> Result<Built, BuildError> {
    let release =
        Release::new(&opts.kubernetes_version, &opts.etcd_version, &opts.arch, &opts.kubernetes_url, &opts.etcd_url)?;
    let out = opts.out.as_path();
    for dir in [out.join("bin"), out.join("images")] {
        std::fs::create_dir_all(&dir).map_err(|source| BuildError::Io { what: "create", path: dir, source })?;
    }
    let previous = Bundle::open(out).ok().map(|b| b.manifest().clone());
    let downloader = Downloader::new()?;

    // Every published checksum first: a wrong version or URL fails before hundreds of MB are fetched.
    let mut published = Vec::new();
    for name in KUBERNETES_BINARIES {
        published.push(published_sha256(&downloader, &release.kubernetes_sha256_url(name)).await?);
    }
    let sums_url = release.etcd_sums_url();
    let etcd_archive_sum = release::sum_in_sums_file(&downloader.text(&sums_url).await?, &release.etcd_archive_name())
        .map_err(|problem| BuildError::Sums { url: sums_url, problem })?;

    let mut built = Vec::new();
    for (name, sum) in KUBERNETES_BINARIES.into_iter().zip(&published) {
        built.push(kubernetes_binary(&downloader, &release, name, sum, out, progress).await?);
    }
    built.extend(etcd_binaries(&downloader, &release, &etcd_archive_sum, out, previous.as_ref(), progress).await?);
    let (image_artifacts, not_bundled) = image_archives(opts, &release, previous.as_ref(), progress).await?;
    built.extend(image_artifacts);

    let (artifacts, how): (Vec<Artifact>, Vec<How>) = built.into_iter().unzip();
    let manifest = Manifest {
        format: FORMAT,
        name: format!("kubernetes-{}-{}", release.kubernetes_version, release.arch),
        kubernetes_version: release.kubernetes_version.clone(),
        recipe: None,
        artifacts,
    };
    write::write(out, &manifest)?;
    progress("verifying the bundle (Bundle::open, then every file's sha256)");
    let dir = out.to_path_buf();
    let verified = blocking(move || Bundle::open(&dir)?.verify()).await?;
    Ok(Built { dir: out.to_path_buf(), manifest, how, not_bundled, verified })
}

async fn published_sha256(downloader: &Downloader, url: &str) -> Result<String, BuildError> {
    let text = downloader.text(url).await?;
    release::parse_sha256_file(&text).ok_or_else(|| BuildError::NotASha256File {
        url: url.to_string(),
        text: text.chars().take(80).collect::<String>().trim().to_string(),
    })
}

async fn kubernetes_binary(
    downloader: &Downloader,
    release: &Release,
    name: &str,
    published: &str,
    out: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Artifact, How), BuildError> {
    let url = release.kubernetes_binary_url(name);
    let path = format!("bin/{name}");
    let dest = out.join(&path);
    let (fetched, how) = match file_sum(&dest).await? {
        Some(present) if present.sha256 == published => {
            progress(&format!("{path}: already there with the published sha256"));
            (present, How::Reused)
        }
        _ => {
            progress(&format!("{path}: downloading {url}"));
            (downloader.to_file(&url, &dest, published, 0o755).await?, How::Downloaded)
        }
    };
    let artifact = binary(name, fetched, &release.kubernetes_version, url, vec![]);
    Ok((artifact, how))
}

async fn etcd_binaries(
    downloader: &Downloader,
    release: &Release,
    archive_sum: &str,
    out: &Path,
    previous: Option<&Manifest>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<(Artifact, How)>, BuildError> {
    let url = release.etcd_archive_url();
    let source = format!("{url} (sha256 {archive_sum})");
    if let Some(reused) = reusable(previous, &ETCD_BINARIES, &source, out).await? {
        progress("bin/etcd, bin/etcdctl, bin/etcdutl: already there, from the same etcd archive");
        return Ok(reused.into_iter().map(|a| (a, How::Reused)).collect());
    }
    let work = out.join(WORK_DIR);
    std::fs::create_dir_all(&work).map_err(|source| BuildError::Io { what: "create", path: work.clone(), source })?;
    let archive = work.join(release.etcd_archive_name());
    progress(&format!("etcd: downloading {url}"));
    downloader.to_file(&url, &archive, archive_sum, 0o644).await?;
    progress(&format!("bin/etcd, bin/etcdctl, bin/etcdutl: extracting from {}", release.etcd_archive_name()));
    let (top, bin) = (release.etcd_dir(), out.join("bin"));
    let fetched = blocking(move || etcd::extract(&archive, &top, &ETCD_BINARIES, &bin)).await?;
    std::fs::remove_dir_all(&work).map_err(|source| BuildError::Io { what: "remove", path: work, source })?;
    Ok(ETCD_BINARIES
        .into_iter()
        .zip(fetched)
        .map(|(name, f)| (binary(name, f, &release.etcd_version, source.clone(), vec![MASTER.into()]), How::Extracted))
        .collect())
}

/// The control-plane images (masters) and the rest (every node), as the lab's bundle splits them.
async fn image_archives(
    opts: &BuildOptions,
    release: &Release,
    previous: Option<&Manifest>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Vec<(Artifact, How)>, Vec<String>), BuildError> {
    let (kubeadm, version, arch) =
        (opts.out.join("bin/kubeadm"), release.kubernetes_version.clone(), release.arch.clone());
    let listed = blocking(move || images::kubeadm_images(&kubeadm, &version, &arch)).await?;
    let split = images::split(&listed);
    let groups = [
        ("control-plane-images", CONTROL_PLANE_IMAGES, split.control_plane, vec![MASTER.to_string()]),
        ("node-images", NODE_IMAGES, split.every_node, vec![]),
    ];
    let docker = Docker::new(&opts.docker);
    let mut built = Vec::new();
    for (name, path, references, roles) in groups {
        if references.is_empty() {
            continue;
        }
        let mut ids = Vec::new();
        for reference in &references {
            let (docker, reference, arch) = (docker.clone(), reference.clone(), release.arch.clone());
            if opts.pull {
                progress(&format!("pulling {reference}"));
            }
            let pull = opts.pull;
            ids.push(
                blocking(move || {
                    if pull {
                        docker.pull(&reference, &arch)?;
                    }
                    docker.local_id(&reference, &arch)
                })
                .await?,
            );
        }
        let source = format!(
            "docker save of {}",
            references.iter().zip(&ids).map(|(r, id)| format!("{r} ({id})")).collect::<Vec<_>>().join(", ")
        );
        let (fetched, how) = match reusable(previous, &[name], &source, &opts.out).await? {
            Some(mut same) => {
                progress(&format!("{path}: already there, from the same images"));
                let a = same.remove(0);
                (Fetched { sha256: a.sha256, size: a.size }, How::Reused)
            }
            None => {
                progress(&format!("{path}: docker save of {} images", references.len()));
                let (docker, refs, dest) = (docker.clone(), references.clone(), opts.out.join(path));
                blocking(move || docker.save(&refs, &dest)).await?;
                let saved = file_sum(&opts.out.join(path)).await?.ok_or_else(|| BuildError::Io {
                    what: "find the saved",
                    path: opts.out.join(path),
                    source: std::io::ErrorKind::NotFound.into(),
                })?;
                (saved, How::Saved)
            }
        };
        let artifact = Artifact {
            name: name.into(),
            kind: ArtifactKind::Images,
            path: path.into(),
            sha256: fetched.sha256,
            size: fetched.size,
            version: None,
            install_to: None,
            images: references,
            roles,
            source: Some(source),
        };
        built.push((artifact, how));
    }
    Ok((built, split.not_bundled))
}

fn binary(name: &str, fetched: Fetched, version: &str, source: String, roles: Vec<String>) -> Artifact {
    Artifact {
        name: name.into(),
        kind: ArtifactKind::Binary,
        path: format!("bin/{name}"),
        sha256: fetched.sha256,
        size: fetched.size,
        version: Some(version.into()),
        install_to: Some(format!("{INSTALL_DIR}/{name}")),
        images: vec![],
        roles,
        source: Some(source),
    }
}

/// The previous manifest's artifacts called `names`, if each was made from `source` and its file
/// still has the recorded sum and size.
async fn reusable(
    previous: Option<&Manifest>,
    names: &[&str],
    source: &str,
    out: &Path,
) -> Result<Option<Vec<Artifact>>, BuildError> {
    let Some(previous) = previous else { return Ok(None) };
    let mut same = Vec::new();
    for name in names {
        let Some(a) = previous.artifacts.iter().find(|a| a.name == *name && a.source.as_deref() == Some(source)) else {
            return Ok(None);
        };
        match file_sum(&out.join(&a.path)).await? {
            Some(f) if f.sha256 == a.sha256 && f.size == a.size => same.push(a.clone()),
            _ => return Ok(None),
        }
    }
    Ok(Some(same))
}

/// The file's sum and size, or None when there is no file.
async fn file_sum(path: &Path) -> Result<Option<Fetched>, BuildError> {
    let path = path.to_path_buf();
    blocking(move || match hash_file(&path) {
        Ok((sha256, size)) => Ok(Some(Fetched { sha256, size })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BuildError::Io { what: "read", path, source }),
    })
    .await
}

/// Hashing hundreds of MB, unpacking, and docker run off the async workers.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, BuildError>
where
    T: Send + 'static,
    E: Into<BuildError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| BuildError::Task(e.to_string()))?.map_err(Into::into)
}
