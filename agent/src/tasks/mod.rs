//! Idempotent tasks (`ensure` requests): each compares what is with what should be, changes
//! nothing when they agree (`changed: false`) or under `dry_run`, and otherwise makes it so. One
//! file per kind of task; `cmd` runs programs, `fsx` writes files atomically, `diff` shows changes.
//! Errors are one message an operator can act on, naming the file, package or unit.

mod cmd;
mod diff;
mod directory;
mod file;
mod fsx;
mod hostname;
mod hosts;
mod images;
mod install;
mod modules;
mod packages;
mod service;
mod sparse;
mod swap;
mod sysctl;
pub mod tgt;

use groundwork_protocol::tasks::{Ensure, Report, Task};

pub fn ensure(e: Ensure) -> Result<Report, String> {
    let dry = e.dry_run;
    match e.task {
        Task::Packages { names, proxy, mirror, repository } => {
            packages::ensure(&names, proxy.as_deref(), mirror.as_deref(), repository.as_deref(), dry)
        }
        Task::File { path, content, mode, owner, group } => file::ensure(&path, &content, mode, &owner, &group, dry),
        Task::Install { source, path, mode, sha256 } => install::ensure(&source, &path, mode, &sha256, dry),
        Task::Uploaded { path, sha256 } => install::uploaded(&path, &sha256),
        Task::Directory { path, mode } => directory::ensure(&path, mode, dry),
        Task::Service { name, enabled, running, restart } => service::ensure(&name, enabled, running, restart, dry),
        Task::Sysctl { file, values } => sysctl::ensure(&file, &values, dry),
        Task::Modules { file, names } => modules::ensure(&file, &names, dry),
        Task::SwapOff => swap::ensure(dry),
        Task::Hostname { name } => hostname::ensure(&name, dry),
        Task::HostsBlock { entries } => hosts::ensure(&entries, dry),
        Task::SparseFile { path, size, mode } => sparse::ensure(&path, size, mode, dry),
        Task::ImportImages { archive, namespace, images } => images::ensure(&archive, &namespace, &images, dry),
        Task::TgtAccount { file, targets } => tgt::ensure(&file, &targets, dry),
    }
}

/// A fresh directory under the system's temporary directory, removed when dropped.
#[cfg(test)]
pub(crate) mod testdir {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("groundwork-agent-{}-{n}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temporary directory");
            TempDir(dir)
        }

        pub fn path(&self, rel: &str) -> PathBuf {
            self.0.join(rel)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
