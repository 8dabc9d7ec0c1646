//! `groundwork etcd backup` and `groundwork etcd restore`: the cluster's whole state (every object,
//! every Secret) as one etcd snapshot on the controller, and back.
//!
//! Backup: a snapshot taken on a healthy member (`etcdctl snapshot save`), checked there with
//! `etcdutl snapshot status`, streamed to the controller with its SHA-256 compared on both ends,
//! kept beside a `.sha256` and a `.json` description; the oldest beyond `--keep` are removed.
//!
//! Restore (disaster recovery, the procedure of the etcd and Kubernetes documentation): the
//! snapshot is copied to every master and checked; the control plane's static pods are parked
//! (their manifests moved aside, so no API server writes meanwhile); every member is stopped; each
//! member's data directory is moved aside (kept, never deleted) and restored from the same
//! snapshot with a new cluster token, the revision bumped and marked compacted (so that watchers
//! and caches relist instead of trusting revisions from after the snapshot); the members start
//! together, the control plane comes back, every kubelet restarts, and every node must be Ready.
//! Each step checks what is already done, so a restore that stopped anywhere is finished by running
//! it again with the same snapshot (the new cluster token is kept in the state directory until then).
//!
//! Only the external etcd groundwork runs (the default): with `cluster.etcd: stacked` kubeadm runs
//! etcd as static pods and both are refused with that reason.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::access::{Access, AccessError, Reach};
use crate::inventory::{EtcdMode, LoadedInventory};
use crate::phases::etcd::etcdctl;
use crate::state::write_atomic;
use crate::transport::{NodeSession, Target, TransportOptions, shell_quote};

/// Where a member's snapshot is made before it comes to the controller.
const REMOTE_BACKUP_DIR: &str = "/var/lib/groundwork/etcd-backup";
/// Where a restore's copy of the snapshot and its progress markers live on each master.
const REMOTE_RESTORE_DIR: &str = "/var/lib/groundwork/etcd-restore";
/// Parked control-plane manifests during a restore.
const PARKED_DIR: &str = "/etc/kubernetes/groundwork/parked";
const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
const CONTROL_PLANE: [&str; 3] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];
const ETCDUTL: &str = "/usr/local/bin/etcdutl";
const DATA_DIR: &str = "/var/lib/etcd";
/// Larger than any revision a cluster reaches between two backups: after a restore every
/// resourceVersion a client holds is older than the restored store's, so it relists.
const BUMP_REVISION: u64 = 1_000_000_000;
/// The largest snapshot accepted from a member (etcd's own backend quota tops out at 8 GiB).
const SNAPSHOT_LIMIT: u64 = 16 * 1024 * 1024 * 1024;
/// The state directory's note of a restore under way: its snapshot and cluster token.
const PENDING: &str = "etcd-restore.json";

#[derive(Debug, thiserror::Error)]
pub enum EtcdOpError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(
        "cluster.etcd is `stacked`: kubeadm runs etcd as static pods, which `groundwork etcd` does not manage; \
         it backs up and restores the external etcd groundwork runs (cluster.etcd: external, the default)"
    )]
    Stacked,
    #[error("no etcd member answered healthy ({0}); nothing was copied")]
    NoHealthyMember(String),
    #[error("{host}: {what}: {message}")]
    Step { host: String, what: String, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{} does not match its checksum file ({expected} expected, {actual} read): the snapshot is damaged or \
         not the one the checksum was made for; nothing was changed",
        path.display()
    )]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error(
        "every master must take part in a restore, and {0} cannot be reached: bring it back (or remove it from the \
         inventory if it is gone for good), then run the restore again; nothing was changed"
    )]
    MastersUnreachable(String),
    #[error("the restore did not finish: {0}. Run the same `groundwork etcd restore` again: it goes on from there")]
    Unfinished(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EtcdOpError + '_ {
    move |source| EtcdOpError::Io { path: path.to_path_buf(), source }
}

