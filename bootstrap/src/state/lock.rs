//! The cluster lock: one `apply` at a time per cluster. The lock file names who holds it (user,
//! machine, process) and since when; a second `apply` is refused with that. A lock left by a
//! process that died is not broken silently: the operator breaks it explicitly.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub user: String,
    pub machine: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub since: u64,
    pub command: String,
}

impl LockHolder {
    fn me(command: &str) -> LockHolder {
        LockHolder {
            user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            machine: nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
            pid: std::process::id(),
            since: super::journal::now_secs(),
            command: command.to_string(),
        }
    }

    /// Whether the holding process is gone (only knowable on the same machine).
    pub fn is_stale(&self) -> bool {
        let here = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
        here == self.machine && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    pub fn describe(&self) -> String {
        let ago = super::journal::now_secs().saturating_sub(self.since);
        format!(
            "{}@{} (pid {}, `{}`) since {} ({} ago)",
            self.user,
            self.machine,
            self.pid,
            self.command,
            format_epoch(self.since),
            format_age(ago)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "cluster is locked by {holder_text}: another apply is running{stale_hint}",
        holder_text = holder.describe(),
        stale_hint = if holder.is_stale() {
            format!("? No: that process is gone, so the lock is stale. If you are sure no apply runs, break it with --break-lock (lock file: {})", path.display())
        } else {
            String::from("; wait for it to finish")
        }
    )]
    Held { holder: LockHolder, path: PathBuf },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Held while it lives; removes the lock file when dropped.
#[derive(Debug)]
pub struct ClusterLock {
    path: PathBuf,
}

impl ClusterLock {
    /// Takes the lock, or says who has it. `break_stale` removes a lock first (the operator's
    /// explicit decision; refused while the holder is alive on this machine).
    pub fn acquire(path: &Path, command: &str, break_lock: bool) -> Result<ClusterLock, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        if break_lock && let Some(holder) = read_holder(path) {
            if !holder.is_stale() && holder.machine == LockHolder::me(command).machine {
                return Err(LockError::Held { holder, path: path.to_path_buf() });
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut f) => {
                let me = serde_json::to_vec_pretty(&LockHolder::me(command)).expect("serialises");
                f.write_all(&me).and_then(|_| f.sync_all()).map_err(io)?;
                Ok(ClusterLock { path: path.to_path_buf() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = read_holder(path).unwrap_or(LockHolder {
                    user: "?".into(),
                    machine: "?".into(),
                    pid: 0,
                    since: 0,
                    command: "(unreadable lock file)".into(),
                });
                Err(LockError::Held { holder, path: path.to_path_buf() })
            }
            Err(e) => Err(io(e)),
        }
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

fn format_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// UTC, `YYYY-MM-DD HH:MM:SS`, without a date crate.
fn format_epoch(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_who_and_since_and_the_lock_goes_with_its_holder() {
        let dir = std::env::temp_dir().join(format!("gw-lock-{}", std::process::id()));
        let path = dir.join("apply.lock");
        let first = ClusterLock::acquire(&path, "apply", false).unwrap();
        let err = ClusterLock::acquire(&path, "apply", false).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains("since ") && err.contains("wait for it to finish"), "{err}");
        // Alive on this machine: not even --break-lock takes it.
        assert!(ClusterLock::acquire(&path, "apply", true).is_err());
        drop(first);
        assert!(!path.exists());
        let _again = ClusterLock::acquire(&path, "apply", false).unwrap();
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_stale_lock_is_named_stale_and_broken_only_on_request() {
        let dir = std::env::temp_dir().join(format!("gw-lock-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("apply.lock");
        let mut dead = LockHolder::me("apply");
        dead.pid = u32::MAX - 1; // no such process
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        let err = ClusterLock::acquire(&path, "apply", false).unwrap_err().to_string();
        assert!(err.contains("stale") && err.contains("--break-lock"), "{err}");
        let _broken = ClusterLock::acquire(&path, "apply", true).unwrap();
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn epochs_read_as_utc_dates() {
        assert_eq!(format_epoch(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_epoch(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }
}
