//! `packages`: install what is missing with the node's package manager, behind the
//! [`PackageManager`] seam (apt now; dnf can be added as another implementation). Installed
//! packages are never upgraded.
//!
//! apt specifics:
//! - `proxy` is written to /etc/apt/apt.conf.d/90groundwork-proxy as `Acquire::http::Proxy "URL";`.
//! - `mirror` is written to /etc/apt/sources.list.d/groundwork.list and added to the distribution's
//!   own sources (which are left as they are, so nothing the operator set up is lost; an unreachable
//!   default source only makes `apt-get update` warn). A plain URL becomes
//!   `deb URL CODENAME main` (`main universe` on Ubuntu), CODENAME from /etc/os-release; a value
//!   starting with `deb` is taken as complete sources.list lines and written as given.
//! - `apt-get update` runs before installing when the package lists are missing or older than the
//!   sources, when this run changed the proxy or mirror, or once when apt cannot find a package.
//! - `repository` (the offline bundle's apt repository, uploaded to the node): the packages come
//!   from it alone. Its sources line is written to /etc/groundwork/apt/sources.list, outside
//!   /etc/apt, and apt runs with only that file and its own lists directory, so neither the node's
//!   sources (unreachable on an air-gapped site) nor its lists are used or changed. apt checks the
//!   repository's `Release.gpg` with the key beside it (`signed-by=`), uploaded with it from the
//!   bundle (whose own signature the controller checked). The lists are refreshed before each
//!   install: a local repository reads in a second.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use groundwork_protocol::Report;

use super::cmd::{Cmd, Output};
use super::file;

/// What groundwork needs from a package manager.
pub trait PackageManager {
    /// Of `names`, those not installed.
    fn missing(&self, names: &[String]) -> Result<Vec<String>, String>;
    /// Makes the proxy and mirror configuration so (unless `dry`); returns the files that differ(ed).
    fn configure(&self, proxy: Option<&str>, mirror: Option<&str>, dry: bool) -> Result<Vec<String>, String>;
    /// Installs `names`; `refresh` says the package sources changed in this run.
    fn install(&self, names: &[String], refresh: bool) -> Result<(), String>;
}

/// The few /etc/os-release fields that choose and configure the package manager.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub codename: Option<String>,
}

impl OsRelease {
    pub fn parse(text: &str) -> Self {
        let get = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
                .filter(|v| !v.is_empty())
        };
        OsRelease {
            id: get("ID").unwrap_or_default(),
            id_like: get("ID_LIKE").map(|v| v.split_whitespace().map(str::to_string).collect()).unwrap_or_default(),
            codename: get("VERSION_CODENAME").or_else(|| get("UBUNTU_CODENAME")),
        }
    }

    fn is(&self, family: &str) -> bool {
        self.id == family || self.id_like.iter().any(|l| l == family)
    }
}

/// The package manager for this OS.
pub fn detect(os: OsRelease, repository: Option<PathBuf>) -> Result<Box<dyn PackageManager>, String> {
    if os.is("debian") || os.is("ubuntu") {
        return Ok(Box::new(Apt::new(os, repository)));
    }
    let name =
        if os.id.is_empty() { "an unknown OS (no ID in /etc/os-release)".to_string() } else { format!("ID={}", os.id) };
    if ["rhel", "fedora", "centos"].iter().any(|f| os.is(f)) {
        return Err(format!("{name} uses dnf, which groundwork does not support yet (only apt: Debian, Ubuntu)"));
    }
    Err(format!("no supported package manager for {name} (only apt: Debian, Ubuntu)"))
}

pub struct Apt {
    os: OsRelease,
    /// The bundle's repository on this node, when the packages come from it alone.
    repository: Option<PathBuf>,
    /// /etc/apt
    etc: PathBuf,
    /// /var/lib/apt/lists
    lists: PathBuf,
}

pub const PROXY_FILE: &str = "apt.conf.d/90groundwork-proxy";
/// The only sources apt reads when installing from the bundle's repository (and their lists).
pub const BUNDLE_SOURCES: &str = "/etc/groundwork/apt/sources.list";
const BUNDLE_SOURCE_PARTS: &str = "/etc/groundwork/apt/sources.list.d";
const BUNDLE_LISTS: &str = "/var/lib/groundwork/apt/lists";
/// The key file in the bundle's repository directory.
pub const BUNDLE_KEYRING: &str = "groundwork-bundle.gpg";