/// Runs `command` with root rights on `host`; its stdout, or why it failed.
async fn step(s: &NodeSession, what: &str, command: &str, deadline: Duration) -> Result<String, EtcdOpError> {
    let fail = |message: String| EtcdOpError::Step { host: s.target.name.clone(), what: what.to_string(), message };
    let out = s.exec_privileged_within(command, None, deadline).await.map_err(|e| fail(e.to_string()))?;
    if !out.success() {
        let why = crate::phases::tail(&out.stderr_text(), 3);
        return Err(fail(if why.is_empty() { format!("exit status {}", out.status) } else { why }));
    }
    Ok(out.stdout_text())
}

fn refuse_stacked(loaded: &LoadedInventory) -> Result<(), EtcdOpError> {
    if loaded.inventory.cluster.etcd == EtcdMode::Stacked { Err(EtcdOpError::Stacked) } else { Ok(()) }
}

/// `YYYYMMDDTHHMMSSZ`, which sorts as time does.
fn stamp(t: time::OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second())
}

// ------------------------------------------------------------------------------------ backup

pub struct BackupOptions {
    pub transport: TransportOptions,
    /// How many snapshots of this cluster to keep in the directory (the newest).
    pub keep: usize,
    /// Where snapshots go; the state directory's `backups/etcd` when None.
    pub dir: Option<PathBuf>,
}

/// What `etcdutl snapshot status -w json` says of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    pub hash: u64,
    pub revision: u64,
    #[serde(rename = "totalKey")]
    pub total_key: u64,
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// The `.json` kept beside each snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub cluster: String,
    pub member: String,
    pub taken_at: String,
    pub sha256: String,
    pub bytes: u64,
    pub status: SnapshotStatus,
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub info: SnapshotInfo,
    /// Older snapshots removed to keep `keep`.
    pub removed: Vec<PathBuf>,
    pub took_ms: u64,
}

pub fn default_backup_dir(loaded: &LoadedInventory) -> PathBuf {
    crate::state::StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name).root().join("backups/etcd")
}

