//! The etcd binaries out of etcd's release archive (`etcd-vX-linux-ARCH.tar.gz`, everything under
//! one top directory), each hashed while it is written and renamed into place when complete.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::download::{Fetched, part_path};

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot read the etcd archive {}: {source}", archive.display())]
    Archive { archive: PathBuf, source: io::Error },
    #[error("the etcd archive {} has no {wanted}: is it an etcd release archive?", archive.display())]
    Missing { archive: PathBuf, wanted: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Extracts `top_dir/NAME` for each of `names` from the `.tar.gz` `archive` into `into/NAME`
/// (mode 0755); the results are in the order of `names`.
pub fn extract(archive: &Path, top_dir: &str, names: &[&str], into: &Path) -> Result<Vec<Fetched>, ExtractError> {
    let unreadable = |source| ExtractError::Archive { archive: archive.to_path_buf(), source };
    let file = File::open(archive).map_err(unreadable)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found: Vec<Option<Fetched>> = vec![None; names.len()];
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        // `./etcd-v…/etcd` and `etcd-v…/etcd` are the same member.
        let path: PathBuf =
            entry.path().map_err(unreadable)?.components().filter(|c| *c != Component::CurDir).collect();
        let Some(i) = names.iter().position(|n| path == Path::new(top_dir).join(n)) else { continue };
        let dest = into.join(names[i]);
        found[i] = Some(write_entry(&mut entry, &dest).map_err(|e| match e {
            EntryError::Read(source) => unreadable(source),
            EntryError::Write(source) => ExtractError::Write { path: dest.clone(), source },
        })?);
    }
    names
        .iter()
        .zip(found)
        .map(|(name, f)| {
            f.ok_or_else(|| ExtractError::Missing {
                archive: archive.to_path_buf(),
                wanted: format!("{top_dir}/{name}"),
            })
        })
        .collect()
}

enum EntryError {
    Read(io::Error),
    Write(io::Error),
}

fn write_entry(entry: &mut impl io::Read, dest: &Path) -> Result<Fetched, EntryError> {
    let part = part_path(dest);
    let result = copy_hashing(entry, &part);
    let fetched = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, dest).map_err(EntryError::Write)?;
    Ok(fetched)
}

fn copy_hashing(from: &mut impl io::Read, part: &Path) -> Result<Fetched, EntryError> {
    let mut file = File::create(part).map_err(EntryError::Write)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EntryError::Read(e)),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(EntryError::Write)?;
        size += n as u64;
    }
    file.sync_all().map_err(EntryError::Write)?;
    std::fs::set_permissions(part, Permissions::from_mode(0o755)).map_err(EntryError::Write)?;
    Ok(Fetched { sha256: format!("{:x}", hasher.finalize()), size })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release-shaped archive: the binaries and a README under the top directory.
    fn archive(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("etcd-v3.5.16-linux-amd64.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            tar.append_data(&mut header, format!("etcd-v3.5.16-linux-amd64/{name}"), *content).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn extracts_the_named_binaries_with_their_sums() {
        let dir = tempfile::tempdir().unwrap();
        let a = archive(dir.path(), &[("README.md", b"readme"), ("etcdctl", b"ctl"), ("etcd", b"server")]);
        let out = dir.path().join("bin");
        std::fs::create_dir(&out).unwrap();

        let got = extract(&a, "etcd-v3.5.16-linux-amd64", &["etcd", "etcdctl"], &out).unwrap();

        assert_eq!(got[0], Fetched { sha256: format!("{:x}", Sha256::digest(b"server")), size: 6 });
        assert_eq!(got[1], Fetched { sha256: format!("{:x}", Sha256::digest(b"ctl")), size: 3 });
        assert_eq!(std::fs::read(out.join("etcd")).unwrap(), b"server");
        let mode = std::fs::metadata(out.join("etcdctl")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let mut left: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["etcd", "etcdctl"]);
    }

    #[test]
    fn a_missing_binary_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = archive(dir.path(), &[("etcd", b"server")]);
        let err = extract(&a, "etcd-v3.5.16-linux-amd64", &["etcd", "etcdctl"], dir.path()).unwrap_err();
        assert!(err.to_string().contains("has no etcd-v3.5.16-linux-amd64/etcdctl"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_gzip_is_an_unreadable_archive() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("etcd.tar.gz");
        std::fs::write(&a, b"<html>not found</html>").unwrap();
        let err = extract(&a, "etcd", &["etcd"], dir.path()).unwrap_err();
        assert!(matches!(err, ExtractError::Archive { .. }), "{err}");
    }
}
