//! `hosts_block`: groundwork's block of /etc/hosts, between `# BEGIN groundwork` and
//! `# END groundwork`, holding exactly the wanted `ADDRESS NAME...` lines; the rest of the file is
//! left byte for byte. (In Docker /etc/hosts is a bind mount: the write falls back to in place.)

use std::path::Path;

use groundwork_protocol::Report;
use groundwork_protocol::tasks::HostsEntry;

use super::{diff, file};

pub const BEGIN: &str = "# BEGIN groundwork";
pub const END: &str = "# END groundwork";

fn check(entries: &[HostsEntry]) -> Result<(), String> {
    for e in entries {
        let bad = |s: &str| s.is_empty() || s.contains(char::is_whitespace) || s.starts_with('#');
        if bad(&e.address) || e.address.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("hosts entry address `{}` is not an IP address", e.address));
        }
        if e.names.is_empty() {
            return Err(format!("hosts entry {} has no names", e.address));
        }
        if let Some(n) = e.names.iter().find(|n| bad(n)) {
            return Err(format!("`{n}` (for {}) is not a host name", e.address));
        }
    }
    Ok(())
}

/// `text` with the block holding exactly `entries`: replaced where it was (the first one, if a
/// hand edit left several), appended otherwise; removed when there are no entries.
pub fn edit(text: &str, entries: &[HostsEntry]) -> Result<String, String> {
    check(entries)?;
    let mut block = String::new();
    if !entries.is_empty() {
        block.push_str(BEGIN);
        block.push('\n');
        for e in entries {
            block.push_str(&format!("{} {}\n", e.address, e.names.join(" ")));
        }
        block.push_str(END);
        block.push('\n');
    }
    let mut out = String::with_capacity(text.len() + block.len());
    let mut inside = false;
    let mut placed = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if !inside && bare == BEGIN {
            inside = true;
            if !placed {
                out.push_str(&block);
                placed = true;
            }
        } else if inside {
            if bare == END {
                inside = false;
            }
        } else if bare == END {
            return Err(format!("`{END}` without `{BEGIN}` before it: fix the file by hand"));
        } else {
            out.push_str(line);
        }
    }
    if inside {
        return Err(format!("`{BEGIN}` without `{END}` after it: fix the file by hand"));
    }
    if !placed && !block.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&block);
    }
    Ok(out)
}

pub fn ensure_at(path: &Path, entries: &[HostsEntry], dry: bool) -> Result<Report, String> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let new = edit(&old, entries).map_err(|e| format!("{}: {e}", path.display()))?;
    if new == old {
        let what = if entries.is_empty() { "no groundwork block" } else { "groundwork block is up to date" };
        return Ok(Report { changed: false, summary: format!("{}: {what}", path.display()), diff: None });
    }
    file::sync(path, new.as_bytes(), None, None, dry)?;
    let summary = match (entries.len(), dry) {
        (0, false) => format!("removed the groundwork block of {}", path.display()),
        (0, true) => format!("would remove the groundwork block of {}", path.display()),
        (n, _) => format!(
            "{} the groundwork block of {} ({n} {})",
            if dry { "would update" } else { "updated" },
            path.display(),
            if n == 1 { "entry" } else { "entries" }
        ),
    };
    let d = diff::unified(&path.display().to_string(), &old, &new);
    Ok(Report { changed: true, summary, diff: Some(d).filter(|d| !d.is_empty()) })
}

pub fn ensure(entries: &[HostsEntry], dry: bool) -> Result<Report, String> {
    ensure_at(Path::new("/etc/hosts"), entries, dry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;

    fn e(address: &str, names: &[&str]) -> HostsEntry {
        HostsEntry { address: address.into(), names: names.iter().map(|s| s.to_string()).collect() }
    }

    const DOCKER: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.78.0.14\tworker-4\n";

    #[test]
    fn inserts_at_the_end_and_leaves_the_rest() {
        let new =
            edit(DOCKER, &[e("10.78.0.11", &["master-1", "master-1.lab"]), e("10.78.0.12", &["master-2"])]).unwrap();
        assert_eq!(
            new,
            format!(
                "{DOCKER}# BEGIN groundwork\n10.78.0.11 master-1 master-1.lab\n10.78.0.12 master-2\n# END groundwork\n"
            )
        );
        // No final newline in the original: one is added before the block.
        assert_eq!(
            edit("127.0.0.1 localhost", &[e("::1", &["x"])]).unwrap(),
            "127.0.0.1 localhost\n# BEGIN groundwork\n::1 x\n# END groundwork\n"
        );
        assert_eq!(edit("", &[e("10.0.0.1", &["a"])]).unwrap(), "# BEGIN groundwork\n10.0.0.1 a\n# END groundwork\n");
    }

    #[test]
    fn replaces_in_place_dropping_stale_entries_and_is_stable() {
        let text = "127.0.0.1 localhost\n# BEGIN groundwork\n10.0.0.9 old-node\n10.0.0.1 a\n# END groundwork\n# mine\n10.1.1.1 by-hand\n";
        let want = [e("10.0.0.1", &["a"]), e("10.0.0.2", &["b"])];
        let new = edit(text, &want).unwrap();
        assert_eq!(
            new,
            "127.0.0.1 localhost\n# BEGIN groundwork\n10.0.0.1 a\n10.0.0.2 b\n# END groundwork\n# mine\n10.1.1.1 by-hand\n"
        );
        assert_eq!(edit(&new, &want).unwrap(), new);
        // Two blocks (a hand edit): one remains, where the first was.
        let twice = format!("{new}# BEGIN groundwork\n10.0.0.3 c\n# END groundwork\n");
        assert_eq!(edit(&twice, &want).unwrap(), new);
        // No entries: the block goes away.
        assert_eq!(edit(&new, &[]).unwrap(), "127.0.0.1 localhost\n# mine\n10.1.1.1 by-hand\n");
    }

    #[test]
    fn refuses_broken_markers_and_bad_entries() {
        assert!(edit("# BEGIN groundwork\n1.2.3.4 x\n", &[]).unwrap_err().contains("without `# END groundwork`"));
        assert!(edit("# END groundwork\n", &[]).unwrap_err().contains("without `# BEGIN groundwork`"));
        assert!(edit("", &[e("10.0.0.1", &["a b"])]).unwrap_err().contains("`a b`"));
        assert!(edit("", &[e("10.0.0.1\n10.0.0.2", &["a"])]).is_err());
        assert!(edit("", &[e("master-1", &["a"])]).unwrap_err().contains("not an IP address"));
        assert!(edit("", &[e("10.0.0.1", &[])]).unwrap_err().contains("no names"));
    }

    #[test]
    fn the_file_changes_once_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempDir::new("hosts");
        let p = t.path("hosts");
        std::fs::write(&p, DOCKER).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let want = [e("10.78.0.11", &["master-1"])];
        let r = ensure_at(&p, &want, false).unwrap();
        assert_eq!(r.summary, format!("updated the groundwork block of {} (1 entry)", p.display()));
        assert!(r.changed && r.diff.unwrap().contains("+10.78.0.11 master-1\n"));
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        let again = ensure_at(&p, &want, false).unwrap();
        assert_eq!((again.changed, again.summary), (false, format!("{}: groundwork block is up to date", p.display())));
        let gone = ensure_at(&p, &[], false).unwrap();
        assert_eq!((gone.changed, gone.summary), (true, format!("removed the groundwork block of {}", p.display())));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), DOCKER);
    }
}
