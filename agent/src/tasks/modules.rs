//! `modules`: kernel modules present now and listed in a modules-load.d file. A module is present
//! when loaded (/proc/modules, /sys/module/NAME), built in (modules.builtin), or when the feature
//! it provides is visibly there (some kernels, and every container, cannot load modules at all).

use std::path::{Path, PathBuf};

use groundwork_protocol::Report;

use super::cmd::Cmd;
use super::file;

/// Where the kernel's views live: the real ones, or a fake tree in tests.
#[derive(Debug, Clone)]
pub struct Roots {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub lib_modules: PathBuf,
    /// `uname -r`
    pub release: String,
}

impl Roots {
    pub fn system() -> Self {
        let release =
            nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        Roots { proc: "/proc".into(), sys: "/sys".into(), lib_modules: "/lib/modules".into(), release }
    }

    /// The kernel can load modules at all (CONFIG_MODULES): it has /proc/modules.
    pub fn can_load(&self) -> bool {
        self.proc.join("modules").exists()
    }
}

/// Module names use `_` and `-` interchangeably; the kernel shows `_`.
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Why `name` counts as present, or None.
pub fn present(roots: &Roots, name: &str) -> Option<&'static str> {
    let name = canonical(name);
    if read(&roots.proc.join("modules")).lines().any(|l| l.split_whitespace().next() == Some(name.as_str())) {
        return Some("loaded");
    }
    if roots.sys.join("module").join(&name).exists() {
        return Some("loaded");
    }
    let builtin = read(&roots.lib_modules.join(&roots.release).join("modules.builtin"));
    if builtin
        .lines()
        .filter_map(|l| l.trim().rsplit('/').next())
        .any(|f| f.strip_suffix(".ko").is_some_and(|m| canonical(m) == name))
    {
        return Some("built in");
    }
    let feature = match name.as_str() {
        "br_netfilter" => roots.proc.join("sys/net/bridge").exists(),
        "overlay" => {
            read(&roots.proc.join("filesystems")).lines().any(|l| l.split_whitespace().last() == Some("overlay"))
        }
        "ip_vs" => roots.proc.join("net/ip_vs").exists(),
        "nf_conntrack" => roots.proc.join("sys/net/netfilter/nf_conntrack_max").exists(),
        _ => false,
    };
    feature.then_some("built in")
}

pub fn file_content(names: &[String]) -> String {
    let mut s = String::from("# Written by groundwork: changes here are overwritten.\n");
    for n in names {
        s.push_str(n);
        s.push('\n');
    }
    s
}

type Loader<'a> = &'a dyn Fn(&str) -> Result<(), String>;

fn modprobe(name: &str) -> Result<(), String> {
    Cmd::new("modprobe").arg(name).run().map(|_| ()).map_err(|e| format!("cannot load kernel module {name}: {e}"))
}

pub fn ensure_at(roots: &Roots, file_path: &str, names: &[String], dry: bool, load: Loader) -> Result<Report, String> {
    if !file_path.starts_with('/') {
        return Err(format!("modules file `{file_path}` is not absolute"));
    }
    if let Some(bad) =
        names.iter().find(|n| n.is_empty() || n.starts_with('-') || n.contains(|c: char| c.is_whitespace() || c == '/'))
    {
        return Err(format!("`{bad}` is not a kernel module name"));
    }
    let missing: Vec<&String> = names.iter().filter(|n| present(roots, n).is_none()).collect();
    if !missing.is_empty() && !roots.can_load() {
        let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        let (module, is) = if missing.len() == 1 { ("module", "is") } else { ("modules", "are") };
        return Err(format!(
            "kernel {module} {list} {is} not loaded and this kernel cannot load modules; {} not built in either",
            if missing.len() == 1 { "it is" } else { "they are" }
        ));
    }
    if !dry {
        for name in &missing {
            load(name)?;
        }
    }
    let content = file_content(names);
    let change = file::sync(Path::new(file_path), content.as_bytes(), Some(0o644), Some((0, 0)), dry)?;
    let mut parts = Vec::new();
    if !missing.is_empty() {
        let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        parts.push(format!("{} {list}", if dry { "would load" } else { "loaded" }));
    }
    if change.any() {
        parts.push(format!("{} {file_path}", if dry { "would write" } else { "wrote" }));
    }
    let changed = !parts.is_empty();
    if !changed {
        let found: Vec<String> =
            names.iter().map(|n| format!("{n} ({})", present(roots, n).unwrap_or("present"))).collect();
        parts.push(format!(
            "{}; {file_path} is up to date",
            if found.is_empty() { "no modules".into() } else { found.join(", ") }
        ));
    }
    Ok(Report { changed, summary: parts.join("; "), diff: None })
}

