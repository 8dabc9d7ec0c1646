//! `swap_off`: no active swap (kubelet refuses to run with it by default), and the swap lines of
//! /etc/fstab commented out (`# groundwork: ` prefix) so it stays off after a reboot.

use std::path::Path;

use groundwork_protocol::Report;

use super::cmd::Cmd;
use super::file;

pub const PREFIX: &str = "# groundwork: ";

/// The active swap devices and files in /proc/swaps (after its header line).
pub fn active(proc_swaps: &str) -> Vec<String> {
    proc_swaps.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

/// fstab with every active swap line commented out, and how many; None when there is none.
pub fn comment_out_swap(fstab: &str) -> Option<(String, usize)> {
    let mut changed = 0;
    let mut out = String::with_capacity(fstab.len() + 32);
    for line in fstab.split_inclusive('\n') {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !line.trim_start().starts_with('#') && fields.get(2) == Some(&"swap") {
            out.push_str(PREFIX);
            changed += 1;
        }
        out.push_str(line);
    }
    (changed > 0).then_some((out, changed))
}

pub fn ensure_at(proc_swaps: &Path, fstab: &Path, dry: bool) -> Result<Report, String> {
    let swaps = active(&std::fs::read_to_string(proc_swaps).unwrap_or_default());
    let mut parts = Vec::new();
    if !swaps.is_empty() {
        if !dry {
            Cmd::new("swapoff")
                .arg("-a")
                .run()
                .map_err(|e| format!("cannot turn swap off ({}): {e}", swaps.join(", ")))?;
        }
        parts.push(format!("{} swap off ({})", if dry { "would turn" } else { "turned" }, swaps.join(", ")));
    }
    let text = match std::fs::read_to_string(fstab) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", fstab.display())),
    };
    if let Some((new, n)) = text.as_deref().and_then(comment_out_swap) {
        file::sync(fstab, new.as_bytes(), None, None, dry)?;
        let lines = if n == 1 { "1 swap line" } else { "swap lines" };
        parts.push(format!(
            "{} {lines} in {}",
            if dry { "would comment out" } else { "commented out" },
            fstab.display()
        ));
    }
    let changed = !parts.is_empty();
    if !changed {
        parts.push(format!("no swap active, none in {}", fstab.display()));
    }
    Ok(Report { changed, summary: parts.join("; "), diff: None })
}

pub fn ensure(dry: bool) -> Result<Report, String> {
    ensure_at(Path::new("/proc/swaps"), Path::new("/etc/fstab"), dry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;

    const FSTAB: &str = "# /etc/fstab: static file system information.\n\
        UUID=abcd / ext4 errors=remount-ro 0 1\n\
        UUID=ef01 none swap sw 0 0\n\
        # UUID=old none swap sw 0 0\n\
        /swapfile\tnone\tswap\tdefaults\t0\t0";

    #[test]
    fn reads_active_swaps() {
        let swaps = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda3 partition 999420 0 -2\n/swapfile file 1024 0 -3\n";
        assert_eq!(active(swaps), ["/dev/sda3", "/swapfile"]);
        assert!(active("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
    }

    #[test]
    fn comments_out_only_live_swap_lines() {
        let (new, n) = comment_out_swap(FSTAB).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            new,
            "# /etc/fstab: static file system information.\n\
             UUID=abcd / ext4 errors=remount-ro 0 1\n\
             # groundwork: UUID=ef01 none swap sw 0 0\n\
             # UUID=old none swap sw 0 0\n\
             # groundwork: /swapfile\tnone\tswap\tdefaults\t0\t0"
        );
        assert_eq!(comment_out_swap(&new), None);
        assert_eq!(comment_out_swap("UUID=abcd / ext4 defaults 0 1\n"), None);
    }

    #[test]
    fn fstab_is_fixed_once() {
        let t = TempDir::new("swap");
        let (swaps, fstab) = (t.path("swaps"), t.path("fstab"));
        std::fs::write(&swaps, "Filename\tType\tSize\tUsed\tPriority\n").unwrap();
        std::fs::write(&fstab, FSTAB).unwrap();
        let dry = ensure_at(&swaps, &fstab, true).unwrap();
        assert!(dry.changed && dry.summary.starts_with("would comment out swap lines in "));
        assert_eq!(std::fs::read_to_string(&fstab).unwrap(), FSTAB);
        let r = ensure_at(&swaps, &fstab, false).unwrap();
        assert_eq!(r.summary, format!("commented out swap lines in {}", fstab.display()));
        let again = ensure_at(&swaps, &fstab, false).unwrap();
        assert_eq!((again.changed, again.summary), (false, format!("no swap active, none in {}", fstab.display())));
        assert!(!ensure_at(&swaps, &t.path("no-fstab"), false).unwrap().changed);
    }
}
