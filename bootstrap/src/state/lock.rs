//! The controller's cluster lock: one writing command at a time per state directory on this
//! machine. It is an advisory `flock` on `apply.lock` (std's `File::try_lock`), so the kernel
//! releases it when the process ends however it ends (Ctrl-C, SIGKILL, a crash): there is never a
//! stale lock to break. The file also names the holder (user, machine, process, command, since
//! when) so that a refused command can say who is in the way.
//!
//! Two controllers on two machines do not share this file: `ops::lease` adds the cluster-wide
//! lease taken on the masters themselves.

use std::io::{Read, Seek, Write};
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
    /// Random per run: lets a run recognise a lease it still holds through an old connection.
    #[serde(default)]
    pub run: String,
}

impl LockHolder {
    pub fn me(command: &str) -> LockHolder {
        LockHolder {
            user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            machine: nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
            pid: std::process::id(),
            since: super::journal::now_secs(),
            command: command.to_string(),
            run: run_id(),
        }
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

    /// One line of JSON (what the lease writes on the masters).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a holder serialises")
    }
}

/// One random id for this process's run.
fn run_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("system randomness");
        hex::encode(bytes)
    })
    .clone()
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the cluster is locked by {}: another command that changes it is running; wait for it to finish", holder.describe())]
    Held { holder: Box<LockHolder>, path: PathBuf },
    #[error(
        "the cluster is locked by another process on this machine (it has not said who yet: lock file {}); wait for it to finish",
        path.display()
    )]
    HeldUnnamed { path: PathBuf },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Held while it lives; the kernel releases it when the file closes (drop or process death).
#[derive(Debug)]
pub struct ClusterLock {
    file: std::fs::File,
    path: PathBuf,
}

impl ClusterLock {
    /// Takes the lock, or says who has it. Never waits.
    pub fn acquire(path: &Path, command: &str) -> Result<ClusterLock, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(match serde_json::from_str::<LockHolder>(&text) {
                    Ok(holder) => LockError::Held { holder: Box::new(holder), path: path.to_path_buf() },
                    Err(_) => LockError::HeldUnnamed { path: path.to_path_buf() },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let me = serde_json::to_vec_pretty(&LockHolder::me(command)).expect("serialises");
        file.set_len(0).and_then(|_| file.rewind()).and_then(|_| file.write_all(&me)).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(ClusterLock { file, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        // Say nobody holds it; the lock itself goes with the file descriptor.
        let _ = self.file.set_len(0);
    }
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apply.lock");
        let first = ClusterLock::acquire(&path, "apply").unwrap();
        let err = ClusterLock::acquire(&path, "apply").unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains("since ") && err.contains("wait for it to finish"), "{err}");
        drop(first);
        let _again = ClusterLock::acquire(&path, "apply").unwrap();
    }

    #[test]
    fn a_lock_file_left_behind_is_no_lock_and_an_empty_one_neither() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apply.lock");
        // What a process killed with SIGKILL leaves: the file with its holder, but no flock.
        let mut dead = LockHolder::me("apply");
        dead.pid = u32::MAX - 1;
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        let held = ClusterLock::acquire(&path, "apply").expect("a file alone holds nothing");
        drop(held);
        std::fs::write(&path, b"").unwrap();
        ClusterLock::acquire(&path, "apply").expect("an empty file holds nothing");
    }

    #[test]
    fn a_holder_in_another_process_is_named_and_released_when_it_dies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apply.lock");
        std::fs::write(&path, LockHolder { pid: 4242, ..LockHolder::me("apply elsewhere") }.to_line()).unwrap();
        // Another process holds the flock (util-linux flock on an fd the process keeps), as another
        // groundwork would; killing it must release the lock.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 9>>\"$1\"; flock 9; exec sleep 30")
            .arg("sh")
            .arg(&path)
            .spawn()
            .expect("sh and util-linux flock run");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let err = loop {
            match ClusterLock::acquire(&path, "apply") {
                Err(e) => break e.to_string(),
                Ok(l) => {
                    drop(l);
                    assert!(std::time::Instant::now() < deadline, "flock never took the lock");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    // The file was truncated by our drop: put the holder back for the check below.
                    std::fs::write(&path, LockHolder { pid: 4242, ..LockHolder::me("apply elsewhere") }.to_line())
                        .unwrap();
                }
            }
        };
        assert!(err.contains("pid 4242") && err.contains("apply elsewhere"), "{err}");
        child.kill().unwrap();
        child.wait().unwrap();
        // Killed before its `exec`, sh may leave its `flock` child alive for a moment, holding
        // the same open file: the kernel releases the lock when that one exits too.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = ClusterLock::acquire(&path, "apply") {
            assert!(std::time::Instant::now() < deadline, "not released when the holder died: {e}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn epochs_read_as_utc_dates() {
        assert_eq!(format_epoch(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_epoch(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }
}
