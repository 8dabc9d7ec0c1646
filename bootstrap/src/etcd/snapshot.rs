//! An etcd snapshot, taken on a member and kept on the controller: `etcdctl snapshot save` on the
//! member, checked there with `etcdutl snapshot status`, streamed here (never held in memory) with
//! its SHA-256 compared on both ends, written as `CLUSTER-etcd-STAMP.db` (mode 0600: it holds every
//! Secret of the cluster) beside a `.sha256` in sha256sum's format and a `.json` description. The
//! member's copy is removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ETCDUTL, etcdctl};
use crate::state::write_atomic;
use crate::transport::NodeSession;

/// Where a member's snapshot is made before it comes to the controller.
const REMOTE_DIR: &str = "/var/lib/groundwork/etcd-backup";
/// The largest snapshot accepted from a member (etcd's own backend quota tops out at 8 GiB).
const LIMIT: u64 = 16 * 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{host}: {what}: {message}")]
    Step { host: String, what: String, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_path_buf(), source }
}

/// What `etcdutl snapshot status -w json` says of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SnapshotStatus {
    pub hash: u64,
    pub revision: u64,
    #[serde(rename = "totalKey")]
    pub total_key: u64,
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// The `.json` kept beside each snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SnapshotInfo {
    pub cluster: String,
    pub member: String,
    /// Unix time.
    pub taken_at: String,
    pub sha256: String,
    pub bytes: u64,
    pub status: SnapshotStatus,
}

/// `YYYYMMDDTHHMMSSZ`, which sorts as time does.
pub fn stamp(t: time::OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second())
}

/// Takes a snapshot on the member `session` reaches (it should answer healthy) into `dir`.
pub async fn take(session: &NodeSession, cluster: &str, dir: &Path) -> Result<(PathBuf, SnapshotInfo), SnapshotError> {
    let member = session.target.name.clone();
    let fail = |what: &str, message: String| SnapshotError::Step { host: member.clone(), what: what.into(), message };
    let remote = format!("{REMOTE_DIR}/snapshot.db");
    let save = etcdctl(&format!("snapshot save {remote}")).replace("--command-timeout=5s", "--command-timeout=10m");
    let take = format!(
        "umask 077 && mkdir -p {REMOTE_DIR} && rm -f {remote} {remote}.part && {save} >/dev/null && \
         {ETCDUTL} snapshot status {remote} -w json && sha256sum {remote}"
    );
    let out = session
        .exec_privileged_within(&take, None, Duration::from_secs(15 * 60))
        .await
        .map_err(|e| fail("etcd snapshot", e.to_string()))?;
    if !out.success() {
        return Err(fail("etcd snapshot", crate::sanitize::tail(&out.stderr_text(), 3)));
    }
    let text = out.stdout_text();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let status: SnapshotStatus = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| fail("etcdutl snapshot status", format!("unexpected answer: {text}")))?;
    let remote_sum = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
        .ok_or_else(|| fail("sha256sum", format!("unexpected answer: {text}")))?;

    std::fs::create_dir_all(dir).map_err(io(dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    let now = time::OffsetDateTime::now_utc();
    let name = format!("{cluster}-etcd-{}.db", stamp(now));
    let file = dir.join(&name);
    let part = dir.join(format!("{name}.part"));
    let _ = std::fs::remove_file(&part);
    let streamed = session
        .exec_privileged_to_file(&format!("cat {remote}"), &part, LIMIT, Duration::from_secs(60 * 60))
        .await
        .map_err(|e| fail("copy the snapshot", e.to_string()))?;
    if !streamed.success() || streamed.sha256 != remote_sum {
        let _ = std::fs::remove_file(&part);
        return Err(fail(
            "copy the snapshot",
            if streamed.success() {
                format!("the copy's SHA-256 {} differs from the member's {remote_sum}", streamed.sha256)
            } else {
                streamed.stderr_text()
            },
        ));
    }
    std::fs::rename(&part, &file).map_err(io(&file))?;
    let info = SnapshotInfo {
        cluster: cluster.to_string(),
        member: member.clone(),
        taken_at: now.unix_timestamp().to_string(),
        sha256: streamed.sha256.clone(),
        bytes: streamed.bytes,
        status,
    };
    let sums = dir.join(format!("{name}.sha256"));
    write_atomic(&sums, format!("{}  {name}\n", info.sha256).as_bytes(), 0o600).map_err(io(&sums))?;
    let described = dir.join(format!("{name}.json"));
    write_atomic(&described, &serde_json::to_vec_pretty(&info).expect("serialisable"), 0o600)
        .map_err(io(&described))?;
    // The member's copy holds every Secret: not left lying on the master.
    let _ = session.exec_privileged(&format!("rm -f {remote}"), None).await;
    Ok((file, info))
}

/// Removes this cluster's oldest snapshots (and their `.sha256` and `.json`) beyond `keep` (at
/// least 1: the snapshot just taken is never removed).
pub fn prune(dir: &Path, cluster: &str, keep: usize) -> Result<Vec<PathBuf>, SnapshotError> {
    let prefix = format!("{cluster}-etcd-");
    let mut snapshots: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".db"))
        })
        .collect();
    snapshots.sort();
    let excess = snapshots.len().saturating_sub(keep.max(1));
    let mut removed = Vec::new();
    for old in snapshots.into_iter().take(excess) {
        for extra in ["", ".sha256", ".json"] {
            let path = PathBuf::from(format!("{}{extra}", old.display()));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SnapshotError::Io { path, source: e }),
            }
        }
        removed.push(old);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_sort_as_time_does() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_764_748_805).unwrap();
        assert_eq!(stamp(t), "20251203T080005Z");
        let later = time::OffsetDateTime::from_unix_timestamp(1_764_748_805 + 3600 * 24 * 40).unwrap();
        assert!(stamp(later) > stamp(t));
    }

    #[test]
    fn pruning_keeps_the_newest_of_this_cluster_only() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |n: &str| std::fs::write(dir.path().join(n), n).unwrap();
        for s in ["20251201T000000Z", "20251202T000000Z", "20251203T000000Z"] {
            touch(&format!("lab-etcd-{s}.db"));
            touch(&format!("lab-etcd-{s}.db.sha256"));
            touch(&format!("lab-etcd-{s}.db.json"));
        }
        touch("other-etcd-20240101T000000Z.db");
        touch("lab-etcd-20251204T000000Z.db.part");
        let removed = prune(dir.path(), "lab", 2).unwrap();
        assert_eq!(removed, [dir.path().join("lab-etcd-20251201T000000Z.db")]);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            [
                "lab-etcd-20251202T000000Z.db",
                "lab-etcd-20251202T000000Z.db.json",
                "lab-etcd-20251202T000000Z.db.sha256",
                "lab-etcd-20251203T000000Z.db",
                "lab-etcd-20251203T000000Z.db.json",
                "lab-etcd-20251203T000000Z.db.sha256",
                "lab-etcd-20251204T000000Z.db.part",
                "other-etcd-20240101T000000Z.db",
            ]
        );
        // keep 0 is read as 1: a backup never removes the snapshot it just took.
        assert_eq!(prune(dir.path(), "lab", 0).unwrap().len(), 1);
    }

    #[test]
    fn snapshot_status_reads_etcdutl_json() {
        let s: SnapshotStatus =
            serde_json::from_str(r#"{"hash":3023744546,"revision":4242,"totalKey":1187,"totalSize":6361088}"#).unwrap();
        assert_eq!(s, SnapshotStatus { hash: 3_023_744_546, revision: 4242, total_key: 1187, total_size: 6_361_088 });
    }
}