/// The sources line of the bundle's flat repository in `dir` (an absolute path).
pub fn bundle_sources(dir: &str) -> Result<String, String> {
    if !dir.starts_with('/') || dir.chars().any(|c| c.is_whitespace() || c == ']' || c == '[') {
        return Err(format!("the bundle's repository `{dir}` is not an absolute path without spaces"));
    }
    let dir = dir.trim_end_matches('/');
    Ok(format!(
        "# Written by groundwork: the offline bundle's packages, the only source of its installs.
\
         deb [signed-by={dir}/{BUNDLE_KEYRING}] file:{dir} ./
"
    ))
}
pub const MIRROR_FILE: &str = "sources.list.d/groundwork.list";

/// `dpkg-query -W -f '${Status}'` says the package is installed ("install ok installed",
/// "hold ok installed"), not only known or half-removed ("deinstall ok config-files").
pub fn status_is_installed(status: &str) -> bool {
    let words: Vec<&str> = status.split_whitespace().collect();
    words.len() == 3 && words[1] == "ok" && words[2] == "installed"
}

pub fn proxy_conf(url: &str) -> Result<String, String> {
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.chars().any(|c| c.is_whitespace() || c == '"' || c == ';')
    {
        return Err(format!("package proxy `{url}` is not an http:// or https:// URL"));
    }
    Ok(format!("// Written by groundwork: changes here are overwritten.\nAcquire::http::Proxy \"{url}\";\n"))
}

pub fn mirror_sources(mirror: &str, os: &OsRelease) -> Result<String, String> {
    let mut text = String::from("# Written by groundwork: changes here are overwritten.\n");
    let mirror = mirror.trim();
    if mirror.starts_with("deb") {
        for line in mirror.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !(line.starts_with("deb ") || line.starts_with("deb-src ") || line.starts_with("deb [")) {
                return Err(format!("mirror line `{line}` is not a sources.list line (deb URL SUITE COMPONENTS)"));
            }
            text.push_str(line);
            text.push('\n');
        }
        return Ok(text);
    }
    if mirror.is_empty() || mirror.chars().any(char::is_whitespace) || !mirror.contains(':') {
        return Err(format!("mirror `{mirror}` is neither a URL nor a `deb ...` sources.list line"));
    }
    let codename = os.codename.as_deref().ok_or_else(|| {
        "cannot write the mirror's sources line: /etc/os-release has no VERSION_CODENAME (give the mirror as a full `deb URL SUITE COMPONENTS` line)".to_string()
    })?;
    let components = if os.is("ubuntu") { "main universe" } else { "main" };
    text.push_str(&format!("deb {mirror} {codename} {components}\n"));
    Ok(text)
}

/// The newest inode change time (ctime: apt sets the lists' mtimes to the server's dates).
fn newest_change(paths: impl Iterator<Item = PathBuf>) -> Option<(i64, i64)> {
    paths.filter_map(|p| std::fs::metadata(p).ok()).map(|m| (m.ctime(), m.ctime_nsec())).max()
}

fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
}

/// The package lists are missing, or older than a sources file.
pub fn lists_stale(lists: &Path, etc: &Path) -> bool {
    let lists = newest_change(dir_entries(lists).into_iter().filter(|p| p.to_string_lossy().contains("_Packages")));
    let sources = std::iter::once(etc.join("sources.list")).chain(dir_entries(&etc.join("sources.list.d")));
    match (lists, newest_change(sources)) {
        (None, _) => true,
        (Some(l), Some(s)) => s > l,
        (Some(_), None) => false,
    }
}

/// apt wants to locate a package that the current lists do not have.
fn not_located(out: &str) -> bool {
    out.contains("Unable to locate package") || out.contains("has no installation candidate")
}

impl Apt {
    pub fn new(os: OsRelease, repository: Option<PathBuf>) -> Self {
        Apt { os, repository, etc: PathBuf::from("/etc/apt"), lists: PathBuf::from("/var/lib/apt/lists") }
    }

