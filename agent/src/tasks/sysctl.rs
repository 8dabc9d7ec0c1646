//! `sysctl`: kernel parameters set now (through /proc/sys) and persisted in a sysctl.d file.
//! In a container /proc/sys is often read-only (EROFS) or some keys are shadowed: a key that
//! already has the wanted value is fine there; one that differs and cannot be written is an error.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use groundwork_protocol::Report;

use super::file;

/// /proc/sys/net/ipv4/ip_forward for `net.ipv4.ip_forward` (a key with slashes is taken as a
/// path already, as `sysctl` does, for names holding dots such as `net.ipv4.conf.eth0/1.rp_filter`).
pub fn key_path(proc_sys: &Path, key: &str) -> Result<PathBuf, String> {
    let rel = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    if key.is_empty()
        || rel.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        || key.contains(char::is_whitespace)
    {
        return Err(format!("`{key}` is not a sysctl key"));
    }
    Ok(proc_sys.join(rel))
}

/// Values compare by their words: "32768\t60999" equals "32768 60999".
fn normal(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The persisted file: a header and `key = value` per line, in the order given.
pub fn file_content(values: &[(String, String)]) -> String {
    let mut s = String::from("# Written by groundwork: changes here are overwritten.\n");
    for (k, v) in values {
        s.push_str(&format!("{k} = {}\n", normal(v)));
    }
    s
}

fn read(path: &Path, key: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map(|v| normal(&v)).map_err(|e| match e.kind() {
        ErrorKind::NotFound => {
            format!("sysctl {key} does not exist on this kernel (is the module providing it loaded?)")
        }
        _ => format!("cannot read sysctl {key} ({}): {e}", path.display()),
    })
}

type Writer<'a> = &'a dyn Fn(&Path, &str) -> std::io::Result<()>;

fn write_proc(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{value}\n"))
}

pub fn ensure_at(proc_sys: &Path, file_path: &str, values: &[(String, String)], dry: bool) -> Result<Report, String> {
    apply(proc_sys, file_path, values, dry, &write_proc)
}

fn apply(
    proc_sys: &Path,
    file_path: &str,
    values: &[(String, String)],
    dry: bool,
    write: Writer,
) -> Result<Report, String> {
    if !file_path.starts_with('/') {
        return Err(format!("sysctl file `{file_path}` is not absolute"));
    }
    let mut set = Vec::new();
    let mut errors = Vec::new();
    for (key, want) in values {
        let path = key_path(proc_sys, key)?;
        let want = normal(want);
        let found = match read(&path, key) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if found == want {
            continue;
        }
        // Unwritable here (read-only /proc/sys in a container, a shadowed key): fine only when the
        // value is right after all.
        if !dry
            && let Err(e) = write(&path, &want)
            && read(&path, key).ok().as_deref() != Some(want.as_str())
        {
            errors.push(format!("sysctl {key} is {found}, wanted {want}, and it cannot be set here: {e}"));
            continue;
        }
        set.push(format!("{key} = {want} (was {found})"));
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let path = Path::new(file_path);
    let content = file_content(values);
    let change = file::sync(path, content.as_bytes(), Some(0o644), Some((0, 0)), dry)?;
    let mut parts = Vec::new();
    if !set.is_empty() {
        parts.push(format!("{} {}", if dry { "would set" } else { "set" }, set.join(", ")));
    }
    if change.any() {
        parts.push(format!("{} {file_path}", if dry { "would write" } else { "wrote" }));
    }
    let changed = !parts.is_empty();
    if !changed {
        parts.push(format!("{} already set; {file_path} is up to date", plural(values.len(), "value")));
    }
    let diff = (change.created || change.content)
        .then(|| super::diff::unified(file_path, &change.old, &content))
        .filter(|d| !d.is_empty());
    Ok(Report { changed, summary: parts.join("; "), diff })
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

pub fn ensure(file_path: &str, values: &[(String, String)], dry: bool) -> Result<Report, String> {
    ensure_at(Path::new("/proc/sys"), file_path, values, dry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn keys_map_to_proc_sys_paths() {
        let root = Path::new("/proc/sys");
        assert_eq!(key_path(root, "net.ipv4.ip_forward").unwrap(), Path::new("/proc/sys/net/ipv4/ip_forward"));
        assert_eq!(
            key_path(root, "net/ipv4/conf/eth0.1/rp_filter").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/eth0.1/rp_filter")
        );
        assert!(
            key_path(root, "net..x").is_err()
                && key_path(root, "../etc/passwd").is_err()
                && key_path(root, "").is_err()
        );
    }

    #[test]
    fn the_file_holds_exactly_the_set() {
        assert_eq!(
            file_content(&[kv("net.ipv4.ip_forward", "1"), kv("net.ipv4.ip_local_port_range", "1024\t65000 ")]),
            "# Written by groundwork: changes here are overwritten.\nnet.ipv4.ip_forward = 1\nnet.ipv4.ip_local_port_range = 1024 65000\n"
        );
    }

    #[test]
    fn sets_what_differs_persists_and_is_idempotent() {
        let t = TempDir::new("sysctl");
        let proc_sys = t.path("proc/sys");
        std::fs::create_dir_all(proc_sys.join("net/ipv4")).unwrap();
        std::fs::create_dir_all(proc_sys.join("vm")).unwrap();
        std::fs::write(proc_sys.join("net/ipv4/ip_forward"), "0\n").unwrap();
        std::fs::write(proc_sys.join("vm/overcommit_memory"), "1\n").unwrap();
        let conf = t.path("etc/sysctl.d/90-groundwork.conf");
        let conf_s = conf.to_str().unwrap();
        let values = [kv("net.ipv4.ip_forward", "1"), kv("vm.overcommit_memory", "1")];

        let dry = ensure_at(&proc_sys, conf_s, &values, true).unwrap();
        assert_eq!(dry.summary, format!("would set net.ipv4.ip_forward = 1 (was 0); would write {conf_s}"));
        assert_eq!(std::fs::read_to_string(proc_sys.join("net/ipv4/ip_forward")).unwrap(), "0\n");
        assert!(!conf.exists());

        let r = ensure_at(&proc_sys, conf_s, &values, false).unwrap();
        assert!(r.changed);
        assert_eq!(r.summary, format!("set net.ipv4.ip_forward = 1 (was 0); wrote {conf_s}"));
        assert!(r.diff.unwrap().contains("+net.ipv4.ip_forward = 1\n"));
        assert_eq!(std::fs::read_to_string(proc_sys.join("net/ipv4/ip_forward")).unwrap(), "1\n");
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), file_content(&values));

        let again = ensure_at(&proc_sys, conf_s, &values, false).unwrap();
        assert_eq!((again.changed, again.summary), (false, format!("2 values already set; {conf_s} is up to date")));

        let err = ensure_at(&proc_sys, conf_s, &[kv("net.bridge.bridge-nf-call-iptables", "1")], false).unwrap_err();
        assert_eq!(
            err,
            "sysctl net.bridge.bridge-nf-call-iptables does not exist on this kernel (is the module providing it loaded?)"
        );
    }

    #[test]
    fn an_unwritable_key_is_fine_when_right_and_an_error_naming_key_found_and_wanted_when_not() {
        let t = TempDir::new("sysctl-ro");
        let proc_sys = t.path("proc/sys");
        std::fs::create_dir_all(proc_sys.join("kernel")).unwrap();
        std::fs::create_dir_all(proc_sys.join("net/ipv4")).unwrap();
        std::fs::write(proc_sys.join("kernel/panic"), "10\n").unwrap();
        std::fs::write(proc_sys.join("net/ipv4/ip_forward"), "1\n").unwrap();
        let conf = t.path("90.conf");
        let conf_s = conf.to_str().unwrap();
        let read_only: Writer = &|_, _| Err(std::io::Error::from_raw_os_error(30));

        let ok =
            apply(&proc_sys, conf_s, &[kv("net.ipv4.ip_forward", "1"), kv("kernel.panic", "10")], false, read_only);
        assert_eq!(ok.unwrap().summary, format!("wrote {conf_s}"));

        let err =
            apply(&proc_sys, conf_s, &[kv("kernel.panic", "0"), kv("net.ipv4.ip_forward", "0")], false, read_only)
                .unwrap_err();
        assert_eq!(
            err,
            "sysctl kernel.panic is 10, wanted 0, and it cannot be set here: Read-only file system (os error 30); \
             sysctl net.ipv4.ip_forward is 1, wanted 0, and it cannot be set here: Read-only file system (os error 30)"
        );
        // Nothing was persisted for the failed set.
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            file_content(&[kv("net.ipv4.ip_forward", "1"), kv("kernel.panic", "10")])
        );
    }
}
