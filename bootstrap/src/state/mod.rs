//! groundwork's memory of a cluster, in a directory next to the inventory:
//! `.groundwork/<cluster>/` holds the journal of what each phase did on each host, the cluster
//! lock, the PKI and the admin kubeconfig. Everything written here is written atomically.

pub mod archive;
pub mod identity;
pub mod journal;
pub mod lock;
pub mod removed;
pub mod secrets_store;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use journal::{Journal, JournalEntry, PhaseStatus};
pub use lock::{ClusterLock, LockError, LockHolder};

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory of cluster `name` whose inventory lives in `inventory_dir`.
    pub fn for_cluster(inventory_dir: &Path, name: &str) -> StateDir {
        StateDir { root: inventory_dir.join(".groundwork").join(name) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory (0700: it holds keys).
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        set_mode(&self.root, 0o700)
    }

    pub fn journal_file(&self) -> PathBuf {
        self.root.join("journal.json")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("apply.lock")
    }
    pub fn pki_dir(&self) -> PathBuf {
        self.root.join("pki")
    }
    pub fn kubeconfig_file(&self) -> PathBuf {
        self.root.join("admin.conf")
    }
}

/// Writes `content` to `path` through a temporary file in the same directory, so a reader (or a
/// crash) never sees half a file.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        set_mode(&tmp, mode)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_writes_replace_whole_files_with_the_asked_mode() {
        let dir = std::env::temp_dir().join(format!("gw-state-{}", std::process::id()));
        let state = StateDir { root: dir.clone() };
        state.create().unwrap();
        let f = state.root().join("x/secret");
        write_atomic(&f, b"one", 0o600).unwrap();
        write_atomic(&f, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_dir(f.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
