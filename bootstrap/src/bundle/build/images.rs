//! The container images a bundle carries: the list kubeadm itself gives for its version
//! (`kubeadm config images list`), split by the nodes that need them, pulled and saved with the
//! docker CLI.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::download::part_path;

/// Images only masters run; everything else kubeadm lists (kube-proxy, pause) goes to every node.
pub const CONTROL_PLANE: &[&str] = &["kube-apiserver", "kube-controller-manager", "kube-scheduler", "coredns"];
/// etcd runs from the bundle's binary (`bin/etcd`), not from kubeadm's image.
pub const NOT_BUNDLED: &[&str] = &["etcd"];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot run {program}: {source}{hint}")]
    Spawn { program: String, source: std::io::Error, hint: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("`{command}` listed no images")]
    NoImages { command: String },
    #[error(
        "{reference} is not among docker's local images; without --no-pull it is pulled, or `docker load` \
         it first"
    )]
    NotLocal { reference: String },
    #[error("{reference} is a {found} image, the bundle is for linux/{arch}")]
    WrongPlatform { reference: String, found: String, arch: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// kubeadm's images, by the nodes that need them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImageSplit {
    pub control_plane: Vec<String>,
    pub every_node: Vec<String>,
    pub not_bundled: Vec<String>,
}

pub fn split(images: &[String]) -> ImageSplit {
    let mut split = ImageSplit::default();
    for image in images {
        let name = repository_name(image);
        let group = if NOT_BUNDLED.contains(&name) {
            &mut split.not_bundled
        } else if CONTROL_PLANE.contains(&name) {
            &mut split.control_plane
        } else {
            &mut split.every_node
        };
        group.push(image.clone());
    }
    split
}