pub fn ensure(file_path: &str, names: &[String], dry: bool) -> Result<Report, String> {
    ensure_at(&Roots::system(), file_path, names, dry, &modprobe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;
    use std::fs;

    fn roots(t: &TempDir) -> Roots {
        let r = Roots {
            proc: t.path("proc"),
            sys: t.path("sys"),
            lib_modules: t.path("lib/modules"),
            release: "6.1.0-test".into(),
        };
        fs::create_dir_all(&r.proc).unwrap();
        fs::create_dir_all(r.sys.join("module")).unwrap();
        fs::create_dir_all(r.lib_modules.join(&r.release)).unwrap();
        r
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn present_by_proc_modules_sys_module_builtin_or_feature() {
        let t = TempDir::new("mods");
        let r = roots(&t);
        assert_eq!(present(&r, "br_netfilter"), None);
        fs::write(r.proc.join("modules"), "br_netfilter 32768 0 - Live 0x0000000000000000\n").unwrap();
        assert_eq!(present(&r, "br_netfilter"), Some("loaded"));
        fs::create_dir_all(r.sys.join("module/nf_conntrack")).unwrap();
        assert_eq!(present(&r, "nf-conntrack"), Some("loaded"));
        fs::write(
            r.lib_modules.join("6.1.0-test/modules.builtin"),
            "kernel/fs/overlayfs/overlay.ko\nkernel/net/ipv4/ip-tunnel.ko\n",
        )
        .unwrap();
        assert_eq!(present(&r, "overlay"), Some("built in"));
        assert_eq!(present(&r, "ip_tunnel"), Some("built in"));
        assert_eq!(present(&r, "ip_vs"), None);
        fs::create_dir_all(r.proc.join("net")).unwrap();
        fs::write(r.proc.join("net/ip_vs"), "").unwrap();
        assert_eq!(present(&r, "ip_vs"), Some("built in"));
    }

    #[test]
    fn features_count_when_the_kernel_cannot_load_modules() {
        let t = TempDir::new("mods-nomod");
        let r = roots(&t);
        fs::create_dir_all(r.proc.join("sys/net/bridge")).unwrap();
        fs::write(r.proc.join("filesystems"), "nodev\tsysfs\nnodev\toverlay\n").unwrap();
        assert!(!r.can_load());
        let conf = t.path("etc/modules-load.d/groundwork.conf");
        let cs = conf.to_str().unwrap();
        let never: Loader = &|n| panic!("would load {n}");
        let want = names(&["br_netfilter", "overlay"]);
        let r1 = ensure_at(&r, cs, &want, false, never).unwrap();
        assert_eq!((r1.changed, r1.summary), (true, format!("wrote {cs}")));
        assert_eq!(fs::read_to_string(&conf).unwrap(), file_content(&want));
        let r2 = ensure_at(&r, cs, &want, false, never).unwrap();
        assert_eq!(
            (r2.changed, r2.summary),
            (false, format!("br_netfilter (built in), overlay (built in); {cs} is up to date"))
        );
        let err = ensure_at(&r, cs, &names(&["nfsd", "overlay"]), false, never).unwrap_err();
        assert_eq!(
            err,
            "kernel module nfsd is not loaded and this kernel cannot load modules; it is not built in either"
        );
        assert_eq!(fs::read_to_string(&conf).unwrap(), file_content(&want));
    }

    #[test]
    fn missing_modules_are_loaded_unless_dry_run() {
        let t = TempDir::new("mods-load");
        let r = roots(&t);
        fs::write(r.proc.join("modules"), "").unwrap();
        let conf = t.path("m.conf");
        let cs = conf.to_str().unwrap();
        let loaded = std::cell::RefCell::new(Vec::new());
        let load = |n: &str| {
            loaded.borrow_mut().push(n.to_string());
            Ok(())
        };
        let dry = ensure_at(&r, cs, &names(&["iscsi_tcp"]), true, &load).unwrap();
        assert_eq!(dry.summary, format!("would load iscsi_tcp; would write {cs}"));
        assert!(loaded.borrow().is_empty() && !conf.exists());
        let done = ensure_at(&r, cs, &names(&["iscsi_tcp"]), false, &load).unwrap();
        assert_eq!(done.summary, format!("loaded iscsi_tcp; wrote {cs}"));
        assert_eq!(loaded.borrow().as_slice(), ["iscsi_tcp"]);
        let fail: Loader = &|n| Err(format!("cannot load kernel module {n}: `modprobe {n}` failed"));
        assert!(
            ensure_at(&r, cs, &names(&["nope"]), false, fail)
                .unwrap_err()
                .starts_with("cannot load kernel module nope")
        );
    }
}
