//! Writing a bundle's `manifest.json` and `SHA256SUMS` from the reader's own [`Manifest`], each
//! through a temporary file renamed into place: a reader sees the old file or the new one, never
//! half of one. `SHA256SUMS` goes first and the manifest last, so that a manifest is only ever
//! beside the sums it was written with.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::manifest::{Artifact, Manifest};
use super::{MANIFEST, SUMS};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot serialise the bundle manifest: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `dir/SHA256SUMS` and `dir/manifest.json` for `manifest`.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<(), WriteError> {
    let mut json = serde_json::to_string_pretty(manifest)?;
    json.push('\n');
    write_atomically(&dir.join(SUMS), sums_text(&manifest.artifacts).as_bytes())?;
    write_atomically(&dir.join(MANIFEST), json.as_bytes())
}

/// `HASH  PATH` lines, as `sha256sum` writes them (so `sha256sum -c SHA256SUMS` checks a bundle).
pub fn sums_text(artifacts: &[Artifact]) -> String {
    artifacts.iter().map(|a| format!("{}  {}\n", a.sha256.to_ascii_lowercase(), a.path)).collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    let io = |source| WriteError::Io { path: path.to_path_buf(), source };
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::bundle::{ArtifactKind, Bundle, FORMAT};

    fn artifact(name: &str, path: &str, content: &[u8]) -> Artifact {
        Artifact {
            name: name.into(),
            kind: ArtifactKind::Binary,
            path: path.into(),
            sha256: format!("{:x}", Sha256::digest(content)),
            size: content.len() as u64,
            version: Some("v1.33.3".into()),
            install_to: Some(format!("/usr/local/bin/{name}")),
            images: vec![],
            roles: vec![],
            source: Some("https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm".into()),
        }
    }

    #[test]
    fn a_written_manifest_reads_back_equal_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"#!/bin/sh\necho v1.33.3\n";
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/kubeadm"), content).unwrap();
        let mut etcd = artifact("etcd", "bin/etcd", b"etcd");
        etcd.roles = vec!["master".into()];
        std::fs::write(dir.path().join("bin/etcd"), b"etcd").unwrap();
        let manifest = Manifest {
            format: FORMAT,
            name: "kubernetes-v1.33.3-amd64".into(),
            kubernetes_version: "v1.33.3".into(),
            recipe: None,
            artifacts: vec![artifact("kubeadm", "bin/kubeadm", content), etcd],
        };

        write(dir.path(), &manifest).unwrap();

        let bundle = Bundle::open(dir.path()).expect("opens");
        assert_eq!(bundle.manifest(), &manifest);
        bundle.verify().expect("verifies");
        let sums = std::fs::read_to_string(dir.path().join(SUMS)).unwrap();
        assert_eq!(
            sums,
            format!("{}  bin/kubeadm\n{}  bin/etcd\n", manifest.artifacts[0].sha256, manifest.artifacts[1].sha256)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!left.iter().any(|n| n.to_string_lossy().ends_with(".part")), "{left:?}");
    }
}
