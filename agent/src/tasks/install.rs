//! `install`: copy a file already on the node (an uploaded artifact) to its place when the
//! target's SHA-256 differs. The copy is hashed while it is written and only renamed into place
//! when the source really had the expected checksum.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use groundwork_protocol::Report;
use sha2::{Digest, Sha256};

use super::fsx;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, hex; None when it does not exist.
fn sha256_of(path: &Path) -> Result<Option<String>, String> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut h = HashingReader { inner: &mut f, hash: Sha256::new() };
    io::copy(&mut h, &mut io::sink()).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some(hex(&h.hash.finalize())))
}

struct HashingReader<'a> {
    inner: &'a mut dyn Read,
    hash: Sha256,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Where the checksum of an installed file is remembered with what identifies its content's
/// version (device, inode, size, mtime): a re-run then needs no hashing of hundreds of MB of
/// binaries, and any rewrite of the file (new inode or mtime) makes it hash again.
fn verified_dir() -> std::path::PathBuf {
    if cfg!(test) {
        // One directory for every test run (markers are keyed by each test file's unique path),
        // so test runs do not leave a directory each behind.
        std::env::temp_dir().join("gw-agent-test-verified")
    } else {
        std::path::PathBuf::from("/var/lib/groundwork/verified")
    }
}

