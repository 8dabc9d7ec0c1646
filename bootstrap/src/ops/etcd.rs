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
use crate::etcd::snapshot::{self, SnapshotError, SnapshotInfo, stamp};
use crate::etcd::{ETCDUTL, etcdctl};
use crate::inventory::{EtcdMode, LoadedInventory};
use crate::state::write_atomic;
use crate::transport::{NodeSession, Target, TransportOptions, shell_quote};

/// Where a restore's copy of the snapshot and its progress markers live on each master.
const REMOTE_RESTORE_DIR: &str = "/var/lib/groundwork/etcd-restore";
/// Parked control-plane manifests during a restore.
const DATA_DIR: &str = "/var/lib/etcd";
/// Larger than any revision a cluster reaches between two backups: after a restore every
/// resourceVersion a client holds is older than the restored store's, so it relists.
const BUMP_REVISION: u64 = 1_000_000_000;
/// The state directory's note of a restore under way: its snapshot and cluster token.
const PENDING: &str = "etcd-restore.json";

#[derive(Debug, thiserror::Error)]
pub enum EtcdOpError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(
        "cluster.etcd is `stacked`: kubeadm runs etcd as static pods, which `groundwork etcd` does not manage; \
         it backs up and restores the external etcd groundwork runs (cluster.etcd: external, the default)"
    )]
    Stacked,
    #[error("no etcd member answered healthy ({0}); nothing was copied")]
    NoHealthyMember(String),
    #[error("{host}: {what}: {message}")]
    Step { host: String, what: String, message: String },
    #[error(transparent)]
    HostStep(#[from] super::access::HostStepError),
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

/// Runs `command` with root rights on `s`; its stdout, or why it failed.
async fn step(s: &NodeSession, what: &str, command: &str, deadline: Duration) -> Result<String, EtcdOpError> {
    Ok(super::access::sh(s, what, command, deadline).await?)
}

fn refuse_stacked(loaded: &LoadedInventory) -> Result<(), EtcdOpError> {
    if loaded.inventory.cluster.etcd == EtcdMode::Stacked { Err(EtcdOpError::Stacked) } else { Ok(()) }
}

// ------------------------------------------------------------------------------------ backup

pub struct BackupOptions {
    pub transport: TransportOptions,
    /// How many snapshots of this cluster to keep in the directory (the newest).
    pub keep: usize,
    /// Where snapshots go; the state directory's `backups/etcd` when None.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
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
    progress(&format!("snapshot on {} (healthy member), copied to {}", member.name, dir.display()));
    let cluster = &loaded.inventory.cluster.name;
    let (file, info) = snapshot::take(session, cluster, dir).await?;
    let removed = snapshot::prune(dir, cluster, keep)?;
    Ok((file, info, removed))
}

fn step_error(host: &Target, what: &str, message: String) -> EtcdOpError {
    EtcdOpError::Step { host: host.name.clone(), what: what.to_string(), message }
}

/// The first master (in inventory order) whose member answers healthy.
async fn healthy_member(access: &Access) -> Result<(&Target, &NodeSession), EtcdOpError> {
    let mut why = Vec::new();
    for (t, s) in access.masters() {
        match s.exec_privileged(&etcdctl("endpoint health -w json"), None).await {
            Ok(out) if out.success() && out.stdout_text().contains("\"health\":true") => return Ok((t, s)),
            Ok(out) => why.push(format!("{}: {}", t.name, crate::sanitize::tail(&out.stderr_text(), 1))),
            Err(e) => why.push(format!("{}: {e}", t.name)),
        }
    }
    why.extend(access.unreachable.iter().map(|(n, e)| format!("{n}: {e}")));
    Err(EtcdOpError::NoHealthyMember(why.join("; ")))
}

// ------------------------------------------------------------------------------------ restore

pub struct RestoreOptions {
    pub transport: TransportOptions,
    pub snapshot: PathBuf,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
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

/// What a restore of `opts.snapshot` would do, after the checks it would make first (the file
/// against its checksum, external etcd, every master reachable); nothing changes and no lock is taken.
pub async fn restore_plan(loaded: &LoadedInventory, opts: RestoreOptions) -> Result<Vec<String>, EtcdOpError> {
    refuse_stacked(loaded)?;
    let sha256 = verify_snapshot_file(&opts.snapshot)?;
    let access = Access::open_read_only(loaded, opts.transport.clone(), Reach::Nodes).await?;
    let unreachable = access.unreachable_masters(loaded);
    let masters: Vec<String> = access.masters().iter().map(|(t, _)| t.name.clone()).collect();
    let nodes = access.hosts().len();
    access.close().await;
    if !unreachable.is_empty() {
        return Err(EtcdOpError::MastersUnreachable(unreachable.join(", ")));
    }
    let bytes = std::fs::metadata(&opts.snapshot).map_err(io(&opts.snapshot))?.len();
    let taken = std::fs::read(opts.snapshot.with_extension("json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|j| format!(", revision {} from {}", j["status"]["revision"], j["member"].as_str().unwrap_or("?")))
        .unwrap_or_default();
    Ok(vec![
        format!(
            "copy the snapshot ({bytes} bytes, sha256 {sha256}{taken}) to {} and check it there with etcdutl",
            masters.join(", ")
        ),
        "park the control plane's static pods on every master (the API is down from here), stop every etcd member"
            .into(),
        format!(
            "move each member's {DATA_DIR} aside ({DATA_DIR}.before-restore-STAMP, kept) and restore it from the \
             snapshot with a new cluster token, the revision bumped by {BUMP_REVISION} and marked compacted"
        ),
        format!(
            "start the members, bring the control plane back, restart the kubelets of {nodes} node(s), wait for every \
             node Ready"
        ),
        "every change made after the snapshot is lost".into(),
    ])
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
    all("park the control plane", &|_| super::static_pods::park(), Duration::from_secs(60)).await?;
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
    all("bring back the control plane", &|_| super::static_pods::unpark(), Duration::from_secs(60)).await?;
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
pub(super) async fn wait_members_healthy(via: &NodeSession, want: usize, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < until {
        match crate::etcd::health(via).await {
            Ok(h) => {
                if h.healthy == want {
                    return Ok(());
                }
                last = format!("{} of {want} members healthy {}", h.healthy, crate::sanitize::tail(&h.complaint, 1));
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
}
