//! Hashing a bundle's files against its manifest: streaming (a bundle is hundreds of MB), one
//! file per thread up to the machine's parallelism.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::manifest::Artifact;

/// How one artifact file fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyProblem {
    /// The file is not there.
    Missing { path: String },
    /// The file is there but could not be read.
    Unreadable { path: String, error: String },
    /// The file's content is not what the manifest recorded.
    Mismatch { path: String, expected_sha256: String, actual_sha256: String, expected_size: u64, actual_size: u64 },
}

impl VerifyProblem {
    pub fn path(&self) -> &str {
        match self {
            VerifyProblem::Missing { path } | VerifyProblem::Unreadable { path, .. } => path,
            VerifyProblem::Mismatch { path, .. } => path,
        }
    }
}

impl fmt::Display for VerifyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyProblem::Missing { path } => write!(f, "{path}: missing"),
            VerifyProblem::Unreadable { path, error } => write!(f, "{path}: cannot be read ({error})"),
            VerifyProblem::Mismatch { path, expected_sha256, actual_sha256, expected_size, actual_size } => {
                write!(f, "{path}: sha256 {actual_sha256}, the manifest says {expected_sha256}")?;
                if expected_size != actual_size {
                    write!(f, " (size {actual_size} bytes, the manifest says {expected_size})")?;
                }
                Ok(())
            }
        }
    }
}

/// What a successful verification covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Verified {
    pub files: usize,
    pub bytes: u64,
}

/// Lowercase hex SHA-256 and size of a file, read in 1 MiB pieces.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("{:x}", hasher.finalize()), size))
}

fn check_one(dir: &Path, artifact: &Artifact) -> Result<u64, VerifyProblem> {
    let path = artifact.path.clone();
    match hash_file(&dir.join(&artifact.path)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(VerifyProblem::Missing { path }),
        Err(e) => Err(VerifyProblem::Unreadable { path, error: e.to_string() }),
        Ok((sum, size)) if sum == artifact.sha256.to_ascii_lowercase() && size == artifact.size => Ok(size),
        Ok((sum, size)) => Err(VerifyProblem::Mismatch {
            path,
            expected_sha256: artifact.sha256.to_ascii_lowercase(),
            actual_sha256: sum,
            expected_size: artifact.size,
            actual_size: size,
        }),
    }
}

/// Hashes every artifact; the problems come back in manifest order.
pub fn check_all(dir: &Path, artifacts: &[Artifact]) -> Result<Verified, Vec<VerifyProblem>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, artifacts.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<u64, VerifyProblem>>>> = Mutex::new(vec![None; artifacts.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(artifact) = artifacts.get(i) else { break };
                    let outcome = check_one(dir, artifact);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    let mut verified = Verified { files: 0, bytes: 0 };
    let mut problems = Vec::new();
    for outcome in results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten() {
        match outcome {
            Ok(bytes) => {
                verified.files += 1;
                verified.bytes += bytes;
            }
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() { Ok(verified) } else { Err(problems) }
}

/// What identifies a file's content without reading it: device, inode, size, mtime and ctime. Any
/// rewrite of the file changes one of them.
fn stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    // ctime too: `touch -d` can put an mtime back after a rewrite, nothing but the kernel sets ctime.
    Some(format!(
        "{}:{}:{}:{}.{}:{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Like [`check_all`], but an artifact whose file is unchanged since a verification recorded in
/// `memo` (a JSON map path -> "sha256 stamp") is not hashed again: a re-run of apply then costs
/// a `stat` per file instead of reading hundreds of MB. With `record`, the memo is rewritten
/// (atomically) with what this call verified.
pub fn check_all_remembered(
    dir: &Path,
    artifacts: &[Artifact],
    memo: &Path,
    record: bool,
) -> Result<Verified, Vec<VerifyProblem>> {
    let known: std::collections::BTreeMap<String, String> =
        std::fs::read(memo).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let entry = |a: &Artifact| stamp(&dir.join(&a.path)).map(|s| format!("{} {s}", a.sha256.to_ascii_lowercase()));
    let (remembered, to_hash): (Vec<&Artifact>, Vec<&Artifact>) =
        artifacts.iter().partition(|a| entry(a).is_some_and(|e| known.get(&a.path) == Some(&e)));
    let to_hash: Vec<Artifact> = to_hash.into_iter().cloned().collect();
    let hashed = check_all(dir, &to_hash)?;
    if record {
        let now: std::collections::BTreeMap<String, String> =
            artifacts.iter().filter_map(|a| entry(a).map(|e| (a.path.clone(), e))).collect();
        let tmp = memo.with_extension("tmp");
        let written = serde_json::to_vec_pretty(&now)
            .map_err(io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, memo));
        if let Err(e) = written {
            // Only an optimisation: the next run hashes again.
            tracing::debug!(memo = %memo.display(), error = %e, "bundle verification memo not written");
        }
    }
    Ok(Verified {
        files: hashed.files + remembered.len(),
        bytes: hashed.bytes + remembered.iter().map(|a| a.size).sum::<u64>(),
    })
}