fn stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(format!("{} {} {} {}.{}", m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

fn marker(path: &Path) -> std::path::PathBuf {
    let mut h = Sha256::new();
    h.update(path.as_os_str().as_encoded_bytes());
    verified_dir().join(hex(&h.finalize()))
}

/// The file's SHA-256: remembered when the file is unchanged since it was last hashed.
fn sha256_cached(path: &Path) -> Result<Option<String>, String> {
    let Some(now) = stamp(path) else { return Ok(None) };
    if let Ok(text) = fs::read_to_string(marker(path))
        && let Some((sum, was)) = text.trim().split_once(' ')
        && was == now
    {
        return Ok(Some(sum.to_string()));
    }
    let sum = sha256_of(path)?;
    if let Some(sum) = &sum {
        remember(path, sum);
    }
    Ok(sum)
}

/// Best effort: without the marker the next run just hashes again.
fn remember(path: &Path, sum: &str) {
    if let Some(now) = stamp(path) {
        let _ = fs::create_dir_all(verified_dir());
        let _ = fs::write(marker(path), format!("{sum} {now}\n"));
    }
}

pub fn ensure(source: &str, path: &str, mode: u32, sha256: &str, dry: bool) -> Result<Report, String> {
    let want = sha256.trim().to_ascii_lowercase();
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("install {path}: `{sha256}` is not a SHA-256 (64 hex digits)"));
    }
    if !path.starts_with('/') {
        return Err(format!("install target `{path}` is not absolute"));
    }
    let target = Path::new(path);
    if target.is_dir() {
        return Err(format!("install target {path} is a directory"));
    }
    if sha256_cached(target)?.as_deref() == Some(want.as_str()) {
        let found =
            fs::metadata(target).map_err(|e| format!("cannot inspect {path}: {e}"))?.permissions().mode() & 0o7777;
        if found == mode {
            return Ok(Report { changed: false, summary: format!("{path} is up to date"), diff: None });
        }
        if !dry {
            fs::set_permissions(target, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot change the mode of {path} to {mode:04o}: {e}"))?;
        }
        return Ok(Report { changed: true, summary: format!("{path}: mode {found:04o} -> {mode:04o}"), diff: None });
    }
    let verb = if target.exists() { "replaced" } else { "installed" };
    let mut src =
        File::open(source).map_err(|e| format!("cannot read the install source {source} (for {path}): {e}"))?;
    if dry {
        // Still check the source, so a dry run finds a bad upload.
        let got = sha256_of(Path::new(source))?.unwrap_or_default();
        if got != want {
            return Err(bad_source(source, &got, &want));
        }
        let verb = if verb == "installed" { "would install" } else { "would replace" };
        return Ok(Report { changed: true, summary: format!("{verb} {path} from {source}"), diff: None });
    }
    let mut reader = HashingReader { inner: &mut src, hash: Sha256::new() };
    let staged = fsx::stage(target, &mut reader, mode, None)?;
    let got = hex(&reader.hash.finalize());
    if got != want {
        return Err(bad_source(source, &got, &want)); // dropping `staged` removes the copy
    }
    staged.commit()?;
    remember(target, &want);
    Ok(Report { changed: true, summary: format!("{verb} {path} from {source}"), diff: None })
}

/// Whether an upload is already in place: `changed` when it is missing or differs.
pub fn uploaded(path: &str, sha256: &str) -> Result<Report, String> {
    let want = sha256.trim().to_ascii_lowercase();
    let (changed, summary) = match sha256_cached(Path::new(path))? {
        Some(got) if got == want => (false, format!("{path} is up to date")),
        Some(_) => (true, format!("{path} differs: upload it again")),
        None => (true, format!("{path} is missing: upload it")),
    };
    Ok(Report { changed, summary, diff: None })
}

fn bad_source(source: &str, got: &str, want: &str) -> String {
    format!(
        "{source} has SHA-256 {got}, expected {want}: the upload is incomplete or not the expected file; nothing was installed"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;

    const HELLO_SHA: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"; // "hello\n"

    #[test]
    fn installs_once_then_only_fixes_the_mode() {
        let t = TempDir::new("install");
        let src = t.path("upload/kubelet");
        fs::create_dir_all(src.parent().unwrap()).unwrap();
        fs::write(&src, "hello\n").unwrap();
        let (s, dst) = (src.to_str().unwrap(), t.path("usr/bin/kubelet"));
        let d = dst.to_str().unwrap();

        let dry = ensure(s, d, 0o755, HELLO_SHA, true).unwrap();
        assert_eq!((dry.changed, dry.summary), (true, format!("would install {d} from {s}")));
        assert!(!dst.exists());

        let r = ensure(s, d, 0o755, &HELLO_SHA.to_uppercase(), false).unwrap();
        assert_eq!((r.changed, r.summary), (true, format!("installed {d} from {s}")));
        assert_eq!(fs::read_to_string(&dst).unwrap(), "hello\n");
        assert_eq!(fs::metadata(&dst).unwrap().permissions().mode() & 0o7777, 0o755);

        let again = ensure(s, d, 0o755, HELLO_SHA, false).unwrap();
        assert_eq!((again.changed, again.summary), (false, format!("{d} is up to date")));
        // The source may be gone once the target is right.
        fs::remove_file(&src).unwrap();
        let r = ensure(s, d, 0o700, HELLO_SHA, false).unwrap();
        assert_eq!((r.changed, r.summary), (true, format!("{d}: mode 0755 -> 0700")));
    }

    #[test]
    fn an_upload_is_recognised_by_its_checksum_only() {
        let t = TempDir::new("uploaded");
        let f = t.path("bundle/kubeadm");
        let p = f.to_str().unwrap();
        assert!(uploaded(p, HELLO_SHA).unwrap().summary.ends_with("is missing: upload it"));
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, "hellO\n").unwrap();
        assert!(uploaded(p, HELLO_SHA).unwrap().changed);
        fs::write(&f, "hello\n").unwrap();
        let r = uploaded(p, HELLO_SHA).unwrap();
        assert_eq!((r.changed, r.summary), (false, format!("{p} is up to date")));
    }

    #[test]
    fn a_source_with_another_checksum_is_refused_and_nothing_is_left_behind() {
        let t = TempDir::new("install-bad");
        let src = t.path("src");
        fs::write(&src, "hellO\n").unwrap();
        let dst = t.path("dst");
        fs::write(&dst, "old\n").unwrap();
        let err = ensure(src.to_str().unwrap(), dst.to_str().unwrap(), 0o755, HELLO_SHA, false).unwrap_err();
        assert!(err.contains(&format!("expected {HELLO_SHA}")) && err.starts_with(src.to_str().unwrap()), "{err}");
        assert_eq!(fs::read_to_string(&dst).unwrap(), "old\n");
        assert_eq!(fs::read_dir(t.path("")).unwrap().count(), 2);
        assert!(ensure(src.to_str().unwrap(), dst.to_str().unwrap(), 0o755, HELLO_SHA, true).is_err());
        assert!(
            ensure("/nonexistent/src", dst.to_str().unwrap(), 0o755, HELLO_SHA, false)
                .unwrap_err()
                .contains("/nonexistent/src")
        );
        assert!(
            ensure(src.to_str().unwrap(), dst.to_str().unwrap(), 0o755, "abc", false)
                .unwrap_err()
                .contains("not a SHA-256")
        );
    }
}