pub async fn backup(
    loaded: &LoadedInventory,
    opts: BackupOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BackupReport, EtcdOpError> {
    refuse_stacked(loaded)?;
    let started = Instant::now();
    let dir = opts.dir.clone().unwrap_or_else(|| default_backup_dir(loaded));
    let access = Access::open(loaded, opts.transport.clone(), Reach::Masters, "groundwork etcd backup").await?;
    let result = backup_with(loaded, &access, &dir, opts.keep, progress).await;
    access.close().await;
    result.map(|(file, info, removed)| BackupReport {
        file,
        info,
        removed,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

async fn backup_with(
    loaded: &LoadedInventory,
    access: &Access,
    dir: &Path,
    keep: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(PathBuf, SnapshotInfo, Vec<PathBuf>), EtcdOpError> {
    let (member, session) = healthy_member(access).await?;
    progress(&format!("snapshot on {} (healthy member)", member.name));
    let remote = format!("{REMOTE_BACKUP_DIR}/snapshot.db");
    let take = format!(
        "umask 077 && mkdir -p {REMOTE_BACKUP_DIR} && rm -f {remote} {remote}.part && {save} >/dev/null && \
         {ETCDUTL} snapshot status {remote} -w json && sha256sum {remote}",
        save = etcdctl(&format!("snapshot save {remote}")).replace("--command-timeout=5s", "--command-timeout=10m"),
    );
    let out = step(session, "etcd snapshot", &take, Duration::from_secs(15 * 60)).await?;
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let status: SnapshotStatus = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| step_error(member, "etcdutl snapshot status", format!("unexpected answer: {out}")))?;
    let remote_sum = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
        .ok_or_else(|| step_error(member, "sha256sum", format!("unexpected answer: {out}")))?;

    std::fs::create_dir_all(dir).map_err(io(dir))?;
    set_mode(dir, 0o700)?;
    let now = time::OffsetDateTime::now_utc();
    let cluster = &loaded.inventory.cluster.name;
    let name = format!("{cluster}-etcd-{}.db", stamp(now));
    let file = dir.join(&name);
    let part = dir.join(format!("{name}.part"));
    let _ = std::fs::remove_file(&part);
    progress(&format!("copying it to {}", file.display()));
    let streamed = session
        .exec_privileged_to_file(&format!("cat {remote}"), &part, SNAPSHOT_LIMIT, Duration::from_secs(60 * 60))
        .await
        .map_err(|e| step_error(member, "copy the snapshot", e.to_string()))?;
    if !streamed.success() || streamed.sha256 != remote_sum {
        let _ = std::fs::remove_file(&part);
        return Err(step_error(
            member,
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
        cluster: cluster.clone(),
        member: member.name.clone(),
        taken_at: now.unix_timestamp().to_string(),
        sha256: streamed.sha256.clone(),
        bytes: streamed.bytes,
        status,
    };
    let sums = dir.join(format!("{name}.sha256"));
    write_atomic(&sums, format!("{}  {name}\n", info.sha256).as_bytes(), 0o600).map_err(io(&sums))?;
    let described = dir.join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(&info).expect("serialisable");
    write_atomic(&described, &json, 0o600).map_err(io(&described))?;
    // The member's copy holds every Secret: not left lying on the master.
    let _ = session.exec_privileged(&format!("rm -f {remote}"), None).await;
    let removed = prune(dir, cluster, keep)?;
    Ok((file, info, removed))
}

fn step_error(host: &Target, what: &str, message: String) -> EtcdOpError {
    EtcdOpError::Step { host: host.name.clone(), what: what.to_string(), message }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EtcdOpError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

/// The first master (in inventory order) whose member answers healthy.
async fn healthy_member(access: &Access) -> Result<(&Target, &NodeSession), EtcdOpError> {
    let mut why = Vec::new();
    for (t, s) in access.masters() {
        match s.exec_privileged(&etcdctl("endpoint health -w json"), None).await {
            Ok(out) if out.success() && out.stdout_text().contains("\"health\":true") => return Ok((t, s)),
            Ok(out) => why.push(format!("{}: {}", t.name, crate::phases::tail(&out.stderr_text(), 1))),
            Err(e) => why.push(format!("{}: {e}", t.name)),
        }
    }
    why.extend(access.unreachable.iter().map(|(n, e)| format!("{n}: {e}")));
    Err(EtcdOpError::NoHealthyMember(why.join("; ")))
}

/// Removes this cluster's oldest snapshots (and their `.sha256` and `.json`) beyond `keep`.
pub fn prune(dir: &Path, cluster: &str, keep: usize) -> Result<Vec<PathBuf>, EtcdOpError> {
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
                Err(e) => return Err(EtcdOpError::Io { path, source: e }),
            }
        }
        removed.push(old);
    }
    Ok(removed)
}

// ------------------------------------------------------------------------------------ restore

pub struct RestoreOptions {
    pub transport: TransportOptions,
    pub snapshot: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub snapshot: PathBuf,
    pub sha256: String,
    pub cluster_token: String,
    /// Per master: where its previous data directory was kept.
    pub kept: Vec<(String, String)>,
    /// Nodes whose kubelet could not be restarted (unreachable), for the operator to see to.
    pub not_restarted: Vec<String>,
    pub took_ms: u64,
}

/// The state directory's note of a restore under way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Pending {
    sha256: String,
    token: String,
    /// The suffix of the data directories moved aside.
    stamp: String,
}

/// The snapshot's SHA-256, checked against `FILE.sha256` when there is one.
pub fn verify_snapshot_file(file: &Path) -> Result<String, EtcdOpError> {
    let (actual, _) = crate::bundle::hash_file(file).map_err(io(file))?;
    let sums = PathBuf::from(format!("{}.sha256", file.display()));
    if let Ok(text) = std::fs::read_to_string(&sums) {
        let expected = text.split_whitespace().next().unwrap_or_default().to_lowercase();
        if expected != actual {
            return Err(EtcdOpError::Checksum { path: file.to_path_buf(), expected, actual });
        }
    }
    Ok(actual)
}

pub async fn restore(
    loaded: &LoadedInventory,
    opts: RestoreOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RestoreReport, EtcdOpError> {
    refuse_stacked(loaded)?;
    let started = Instant::now();
    let sha256 = verify_snapshot_file(&opts.snapshot)?;
    let access = Access::open(loaded, opts.transport.clone(), Reach::Nodes, "groundwork etcd restore").await?;
    let unreachable = access.unreachable_masters(loaded);
    if !unreachable.is_empty() {
        access.close().await;
        return Err(EtcdOpError::MastersUnreachable(unreachable.join(", ")));
    }
    let result = restore_with(loaded, &access, &opts.snapshot, &sha256, progress).await;
    access.close().await;
    let (pending, kept, not_restarted) = result?;
    Ok(RestoreReport {
        snapshot: opts.snapshot,
        sha256,
        cluster_token: pending.token,
        kept,
        not_restarted,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// The restore under way for this snapshot, or a new one.
fn pending_for(access: &Access, loaded: &LoadedInventory, sha256: &str) -> Result<Pending, EtcdOpError> {
    let path = access.state.root().join(PENDING);
    if let Some(p) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
        && p.sha256 == sha256
    {
        return Ok(p);
    }
    let now = time::OffsetDateTime::now_utc();
    let p = Pending {
        sha256: sha256.to_string(),
        token: format!("{}-restore-{}", loaded.inventory.cluster.name, stamp(now).to_lowercase()),
        stamp: stamp(now),
    };
    write_atomic(&path, &serde_json::to_vec_pretty(&p).expect("serialisable"), 0o600).map_err(io(&path))?;
    Ok(p)
}

type Restored = (Pending, Vec<(String, String)>, Vec<String>);

async fn restore_with(
    loaded: &LoadedInventory,
    access: &Access,
    snapshot: &Path,
    sha256: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Restored, EtcdOpError> {
    let pending = pending_for(access, loaded, sha256)?;
    let masters = access.masters();
    let remote = format!("{REMOTE_RESTORE_DIR}/snapshot.db");
    let remote = &remote;
    let all = |what: &'static str, command: &dyn Fn(&Target) -> String, deadline: Duration| {
        on_all(&masters, what, masters.iter().map(|(t, _)| command(t)).collect(), deadline)
    };

    progress(&format!("copying the snapshot to {} master(s) and checking it there", masters.len()));
    let copies = masters.iter().map(|(t, s)| async move {
        let have =
            step(s, "check the copy", &format!("sha256sum {remote} 2>/dev/null || true"), Duration::from_secs(120))
                .await?;
        if have.split_whitespace().next() != Some(sha256) {
            let upload = format!(
                "umask 077 && mkdir -p {REMOTE_RESTORE_DIR} && cat > {remote}.part && mv {remote}.part {remote}"
            );
            let out = s
                .exec_privileged_file(&upload, snapshot)
                .await
                .map_err(|e| step_error(t, "copy the snapshot", e.to_string()))?;
            if !out.success() {
                return Err(step_error(t, "copy the snapshot", out.stderr_text()));
            }
        }
        let check = format!("sha256sum {remote} && {ETCDUTL} snapshot status {remote} -w json");
        let out = step(s, "check the snapshot", &check, Duration::from_secs(300)).await?;
        if out.split_whitespace().next() != Some(sha256) {
            return Err(step_error(t, "copy the snapshot", "the copy on the master differs from the file".into()));
        }
        Ok(())
    });
    futures::future::join_all(copies).await.into_iter().collect::<Result<Vec<()>, _>>()?;

    progress("stopping the control plane (its static pod manifests parked) and every etcd member");
    let park = CONTROL_PLANE
        .iter()
        .map(|c| {
            format!("if [ -f {MANIFESTS_DIR}/{c}.yaml ]; then mv {MANIFESTS_DIR}/{c}.yaml {PARKED_DIR}/{c}.yaml; fi")
        })
        .collect::<Vec<_>>()
        .join("; ");
    all("park the control plane", &|_| format!("mkdir -p {PARKED_DIR} && {park}"), Duration::from_secs(60)).await?;
    let gone = "for i in $(seq 1 120); do pgrep -x kube-apiserver >/dev/null || exit 0; sleep 1; done; \
                echo 'kube-apiserver still runs 120 s after its manifest was moved' >&2; exit 1";
    all("wait for the API server to stop", &|_| gone.to_string(), Duration::from_secs(150)).await?;
    all("stop etcd", &|_| "systemctl stop etcd".to_string(), Duration::from_secs(120)).await?;

    progress(&format!("restoring every member from the snapshot (cluster token {})", pending.token));
    let initial_cluster =
        masters.iter().map(|(t, _)| format!("{}=https://{}:2380", t.name, t.address)).collect::<Vec<_>>().join(",");
    let kept = format!("{DATA_DIR}.before-restore-{}", pending.stamp);
    let restore_member = |t: &Target| {
        let done = format!("{REMOTE_RESTORE_DIR}/done-{}", pending.token);
        format!(
            "set -e; if [ -f {done} ]; then exit 0; fi; \
             if [ -d {DATA_DIR} ] && [ ! -e {kept} ]; then mv {DATA_DIR} {kept}; else rm -rf {DATA_DIR}; fi; \
             rm -rf {DATA_DIR}.restoring; \
             {ETCDUTL} snapshot restore {remote} --name {name} --initial-cluster {ic} --initial-cluster-token {token} \
               --initial-advertise-peer-urls https://{address}:2380 --data-dir {DATA_DIR}.restoring \
               --bump-revision {BUMP_REVISION} --mark-compacted >/dev/null; \
             chmod 700 {DATA_DIR}.restoring; mv {DATA_DIR}.restoring {DATA_DIR}; touch {done}",
            name = shell_quote(&t.name),
            ic = shell_quote(&initial_cluster),
            token = shell_quote(&pending.token),
            address = t.address,
        )
    };
    all("restore the member", &restore_member, Duration::from_secs(600)).await?;

    progress("starting every member");
    all("start etcd", &|_| "systemctl start --no-block etcd".to_string(), Duration::from_secs(60)).await?;
    let (first, via) = masters[0];
    wait_members_healthy(via, masters.len(), Duration::from_secs(180))
        .await
        .map_err(|e| EtcdOpError::Unfinished(format!("{}: {e}", first.name)))?;

    progress("bringing the control plane back");
    let unpark = CONTROL_PLANE
        .iter()
        .map(|c| format!("if [ -f {PARKED_DIR}/{c}.yaml ]; then mv {PARKED_DIR}/{c}.yaml {MANIFESTS_DIR}/{c}.yaml; fi"))
        .collect::<Vec<_>>()
        .join("; ");
    all("bring back the control plane", &|_| unpark.clone(), Duration::from_secs(60)).await?;
    let kube = access.kube(loaded).map_err(|e| EtcdOpError::Unfinished(e.to_string()))?;
    wait_api(&kube, via, Duration::from_secs(300)).await.map_err(EtcdOpError::Unfinished)?;

    progress("restarting every kubelet; waiting for every node to be Ready");
    let restarts = access.hosts().into_iter().map(|(_, s)| async move {
        step(s, "restart the kubelet", "systemctl restart kubelet", Duration::from_secs(120)).await
    });
    futures::future::join_all(restarts).await.into_iter().collect::<Result<Vec<_>, _>>()?;
    let nodes: Vec<String> = access.hosts().iter().map(|(t, _)| t.name.clone()).collect();
    wait_nodes_ready(&kube, via, &nodes, Duration::from_secs(300)).await.map_err(EtcdOpError::Unfinished)?;

    // Done: the copies (every Secret in them) and the markers go; the old data directories stay.
    let cleanup = format!("rm -rf {REMOTE_RESTORE_DIR}");
    all("clean up", &|_| cleanup.clone(), Duration::from_secs(60)).await?;
    let _ = std::fs::remove_file(access.state.root().join(PENDING));
    let kept_dirs = masters.iter().map(|(t, _)| (t.name.clone(), kept.clone())).collect();
    Ok((pending, kept_dirs, access.unreachable.iter().map(|(n, _)| n.clone()).collect()))
}

/// `commands[i]` on `hosts[i]`, all at once; the first failure, if any.
async fn on_all(
    hosts: &[(&Target, &NodeSession)],
    what: &str,
    commands: Vec<String>,
    deadline: Duration,
) -> Result<Vec<String>, EtcdOpError> {
    let runs = hosts.iter().zip(&commands).map(|((_, s), command)| step(s, what, command, deadline));
    futures::future::join_all(runs).await.into_iter().collect()
}

/// Every member answers healthy, asked from `via`'s member.
async fn wait_members_healthy(via: &NodeSession, want: usize, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < until {
        match via.exec_privileged(&etcdctl("endpoint health --cluster -w json"), None).await {
            Ok(out) => {
                let healthy = out.stdout_text().matches("\"health\":true").count();
                if healthy == want {
                    return Ok(());
                }
                last = format!("{healthy} of {want} members healthy {}", crate::phases::tail(&out.stderr_text(), 1));
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(format!("etcd is not healthy after {} s ({last})", within.as_secs()))
}

async fn wait_api(kube: &crate::kube::KubeClient, via: &NodeSession, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < until {
        match kube.get_json(via, "/api/v1/namespaces/kube-system").await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Err(format!("the API server did not answer within {} s ({last})", within.as_secs()))
}

async fn wait_nodes_ready(
    kube: &crate::kube::KubeClient,
    via: &NodeSession,
    nodes: &[String],
    within: Duration,
) -> Result<(), String> {
    let until = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < until {
        match kube.get_json(via, "/api/v1/nodes").await {
            Ok(list) => {
                let statuses = crate::kube::node_statuses(&list);
                let waiting: Vec<&String> =
                    nodes.iter().filter(|n| !statuses.iter().any(|s| &s.name == *n && s.ready)).collect();
                if waiting.is_empty() {
                    return Ok(());
                }
                last = format!("not Ready: {}", waiting.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Err(format!("nodes not Ready after {} s ({last})", within.as_secs()))
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
    fn a_snapshot_that_does_not_match_its_checksum_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        std::fs::write(&file, b"snapshot").unwrap();
        let good = verify_snapshot_file(&file).unwrap();
        assert_eq!(good, "16a0eeb0791b6c92451fd284dd9f599e0a7dbe7f6ebea6e2d2d06c7f74aec112"); // sha256sum's
        std::fs::write(dir.path().join("s.db.sha256"), format!("{good}  s.db\n")).unwrap();
        assert_eq!(verify_snapshot_file(&file).unwrap(), good);
        std::fs::write(&file, b"snapshoT").unwrap();
        let err = verify_snapshot_file(&file).unwrap_err();
        assert!(matches!(err, EtcdOpError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("nothing was changed"), "{err}");
    }

    #[test]
    fn snapshot_status_reads_etcdutl_json() {
        let s: SnapshotStatus =
            serde_json::from_str(r#"{"hash":3023744546,"revision":4242,"totalKey":1187,"totalSize":6361088}"#).unwrap();
        assert_eq!(s, SnapshotStatus { hash: 3_023_744_546, revision: 4242, total_key: 1187, total_size: 6_361_088 });
    }
}