    fn apt_get(&self) -> Cmd {
        let cmd = Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("NEEDRESTART_MODE", "a")
            // Wait for another apt (unattended-upgrades at boot) instead of failing at once.
            .args(["-o", "DPkg::Lock::Timeout=300"]);
        if self.repository.is_none() {
            return cmd;
        }
        cmd.args(["-o", &format!("Dir::Etc::SourceList={BUNDLE_SOURCES}")])
            .args(["-o", &format!("Dir::Etc::SourceParts={BUNDLE_SOURCE_PARTS}")])
            .args(["-o", &format!("Dir::State::Lists={BUNDLE_LISTS}")])
    }

    fn update(&self) -> Result<Output, String> {
        self.apt_get().arg("update").output()
    }

    fn try_install(&self, names: &[String]) -> Result<Output, String> {
        self.apt_get()
            .args(["install", "-y", "--no-install-recommends"])
            .args(["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"])
            .args(names.iter().cloned())
            .output()
    }
}

impl PackageManager for Apt {
    fn missing(&self, names: &[String]) -> Result<Vec<String>, String> {
        let mut missing = Vec::new();
        for name in names {
            let out = Cmd::new("dpkg-query").args(["-W", "-f", "${Status}", name.as_str()]).output()?;
            if !(out.success && status_is_installed(&out.stdout)) {
                missing.push(name.clone());
            }
        }
        Ok(missing)
    }

    fn configure(&self, proxy: Option<&str>, mirror: Option<&str>, dry: bool) -> Result<Vec<String>, String> {
        let mut wanted = Vec::new();
        if let Some(dir) = &self.repository {
            wanted.push((PathBuf::from(BUNDLE_SOURCES), bundle_sources(&dir.display().to_string())?));
            if !dry {
                for d in [BUNDLE_SOURCE_PARTS, &format!("{BUNDLE_LISTS}/partial")] {
                    std::fs::create_dir_all(d).map_err(|e| format!("cannot create {d}: {e}"))?;
                }
            }
        }
        if let Some(p) = proxy {
            wanted.push((self.etc.join(PROXY_FILE), proxy_conf(p)?));
        }
        if let Some(m) = mirror {
            wanted.push((self.etc.join(MIRROR_FILE), mirror_sources(m, &self.os)?));
        }
        let mut changed = Vec::new();
        for (path, content) in wanted {
            if file::sync(&path, content.as_bytes(), Some(0o644), Some((0, 0)), dry)?.any() {
                changed.push(path.display().to_string());
            }
        }
        Ok(changed)
    }

    fn install(&self, names: &[String], refresh: bool) -> Result<(), String> {
        let mut update_failure = None;
        let mut updated = false;
        let mut update = |updated: &mut bool| -> Result<(), String> {
            let out = self.update()?;
            *updated = true;
            if !out.success {
                // Go on: the install says whether what is needed is reachable.
                update_failure = Some(out.failure());
            }
            Ok(())
        };
        if refresh || self.repository.is_some() || lists_stale(&self.lists, &self.etc) {
            update(&mut updated)?;
        }
        let mut out = self.try_install(names)?;
        if !out.success && !updated && not_located(&out.stderr) {
            update(&mut updated)?;
            out = self.try_install(names)?;
        }
        if out.success {
            return Ok(());
        }
        let mut message = format!("installing {} failed: {}", names.join(", "), out.failure());
        if let Some(u) = update_failure {
            message.push_str(&format!("\n(before that, {u})"));
        }
        Err(message)
    }
}

fn check_names(names: &[String]) -> Result<(), String> {
    match names.iter().find(|n| n.is_empty() || n.starts_with('-') || n.chars().any(char::is_whitespace)) {
        Some(bad) => Err(format!("`{bad}` is not a package name")),
        None => Ok(()),
    }
}

pub fn ensure(
    names: &[String],
    proxy: Option<&str>,
    mirror: Option<&str>,
    repository: Option<&str>,
    dry: bool,
) -> Result<Report, String> {
    check_names(names)?;
    let os_release = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .map_err(|e| format!("cannot read /etc/os-release to choose the package manager: {e}"))?;
    let pm = detect(OsRelease::parse(&os_release), repository.map(PathBuf::from))?;
    ensure_with(pm.as_ref(), names, proxy, mirror, dry)
}

