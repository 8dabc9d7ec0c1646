//! The dependency closure of what each role installs, resolved by apt itself against an empty
//! system (so the bundle holds every package a bare node could lack, down to libc), and
//! downloaded: `apt-get` on the build machine, in a private directory (its own sources, lists,
//! cache and an empty dpkg status), never touching the machine's own apt state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{AptError, OsRelease, run};

/// Where packages come from while the bundle is built.
#[derive(Debug, Clone)]
pub struct ArchiveSource {
    /// The archive's base URL (`http://deb.debian.org/debian`, or a local mirror).
    pub mirror: String,
    pub suites: Vec<String>,
    /// The keyring apt checks the archive's `Release` with.
    pub keyring: PathBuf,
}

impl ArchiveSource {
    /// Debian's archive for `os`: the release and its updates, checked with Debian's keyring.
    pub fn debian(os: &OsRelease, mirror: &str) -> ArchiveSource {
        ArchiveSource {
            mirror: mirror.trim_end_matches('/').to_string(),
            suites: vec![os.codename.to_string(), format!("{}-updates", os.codename)],
            keyring: PathBuf::from("/usr/share/keyrings/debian-archive-keyring.gpg"),
        }
    }
}

/// One package of the closure: its file in the download cache, and the roles that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDeb {
    pub name: String,
    pub version: String,
    pub file: PathBuf,
    pub roles: BTreeSet<String>,
}

/// apt-get with every directory inside `work`.
fn apt_get(work: &Path) -> Command {
    let mut c = Command::new("apt-get");
    let d = |p: &str| work.join(p).display().to_string();
    for (option, value) in [
        ("Dir::Etc", d("etc")),
        ("Dir::Etc::SourceParts", d("etc/sources.list.d")),
        ("Dir::Etc::Preferences", d("etc/preferences")),
        ("Dir::Etc::PreferencesParts", d("etc/preferences.d")),
        ("Dir::State", d("state")),
        ("Dir::State::status", d("status")),
        ("Dir::Cache", d("cache")),
        ("Dir::Log", d("log")),
        ("APT::Architecture", "amd64".into()),
        ("APT::Architectures::", "amd64".into()),
        // The private directories are this process's alone; apt's own locks guard the system's.
        ("Debug::NoLocking", "1".into()),
        ("APT::Sandbox::User", "root".into()),
        ("Acquire::Languages", "none".into()),
    ] {
        c.arg("-o").arg(format!("{option}={value}"));
    }
    c.args(["-q", "-y"]).env("DEBIAN_FRONTEND", "noninteractive").env("LC_ALL", "C");
    c
}

/// Resolves the closure of `wanted` (role -> package names) from `source` and downloads it into
/// `work/cache/archives`. Every package is listed once, with every role whose closure holds it.
pub fn resolve(
    source: &ArchiveSource,
    wanted: &BTreeMap<String, Vec<String>>,
    work: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<ResolvedDeb>, AptError> {
    // apt reads a relative Dir:: option from `/`, not from the current directory.
    let work = &std::path::absolute(work).map_err(|source| AptError::Write { path: work.to_path_buf(), source })?;
    for dir in ["etc/sources.list.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial", "log"] {
        let path = work.join(dir);
        std::fs::create_dir_all(&path).map_err(|source| AptError::Write { path, source })?;
    }
    let sources: String = source
        .suites
        .iter()
        .map(|s| format!("deb [signed-by={}] {} {s} main\n", source.keyring.display(), source.mirror))
        .collect();
    for (file, text) in [("etc/sources.list", sources.as_str()), ("status", "")] {
        let path = work.join(file);
        std::fs::write(&path, text).map_err(|source| AptError::Write { path, source })?;
    }
    progress(&format!("apt-get update ({} {})", source.mirror, source.suites.join(" ")));
    run(apt_get(work).arg("update"), "apt-get", "resolve the packages' dependencies", "apt")?;

    let mut roles_of: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (role, names) in wanted {
        let simulated = run(
            apt_get(work).args(["install", "--simulate", "--no-install-recommends"]).args(names),
            "apt-get",
            "resolve the packages' dependencies",
            "apt",
        )?;
        let closure = installs(&simulated);
        progress(&format!("{role}: {} packages for {}", closure.len(), names.join(" ")));
        for key in closure {
            roles_of.entry(key).or_default().insert(role.clone());
        }
    }
    progress(&format!("downloading {} packages", roles_of.len()));
    let exact: Vec<String> = roles_of.keys().map(|(n, v)| format!("{n}={v}")).collect();
    run(
        apt_get(work).args(["install", "--download-only", "--no-install-recommends"]).args(&exact),
        "apt-get",
        "download the packages",
        "apt",
    )?;
    let archives = work.join("cache/archives");
    roles_of
        .into_iter()
        .map(|((name, version), roles)| {
            let file = downloaded(&archives, &name, &version)?;
            Ok(ResolvedDeb { name, version, file, roles })
        })
        .collect()
}

/// The `Inst NAME (VERSION ...)` lines of `apt-get --simulate install`.
pub fn installs(simulated: &str) -> Vec<(String, String)> {
    simulated
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(' ')?;
            let version = rest.strip_prefix('(')?.split_whitespace().next()?;
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

/// The file apt downloaded for `name` at `version`: `NAME_VERSION_ARCH.deb`, the epoch's colon
/// written `%3a`.
fn downloaded(archives: &Path, name: &str, version: &str) -> Result<PathBuf, AptError> {
    let prefix = format!("{name}_{}_", version.replace(':', "%3a"));
    let entries =
        std::fs::read_dir(archives).map_err(|source| AptError::Write { path: archives.to_path_buf(), source })?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.starts_with(&prefix) && f.ends_with(".deb")))
        .ok_or_else(|| AptError::Deb {
            path: archives.join(format!("{prefix}*.deb")),
            message: "apt resolved it but did not download it".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_installs_are_read_with_their_versions() {
        let out = "Reading package lists...\nInst libc6 (2.36-9+deb12u10 Debian:12.11/stable [amd64])\n\
                   Inst containerd (1.6.20~ds1-1+b1 Debian:12.11/stable [amd64])\nConf libc6 (2.36-9+deb12u10 Debian:12.11/stable [amd64])\n\
                   Inst tzdata (2025b-0+deb12u1 Debian:12-updates/stable-updates [all])\n";
        assert_eq!(
            installs(out),
            [("libc6", "2.36-9+deb12u10"), ("containerd", "1.6.20~ds1-1+b1"), ("tzdata", "2025b-0+deb12u1")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }
}
