//! `import_images`: container images imported into a containerd namespace from a tarball on the
//! node (`ctr images import`), skipped when every named image is there already. Names compare as
//! containerd stores them: `pause:3.10` is `docker.io/library/pause:3.10`.

use std::path::Path;

use groundwork_protocol::Report;

use super::cmd::Cmd;

/// The full reference containerd lists for an image name (Docker's normalisation).
pub fn normalize(reference: &str) -> String {
    let r = reference.trim();
    let first = r.split('/').next().unwrap_or("");
    let mut full = if !r.contains('/') {
        format!("docker.io/library/{r}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        r.to_string()
    } else {
        format!("docker.io/{r}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && !last.contains('@') {
        full.push_str(":latest");
    }
    full
}

/// Of `wanted`, those not in `listed` (the output of `ctr images ls -q`).
pub fn missing(listed: &str, wanted: &[String]) -> Vec<String> {
    let have: Vec<String> = listed.lines().map(str::trim).filter(|l| !l.is_empty()).map(normalize).collect();
    wanted.iter().filter(|w| !have.contains(&normalize(w))).cloned().collect()
}

fn ctr(namespace: &str) -> Cmd {
    Cmd::new("ctr").args(["-n", namespace])
}

fn list(namespace: &str) -> Result<String, String> {
    ctr(namespace).args(["images", "ls", "-q"]).run().map(|o| o.stdout).map_err(|e| {
        format!("cannot list the images of containerd namespace {namespace} (is containerd running?): {e}")
    })
}

pub fn ensure(archive: &str, namespace: &str, images: &[String], dry: bool) -> Result<Report, String> {
    if namespace.is_empty() || namespace.starts_with('-') {
        return Err(format!("`{namespace}` is not a containerd namespace"));
    }
    let absent = missing(&list(namespace)?, images);
    if absent.is_empty() {
        return Ok(Report {
            changed: false,
            summary: match images.len() {
                1 => format!("{} is already in containerd namespace {namespace}", images[0]),
                n => format!("all {n} images are already in containerd namespace {namespace}"),
            },
            diff: None,
        });
    }
    if !Path::new(archive).is_file() {
        return Err(format!("image archive {archive} is not on the node (needed for {})", absent.join(", ")));
    }
    if dry {
        return Ok(Report {
            changed: true,
            summary: format!("would import {archive} into {namespace} (missing: {})", absent.join(", ")),
            diff: None,
        });
    }
    let all = ctr(namespace).args(["images", "import", "--all-platforms", archive]).output()?;
    if !all.success {
        // An older ctr without --all-platforms, or an archive it cannot take that way.
        ctr(namespace).args(["images", "import", archive]).run().map_err(|e| {
            format!(
                "importing {archive} into containerd namespace {namespace} failed: {e}\n(with --all-platforms: {})",
                all.failure()
            )
        })?;
    }
    let still = missing(&list(namespace)?, images);
    if !still.is_empty() {
        return Err(format!(
            "imported {archive} into {namespace}, but {} {} not in it: check the image names against the archive",
            still.join(", "),
            if still.len() == 1 { "is" } else { "are" }
        ));
    }
    Ok(Report {
        changed: true,
        summary: format!("imported {archive} into {namespace} ({})", absent.join(", ")),
        diff: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_like_docker() {
        assert_eq!(normalize("pause:3.10"), "docker.io/library/pause:3.10");
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("flannel/flannel:v0.26"), "docker.io/flannel/flannel:v0.26");
        assert_eq!(normalize("registry.k8s.io/kube-apiserver:v1.33.3"), "registry.k8s.io/kube-apiserver:v1.33.3");
        assert_eq!(normalize("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(normalize("localhost/etcd:3.5.16"), "localhost/etcd:3.5.16");
        assert_eq!(normalize("registry.k8s.io/pause@sha256:abc"), "registry.k8s.io/pause@sha256:abc");
    }

    #[test]
    fn finds_the_missing_ones() {
        let listed = "docker.io/library/pause:3.10\nregistry.k8s.io/kube-proxy:v1.33.3\n\n";
        let wanted: Vec<String> = ["pause:3.10", "registry.k8s.io/kube-proxy:v1.33.3", "registry.k8s.io/etcd:3.5.16-0"]
            .map(String::from)
            .to_vec();
        assert_eq!(missing(listed, &wanted), ["registry.k8s.io/etcd:3.5.16-0"]);
        assert!(missing(listed, &wanted[..2]).is_empty());
    }
}
