//! Versions of what groundwork installs, when it is already there (a re-run, or a host someone
//! prepared by hand). Each binary is asked for its version with a short deadline.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use groundwork_protocol::facts::Installed;

const DIRS: [&str; 4] = ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/usr/local/sbin"];

fn find(binary: &str) -> Option<String> {
    DIRS.iter().map(|d| format!("{d}/{binary}")).find(|p| std::path::Path::new(p).is_file())
}

/// Runs `path args` and returns its stdout, or None after two seconds.
fn output(path: &str, args: &[&str]) -> Option<String> {
    let mut child =
        Command::new(path).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first token that looks like a version (`v1.33.3`, `1.7.24`), from a version banner.
pub fn version_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '"')
        .map(|t| t.trim_start_matches("version:"))
        .find(|t| {
            let t = t.trim_start_matches('v');
            t.split('.').count() >= 2
                && t.split('.').all(|p| !p.is_empty() && p.chars().next().is_some_and(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// Asking a Go binary its version takes 50-300 ms, and facts are gathered on every run: the
/// answer is remembered with what identifies the binary (device, inode, size, mtime), so a re-run
/// asks only binaries that changed.
const CACHE: &str = "/var/lib/groundwork/versions.json";

fn stamp(path: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!("{} {} {} {}.{}", m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

type Cache = std::collections::BTreeMap<String, (String, String)>;

fn version_of(cache: &mut Cache, binary: &str, args: &[&str]) -> Option<String> {
    let path = find(binary)?;
    let now = stamp(&path).unwrap_or_default();
    if let Some((was, version)) = cache.get(&path)
        && *was == now
    {
        return Some(version.clone());
    }
    let version = output(&path, args).and_then(|o| version_in(&o)).unwrap_or_else(|| "unknown version".into());
    cache.insert(path, (now, version.clone()));
    Some(version)
}

pub fn installed() -> Installed {
    installed_with(std::path::Path::new(CACHE))
}

fn installed_with(cache_file: &std::path::Path) -> Installed {
    let before: Cache =
        std::fs::read(cache_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut cache = before.clone();
    let installed = Installed {
        containerd: version_of(&mut cache, "containerd", &["--version"]),
        runc: version_of(&mut cache, "runc", &["--version"]),
        kubelet: version_of(&mut cache, "kubelet", &["--version"]),
        kubeadm: version_of(&mut cache, "kubeadm", &["version", "-o", "short"]),
        kubectl: version_of(&mut cache, "kubectl", &["version", "--client"]),
        servers: servers(),
    };
    if cache != before
        && let Some(dir) = cache_file.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        // Best effort: without the cache the next run just asks again.
        let tmp = cache_file.with_extension("tmp");
        if std::fs::write(&tmp, serde_json::to_vec(&cache).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&tmp, cache_file);
        }
    }
    installed
}

/// Which backbone servers are installed, by the files their packages put in place.
fn servers() -> Vec<String> {
    let present = |p: &str| std::path::Path::new(p).exists();
    [
        ("tgt", "/usr/sbin/tgtd"),
        ("lio", "/usr/bin/targetcli"),
        ("nfs-ganesha", "/usr/bin/ganesha.nfsd"),
        ("nfs-kernel-server", "/usr/sbin/rpc.nfsd"),
        ("postgresql", "/usr/lib/postgresql"),
    ]
    .into_iter()
    .filter(|(_, path)| present(path))
    .map(|(name, _)| name.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::version_in;

    #[test]
    fn versions_from_banners() {
        assert_eq!(
            version_in("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n").as_deref(),
            Some("1.6.20~ds1")
        );
        assert_eq!(version_in("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\n").as_deref(), Some("1.1.5+ds1"));
        assert_eq!(version_in("Kubernetes v1.33.3\n").as_deref(), Some("v1.33.3"));
        assert_eq!(version_in("v1.33.3\n").as_deref(), Some("v1.33.3"));
        assert_eq!(version_in("Client Version: v1.33.3\nKustomize Version: v5.6.0\n").as_deref(), Some("v1.33.3"));
        assert_eq!(version_in("nothing here"), None);
    }
}
