//! `hostname`: the running kernel's hostname and /etc/hostname. In a container the runtime owns
//! the hostname (sethostname fails with EPERM): fine when it already is the wanted name, then only
//! the file is kept; an error otherwise.

use std::path::Path;

use groundwork_protocol::Report;

use super::file;

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 64 bytes at most.
pub fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

type Get<'a> = &'a dyn Fn() -> Result<String, String>;
type Set<'a> = &'a dyn Fn(&str) -> Result<(), nix::Error>;

pub fn ensure_at(etc_hostname: &Path, name: &str, dry: bool, get: Get, set: Set) -> Result<Report, String> {
    if !valid(name) {
        return Err(format!("`{name}` is not a valid hostname (letters, digits, inner hyphens; dots between labels)"));
    }
    let running = get()?;
    let mut parts = Vec::new();
    if running != name {
        if !dry {
            set(name).map_err(|e| {
                let hint = if e == nix::Error::EPERM {
                    " (a container's hostname is set by its runtime, e.g. `docker run --hostname`)"
                } else {
                    ""
                };
                format!("cannot set the running hostname to {name} (it is {running}): {}{hint}", e.desc())
            })?;
        }
        parts.push(format!("{} the running hostname to {name} (was {running})", if dry { "would set" } else { "set" }));
    }
    let change = file::sync(etc_hostname, format!("{name}\n").as_bytes(), None, None, dry)?;
    if change.any() {
        parts.push(format!("{} {}", if dry { "would write" } else { "wrote" }, etc_hostname.display()));
    }
    let changed = !parts.is_empty();
    if !changed {
        parts.push(format!("hostname is {name}"));
    }
    Ok(Report { changed, summary: parts.join("; "), diff: None })
}

fn gethostname() -> Result<String, String> {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .map_err(|e| format!("cannot read the running hostname: {}", e.desc()))
}

pub fn ensure(name: &str, dry: bool) -> Result<Report, String> {
    ensure_at(Path::new("/etc/hostname"), name, dry, &gethostname, &|n| nix::unistd::sethostname(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;
    use std::cell::RefCell;

    #[test]
    fn hostname_validity() {
        assert!(valid("master-1") && valid("node1.lab.example") && valid("a"));
        assert!(
            !valid("")
                && !valid("-x")
                && !valid("x-")
                && !valid("a..b")
                && !valid("under_score")
                && !valid(&"a".repeat(65))
        );
    }

    #[test]
    fn sets_what_differs_and_keeps_the_file() {
        let t = TempDir::new("hostname");
        let etc = t.path("hostname");
        std::fs::write(&etc, "old\n").unwrap();
        let current = RefCell::new("old".to_string());
        let get = || Ok(current.borrow().clone());
        let set = |n: &str| {
            *current.borrow_mut() = n.to_string();
            Ok(())
        };
        let dry = ensure_at(&etc, "worker-4", true, &get, &set).unwrap();
        assert_eq!(
            dry.summary,
            format!("would set the running hostname to worker-4 (was old); would write {}", etc.display())
        );
        assert_eq!(*current.borrow(), "old");
        let r = ensure_at(&etc, "worker-4", false, &get, &set).unwrap();
        assert!(r.changed);
        assert_eq!(
            (current.borrow().as_str(), std::fs::read_to_string(&etc).unwrap().as_str()),
            ("worker-4", "worker-4\n")
        );
        let again = ensure_at(&etc, "worker-4", false, &get, &set).unwrap();
        assert_eq!((again.changed, again.summary.as_str()), (false, "hostname is worker-4"));
    }

    #[test]
    fn in_a_container_only_the_file_is_fixed_or_it_is_a_clear_error() {
        let t = TempDir::new("hostname-ct");
        let etc = t.path("hostname");
        let get = || Ok("worker-4".to_string());
        let eperm = |_: &str| Err(nix::Error::EPERM);
        let r = ensure_at(&etc, "worker-4", false, &get, &eperm).unwrap();
        assert_eq!(r.summary, format!("wrote {}", etc.display()));
        let err = ensure_at(&etc, "worker-5", false, &get, &eperm).unwrap_err();
        assert!(
            err.starts_with("cannot set the running hostname to worker-5 (it is worker-4): Operation not permitted"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&etc).unwrap(), "worker-4\n");
    }
}
