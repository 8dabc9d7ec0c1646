//! `sparse-file`: a volume's backing file of an exact size, allocated lazily (sparse), so that a
//! 50 GiB volume costs nothing until it is written. Grows, never shrinks: shrinking would cut
//! off data a workload wrote, so a smaller size asked for is an error the operator must resolve.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use groundwork_protocol::Report;

use super::fsx;

pub fn ensure(path: &str, size: u64, mode: u32, dry: bool) -> Result<Report, String> {
    if !path.starts_with('/') {
        return Err(format!("backing file path `{path}` is not absolute"));
    }
    let file = Path::new(path);
    let report = |changed, summary: String| Ok(Report { changed, summary, diff: None });
    match fs::metadata(file) {
        Ok(m) if !m.is_file() => Err(format!("{path} exists and is not a regular file")),
        Ok(m) if m.len() > size => Err(format!(
            "{path} is {} bytes, larger than the {size} bytes asked for; groundwork never shrinks a volume \
             (its data would be cut off): restore the size in the inventory, or move the data and remove the file",
            m.len()
        )),
        Ok(m) => {
            let found_mode = m.permissions().mode() & 0o7777;
            if m.len() == size && found_mode == mode {
                return report(false, format!("{path} is {size} bytes"));
            }
            if !dry {
                set_len_and_mode(file, size, mode)?;
            }
            if m.len() == size {
                report(true, format!("{path}: mode {found_mode:04o} -> {mode:04o}"))
            } else {
                report(true, format!("grew {path} from {} to {size} bytes", m.len()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dry {
                return report(true, format!("would create {path} ({size} bytes, sparse)"));
            }
            if let Some(dir) = file.parent() {
                fsx::mkdir_p(dir)?;
            }
            set_len_and_mode(file, size, mode)?;
            report(true, format!("created {path} ({size} bytes, sparse)"))
        }
        Err(e) => Err(format!("cannot inspect {path}: {e}")),
    }
}

fn set_len_and_mode(file: &Path, size: u64, mode: u32) -> Result<(), String> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file)
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    // set_len past the end leaves a hole: no blocks are allocated.
    f.set_len(size).map_err(|e| format!("cannot size {} to {size} bytes: {e}", file.display()))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot change the mode of {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::tasks::testdir::TempDir;

    #[test]
    fn creates_sparse_grows_and_refuses_to_shrink() {
        let t = TempDir::new("sparse");
        let f = t.path("iscsi/kafka-0.img");
        let p = f.to_str().unwrap();
        let gib = 1u64 << 30;
        assert!(ensure(p, gib, 0o600, true).unwrap().changed);
        assert!(!f.exists(), "a dry run creates nothing");
        assert_eq!(ensure(p, gib, 0o600, false).unwrap().summary, format!("created {p} ({gib} bytes, sparse)"));
        let m = fs::metadata(&f).unwrap();
        assert_eq!(m.len(), gib);
        assert!(m.blocks() * 512 < 1 << 20, "no blocks allocated: {}", m.blocks());
        assert_eq!(m.permissions().mode() & 0o7777, 0o600);
        assert!(!ensure(p, gib, 0o600, false).unwrap().changed);

        fs::write(&f, b"data").unwrap(); // a workload wrote (and the file is now 4 bytes)
        let r = ensure(p, 2 * gib, 0o600, false).unwrap();
        assert_eq!(r.summary, format!("grew {p} from 4 to {} bytes", 2 * gib));
        assert_eq!(&fs::read(&f).unwrap()[..4], b"data", "growing keeps the data");
        let e = ensure(p, gib, 0o600, false).unwrap_err();
        assert!(e.contains("never shrinks"), "{e}");
        assert_eq!(fs::metadata(&f).unwrap().len(), 2 * gib, "refused means untouched");
    }
}