/// `registry.k8s.io/coredns/coredns:v1.12.0` -> `coredns` (a registry's port is not a tag).
pub fn repository_name(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// One image reference per non-empty line.
pub fn parse_image_list(stdout: &str) -> Vec<String> {
    stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The images `kubeadm config images list` names for `version`. The downloaded kubeadm runs on
/// this machine, so it must be able to run here (the same architecture).
pub fn kubeadm_images(kubeadm: &Path, version: &str, arch: &str) -> Result<Vec<String>, ImageError> {
    let args = ["config", "images", "list", "--kubernetes-version", version];
    let hint = format!(
        "; the image list comes from the downloaded kubeadm, which is a linux/{arch} program: build the bundle \
         on a linux/{arch} machine"
    );
    let stdout = run(kubeadm, &args, &hint)?;
    let images = parse_image_list(&stdout);
    if images.is_empty() {
        return Err(ImageError::NoImages { command: command_line(kubeadm, &args) });
    }
    Ok(images)
}

/// The docker CLI (any program that takes docker's `pull`, `image inspect` and `save`).
#[derive(Debug, Clone)]
pub struct Docker {
    program: PathBuf,
}

const DOCKER_HINT: &str = "; is docker installed, and its daemon running? (--docker names another CLI)";

impl Docker {
    pub fn new(program: impl Into<PathBuf>) -> Docker {
        Docker { program: program.into() }
    }

    pub fn pull(&self, reference: &str, arch: &str) -> Result<(), ImageError> {
        run(&self.program, &["pull", "--quiet", "--platform", &format!("linux/{arch}"), reference], DOCKER_HINT)
            .map(drop)
    }

    /// The id of the local image `reference`, which must be a linux/`arch` image.
    pub fn local_id(&self, reference: &str, arch: &str) -> Result<String, ImageError> {
        let args = ["image", "inspect", "--format", "{{.Id}} {{.Os}}/{{.Architecture}}", reference];
        let stdout = match run(&self.program, &args, DOCKER_HINT) {
            Ok(out) => out,
            Err(ImageError::Failed { stderr, .. }) if stderr.to_ascii_lowercase().contains("no such image") => {
                return Err(ImageError::NotLocal { reference: reference.to_string() });
            }
            Err(e) => return Err(e),
        };
        let (id, platform) = stdout.trim().split_once(' ').unwrap_or((stdout.trim(), ""));
        if platform != format!("linux/{arch}") {
            return Err(ImageError::WrongPlatform {
                reference: reference.to_string(),
                found: platform.to_string(),
                arch: arch.to_string(),
            });
        }
        Ok(id.to_string())
    }

    /// `docker save` of `references` into `dest` (through `dest.part`), mode 0644.
    pub fn save(&self, references: &[String], dest: &Path) -> Result<(), ImageError> {
        let part = part_path(dest);
        let part_arg = part.to_string_lossy().into_owned();
        let mut args = vec!["save", "-o", part_arg.as_str()];
        args.extend(references.iter().map(String::as_str));
        let saved = run(&self.program, &args, DOCKER_HINT).and_then(|_| {
            let write = |source| ImageError::Write { path: dest.to_path_buf(), source };
            std::fs::set_permissions(&part, Permissions::from_mode(0o644)).map_err(write)?;
            std::fs::rename(&part, dest).map_err(write)
        });
        if saved.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        saved
    }
}

fn run(program: &Path, args: &[&str], hint: &str) -> Result<String, ImageError> {
    let out = Command::new(program).args(args).output().map_err(|source| ImageError::Spawn {
        program: program.display().to_string(),
        source,
        hint: hint.to_string(),
    })?;
    if !out.status.success() {
        return Err(ImageError::Failed {
            command: command_line(program, args),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn command_line(program: &Path, args: &[&str]) -> String {
    std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBEADM_V1_33_3: &str = "registry.k8s.io/kube-apiserver:v1.33.3
registry.k8s.io/kube-controller-manager:v1.33.3
registry.k8s.io/kube-scheduler:v1.33.3
registry.k8s.io/kube-proxy:v1.33.3
registry.k8s.io/coredns/coredns:v1.12.0
registry.k8s.io/pause:3.10
registry.k8s.io/etcd:3.5.21-0
";

    #[test]
    fn kubeadms_list_splits_into_masters_every_node_and_etcd() {
        let split = split(&parse_image_list(KUBEADM_V1_33_3));
        assert_eq!(
            split.control_plane,
            [
                "registry.k8s.io/kube-apiserver:v1.33.3",
                "registry.k8s.io/kube-controller-manager:v1.33.3",
                "registry.k8s.io/kube-scheduler:v1.33.3",
                "registry.k8s.io/coredns/coredns:v1.12.0",
            ]
        );
        assert_eq!(split.every_node, ["registry.k8s.io/kube-proxy:v1.33.3", "registry.k8s.io/pause:3.10"]);
        assert_eq!(split.not_bundled, ["registry.k8s.io/etcd:3.5.21-0"]);
    }

    #[test]
    fn an_image_kubeadm_adds_later_goes_to_every_node() {
        let split = split(&["registry.k8s.io/something-new:v1".to_string()]);
        assert_eq!(split.every_node, ["registry.k8s.io/something-new:v1"]);
    }

    #[test]
    fn repository_names_ignore_registry_port_path_tag_and_digest() {
        assert_eq!(repository_name("registry.k8s.io/coredns/coredns:v1.12.0"), "coredns");
        assert_eq!(repository_name("localhost:5000/kube-apiserver:v1.33.3"), "kube-apiserver");
        assert_eq!(repository_name("registry.k8s.io/pause@sha256:abc"), "pause");
        assert_eq!(repository_name("etcd"), "etcd");
    }

    #[test]
    fn blank_lines_and_spaces_are_not_images() {
        assert_eq!(parse_image_list("\n a:1 \r\n\nb:2\n"), ["a:1", "b:2"]);
    }

    #[test]
    fn a_missing_program_says_what_to_do() {
        let docker = Docker::new("/nonexistent/docker");
        let err = docker.local_id("registry.k8s.io/pause:3.10", "amd64").unwrap_err();
        assert!(err.to_string().contains("is docker installed"), "{err}");
    }
}