pub fn ensure_with(
    pm: &dyn PackageManager,
    names: &[String],
    proxy: Option<&str>,
    mirror: Option<&str>,
    dry: bool,
) -> Result<Report, String> {
    let missing = pm.missing(names)?;
    let configured = pm.configure(proxy, mirror, dry)?;
    let mut parts = Vec::new();
    if !configured.is_empty() {
        parts.push(format!("{} {}", if dry { "would write" } else { "wrote" }, configured.join(", ")));
    }
    if !missing.is_empty() {
        if !dry {
            pm.install(&missing, !configured.is_empty())?;
            let still = pm.missing(&missing)?;
            if !still.is_empty() {
                return Err(format!(
                    "the package manager reported success but {} is still not installed (a virtual package? name the real package)",
                    still.join(", ")
                ));
            }
        }
        parts.insert(0, format!("{} {}", if dry { "would install" } else { "installed" }, missing.join(", ")));
    }
    let changed = !parts.is_empty();
    if !changed {
        parts.push(match names.len() {
            0 => "no packages asked for".to_string(),
            _ => format!("{} already installed", names.join(", ")),
        });
    }
    Ok(Report { changed, summary: parts.join("; "), diff: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn dpkg_status_parsing() {
        assert!(status_is_installed("install ok installed"));
        assert!(status_is_installed("hold ok installed\n"));
        assert!(!status_is_installed("deinstall ok config-files"));
        assert!(!status_is_installed("install ok half-configured"));
        assert!(!status_is_installed("unknown ok not-installed"));
        assert!(!status_is_installed(""));
    }

    #[test]
    fn the_manager_follows_os_release() {
        let debian =
            OsRelease::parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME=bookworm\n");
        assert_eq!(debian, OsRelease { id: "debian".into(), id_like: vec![], codename: Some("bookworm".into()) });
        assert!(detect(debian, None).is_ok());
        let mint = OsRelease::parse("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\nUBUNTU_CODENAME=noble\n");
        assert_eq!(mint.codename.as_deref(), Some("noble"));
        assert!(detect(mint, None).is_ok());
        let rocky = OsRelease::parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n");
        assert_eq!(
            detect(rocky, None).err().unwrap(),
            "ID=rocky uses dnf, which groundwork does not support yet (only apt: Debian, Ubuntu)"
        );
        assert!(detect(OsRelease::parse(""), None).err().unwrap().contains("unknown OS"));
    }

    #[test]
    fn the_bundles_repository_is_the_one_signed_source() {
        assert_eq!(
            bundle_sources("/var/lib/groundwork/bundle/apt/debian-12/").unwrap(),
            "# Written by groundwork: the offline bundle's packages, the only source of its installs.\n\
             deb [signed-by=/var/lib/groundwork/bundle/apt/debian-12/groundwork-bundle.gpg] file:/var/lib/groundwork/bundle/apt/debian-12 ./\n"
        );
        assert!(bundle_sources("relative/apt").is_err());
        assert!(bundle_sources("/a b").is_err());
        assert!(bundle_sources("/a] trusted=yes [x").is_err());
    }

    #[test]
    fn proxy_and_mirror_files() {
        assert_eq!(
            proxy_conf("http://10.78.0.2:3142").unwrap(),
            "// Written by groundwork: changes here are overwritten.\nAcquire::http::Proxy \"http://10.78.0.2:3142\";\n"
        );
        assert!(proxy_conf("http://x\"; Acquire::foo \"y").is_err());
        assert!(proxy_conf("10.0.0.1:3142").is_err());

        let debian = OsRelease { id: "debian".into(), id_like: vec![], codename: Some("bookworm".into()) };
        assert!(
            mirror_sources("http://mirror.local/debian", &debian)
                .unwrap()
                .ends_with("\ndeb http://mirror.local/debian bookworm main\n")
        );
        let ubuntu = OsRelease { id: "ubuntu".into(), id_like: vec!["debian".into()], codename: Some("noble".into()) };
        assert!(
            mirror_sources("http://m/ubuntu", &ubuntu).unwrap().ends_with("deb http://m/ubuntu noble main universe\n")
        );
        let lines = "deb http://m/debian bookworm main contrib\ndeb http://m/security bookworm-security main";
        assert!(mirror_sources(lines, &debian).unwrap().ends_with(&format!("{lines}\n")));
        assert!(mirror_sources("debx y", &debian).is_err());
        let no_codename = OsRelease { codename: None, ..debian };
        assert!(mirror_sources("http://m/debian", &no_codename).unwrap_err().contains("VERSION_CODENAME"));
    }

    #[test]
    fn lists_are_stale_when_missing_or_older_than_the_sources() {
        let t = crate::tasks::testdir::TempDir::new("apt");
        let (lists, etc) = (t.path("lists"), t.path("etc"));
        std::fs::create_dir_all(etc.join("sources.list.d")).unwrap();
        std::fs::create_dir_all(&lists).unwrap();
        std::fs::write(etc.join("sources.list"), "deb http://deb.debian.org/debian bookworm main\n").unwrap();
        assert!(lists_stale(&lists, &etc));
        std::fs::write(lists.join("lock"), "").unwrap();
        assert!(lists_stale(&lists, &etc));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(lists.join("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"), "").unwrap();
        assert!(!lists_stale(&lists, &etc));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(etc.join("sources.list.d/groundwork.list"), "deb http://m bookworm main\n").unwrap();
        assert!(lists_stale(&lists, &etc));
    }

    /// A package manager that remembers what it was asked.
    struct Fake {
        installed: RefCell<Vec<String>>,
        config_differs: bool,
        calls: RefCell<Vec<String>>,
    }

    impl PackageManager for Fake {
        fn missing(&self, names: &[String]) -> Result<Vec<String>, String> {
            Ok(names.iter().filter(|n| !self.installed.borrow().contains(n)).cloned().collect())
        }
        fn configure(&self, proxy: Option<&str>, _: Option<&str>, dry: bool) -> Result<Vec<String>, String> {
            self.calls.borrow_mut().push(format!("configure dry={dry}"));
            Ok(if self.config_differs && proxy.is_some() {
                vec!["/etc/apt/apt.conf.d/90groundwork-proxy".into()]
            } else {
                vec![]
            })
        }
        fn install(&self, names: &[String], refresh: bool) -> Result<(), String> {
            self.calls.borrow_mut().push(format!("install {} refresh={refresh}", names.join(" ")));
            self.installed.borrow_mut().extend(names.iter().filter(|n| *n != "virtual").cloned());
            Ok(())
        }
    }

    #[test]
    fn installs_only_what_is_missing_and_reports_it() {
        let names: Vec<String> = ["containerd", "runc", "tgt"].map(String::from).to_vec();
        let pm = Fake { installed: RefCell::new(vec!["runc".into()]), config_differs: true, calls: RefCell::default() };
        let dry = ensure_with(&pm, &names, Some("http://p:3142"), None, true).unwrap();
        assert_eq!(
            (dry.changed, dry.summary.as_str()),
            (true, "would install containerd, tgt; would write /etc/apt/apt.conf.d/90groundwork-proxy")
        );
        assert_eq!(pm.calls.borrow().as_slice(), ["configure dry=true"]);

        let r = ensure_with(&pm, &names, Some("http://p:3142"), None, false).unwrap();
        assert_eq!(r.summary, "installed containerd, tgt; wrote /etc/apt/apt.conf.d/90groundwork-proxy");
        assert_eq!(pm.calls.borrow().last().unwrap(), "install containerd tgt refresh=true");

        let pm = Fake { config_differs: false, ..pm };
        let again = ensure_with(&pm, &names, Some("http://p:3142"), None, false).unwrap();
        assert_eq!((again.changed, again.summary.as_str()), (false, "containerd, runc, tgt already installed"));

        let err = ensure_with(&pm, &["virtual".to_string()], None, None, false).unwrap_err();
        assert!(err.contains("virtual is still not installed"), "{err}");
        assert!(check_names(&["-o".into()]).is_err() && check_names(&["a b".into()]).is_err());
    }
}
