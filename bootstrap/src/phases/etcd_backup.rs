//! etcd-backup: with `cluster.etcdBackup`, a systemd timer on every master that snapshots its own
//! etcd member into a local directory (checked with etcdutl, its SHA-256 beside it, the newest N
//! kept). Without it, a timer groundwork installed before is stopped and its units removed (the
//! snapshots stay). The controller's `groundwork etcd backup` remains the copy off the cluster.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::TimedJob;
use super::{Change, Cluster, Node, StepError};
use crate::playbooks;

const UNIT: &str = "groundwork-etcd-backup";
const SCRIPT: &str = "/usr/local/sbin/groundwork-etcd-backup";

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let c = &cluster.inventory.cluster;
        let Some(backup) = c.etcd_backup.as_ref().filter(|_| cluster.external_etcd()) else {
            return remove_timer(node).await;
        };
        let values = serde_json::json!({
            "directory": backup.directory, "keep": backup.keep, "schedule": backup.schedule,
            "cluster": c.name, "member": node.name(),
        });
        let directory = backup.directory.display().to_string();
        node.ensure_timed_job(TimedJob {
            directory: &directory,
            script_path: SCRIPT,
            script: playbooks::render("etcd-backup.sh", &values)?,
            unit: UNIT,
            service: playbooks::render("etcd-backup.service", &values)?,
            timer: playbooks::render("etcd-backup.timer", &values)?,
        })
        .await
    }
    .boxed()
}

async fn remove_timer(node: &Node) -> Result<Vec<Change>, StepError> {
    let timer = format!("/etc/systemd/system/{UNIT}.timer");
    if !node.test(&format!("test -e {timer}")).await? {
        return Ok(vec![]);
    }
    if !node.dry_run() {
        node.sh(
            "remove the etcd backup timer",
            &format!(
                "systemctl disable --now {UNIT}.timer >/dev/null 2>&1 || true; \
                 rm -f {timer} /etc/systemd/system/{UNIT}.service {SCRIPT}; systemctl daemon-reload"
            ),
        )
        .await?;
    }
    Ok(vec![Change::new("etcd backup timer removed (cluster.etcdBackup is not set); its snapshots stay")])
}
