//! Idempotent changes the controller asks the agent to make on a node. Each task compares what is
//! with what should be, reports whether it differs, and (unless `dry_run`) makes it so. A second
//! identical request reports `changed: false` and touches nothing.

use serde::{Deserialize, Serialize};

/// One request: a task, and whether only to report what would change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensure {
    /// Compare only; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    pub task: Task,
}

/// Several tasks in one request, made in order; the first failure ends the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsureAll {
    #[serde(default)]
    pub dry_run: bool,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// Install packages with the node's package manager (apt now; dnf later). Already installed
    /// packages are left alone (no upgrades).
    Packages {
        names: Vec<String>,
        /// An HTTP proxy for the package manager (`Acquire::http::Proxy` for apt), written to the
        /// package manager's configuration so later runs use it too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proxy: Option<String>,
        /// A mirror URL replacing the distribution's default repository.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mirror: Option<String>,
        /// A directory on the node holding a flat apt repository (the offline bundle's, with its
        /// `Release.gpg` and the key apt checks it with, `groundwork-bundle.gpg`): the packages are
        /// installed from it alone, the node's own sources and lists left aside.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repository: Option<String>,
    },
    /// A regular file with exactly this content, mode and owner (written atomically).
    File {
        path: String,
        content: String,
        /// Octal permission bits, e.g. 0o644.
        mode: u32,
        #[serde(default = "root")]
        owner: String,
        #[serde(default = "root")]
        group: String,
    },
    /// A file installed from a file already on the node (an uploaded bundle artifact), when the
    /// target's SHA-256 differs. Used for binaries.
    Install { source: String, path: String, mode: u32, sha256: String },
    /// Only a check, never a change: whether the file the controller uploads to `path` is there
    /// with this SHA-256 (remembered with its size and mtime, so a re-run hashes nothing).
    /// `changed` means it must be uploaded.
    Uploaded { path: String, sha256: String },
    /// A directory with this mode (created with parents).
    Directory { path: String, mode: u32 },
    /// A systemd unit: enabled at boot, running, and restarted when `restart` is set (the controller
    /// sets it when a file the unit reads changed in this run). Reloads systemd first when a unit
    /// file changed.
    Service {
        name: String,
        #[serde(default = "yes")]
        enabled: bool,
        #[serde(default = "yes")]
        running: bool,
        #[serde(default)]
        restart: bool,
    },
    /// Kernel parameters, applied now and persisted in `file` (under /etc/sysctl.d).
    Sysctl { file: String, values: Vec<(String, String)> },
    /// Kernel modules, loaded now and persisted in `file` (under /etc/modules-load.d). When the
    /// kernel cannot load modules, a module built into the kernel (or whose feature is present,
    /// e.g. /proc/sys/net/bridge for br_netfilter) counts as present; otherwise the task fails
    /// saying so.
    Modules { file: String, names: Vec<String> },
    /// Swap off now and commented out in /etc/fstab.
    SwapOff,
    /// The hostname (`/etc/hostname` and the running kernel's).
    Hostname { name: String },
    /// A block of `/etc/hosts` between groundwork's markers, holding exactly these entries.
    HostsBlock { entries: Vec<HostsEntry> },
    /// A sparse file of `size` bytes (a volume's backing store): created when missing, grown when
    /// smaller; never shrunk, since that would cut off a volume's data (that is an error instead).
    SparseFile { path: String, size: u64, mode: u32 },
    /// Images imported into containerd's namespace from an image tarball on the node, skipped
    /// when every image named in it is already there.
    ImportImages { archive: String, namespace: String, images: Vec<String> },
    /// tgtd's incoming CHAP account from a root-only file (user line, password line), made over
    /// tgtd's management socket so the secret is on no command line, and bound to these targets
    /// (by IQN) where tgtd has them.
    TgtAccount { file: String, targets: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostsEntry {
    pub address: String,
    pub names: Vec<String>,
}

/// What a task found and did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Report {
    /// The node differed (and, unless dry-run, was changed).
    pub changed: bool,
    /// One line for the operator: what differs or what was done, e.g. "installed containerd runc".
    pub summary: String,
    /// For files: a unified diff of old and new content (never for files that hold secrets: the
    /// controller marks those by asking with a mode without group/other read bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

fn root() -> String {
    "root".into()
}
fn yes() -> bool {
    true
}
