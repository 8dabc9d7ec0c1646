//! etcd: the cluster's external etcd, one member per master as a systemd service, TLS for clients
//! and peers, and healthy with every member before kubeadm is asked to use it. With
//! `cluster.etcd: stacked` this phase does nothing and kubeadm runs etcd itself.
//!
//! How a member first starts is decided once per run, before any member starts: when no master
//! runs a member yet, every member starts a new cluster together; when one does (a master added or
//! replaced in a running cluster), a member without data joins that cluster (`member add` on a
//! running member, then started with `initial-cluster-state=existing`), one at a time. Either
//! way the unit is the same: the first start's settings are in an environment file etcd reads
//! only while its data directory is empty.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::etcd::members::{self, Member};
use crate::playbooks;

const UNIT: &str = "/etc/systemd/system/etcd.service";
/// The first start's `ETCD_INITIAL_CLUSTER*` (see the unit's `EnvironmentFile`).
const INITIAL_ENV: &str = "/etc/groundwork/etcd-initial.env";
const HAS_DATA: &str = "test -d /var/lib/etcd/member";

/// The membership of the etcd cluster running when this run's etcd phase began: None when no
/// master ran a member (a new cluster).
pub type Running = Option<Vec<Member>>;

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        if !cluster.external_etcd() {
            return Ok(vec![]);
        }
        let unit = playbooks::render(
            "etcd.service",
            &serde_json::json!({
                "name": node.name(),
                "address": node.address(),
                "cluster": cluster.inventory.cluster.name,
                "initial_env": INITIAL_ENV,
                "extra_args": cluster.inventory.cluster.etcd_extra_args,
            }),
        )?;
        let running = running_cluster(cluster).await?;
        let joins = if node.test(HAS_DATA).await? { None } else { Some(first_start(cluster, node, &running)?) };
        let mut wanted = vec![file(UNIT, unit, 0o644)];
        if let Some(first) = &joins {
            wanted.push(file(INITIAL_ENV, first.env.clone(), 0o644));
        }
        let mut changes = node.ensure_all(wanted).await?;
        if node.dry_run() {
            match &joins {
                Some(FirstStart { join: true, .. }) => {
                    changes.push(Change::new("join the running etcd cluster (member add, then start)"))
                }
                _ if !node.test("systemctl is-active -q etcd").await? => changes.push(Change::new("start etcd")),
                _ => {}
            }
            return Ok(changes);
        }
        let service = |restart| Task::Service { name: "etcd".into(), enabled: true, running: true, restart };
        if let Some(FirstStart { join: true, .. }) = &joins {
            // One member joins at a time: etcd refuses a second addition while one is unstarted.
            let turn = cluster.rolling_turn("etcd", node).await?;
            let outcome = async {
                join(cluster, node, running.as_deref().unwrap_or_default()).await?;
                node.ensure_all(vec![service(false)]).await?;
                wait_healthy(cluster, node).await
            }
            .await;
            changes.push(turn.finish("joined the running etcd cluster", outcome)?);
            return Ok(changes);
        }
        if !changes.is_empty() && node.test("systemctl is-active -q etcd").await? {
            // A running member whose unit changed: one member at a time, the cluster healthy
            // again (every member answering) before the next, so quorum is never at stake.
            let turn = cluster.rolling_turn("etcd", node).await?;
            let outcome = async {
                node.ensure_all(vec![service(true)]).await?;
                wait_healthy(cluster, node).await
            }
            .await;
            changes.push(turn.finish("restarted etcd", outcome)?);
            return Ok(changes);
        }
        // A first start is not rolled: a new member waits for its peers to form the cluster.
        changes.extend(node.ensure_all(vec![service(false)]).await?);
        wait_healthy(cluster, node).await?;
        Ok(changes)
    }
    .boxed()
}

struct FirstStart {
    env: String,
    /// Joins a running cluster (rather than forming a new one with the other masters).
    join: bool,
}

/// The environment of a member's first start.
fn first_start(cluster: &Cluster, node: &Node, running: &Running) -> Result<FirstStart, StepError> {
    let token = &cluster.inventory.cluster.name;
    let env = |initial: String, state: &str| {
        format!(
            "# Written by groundwork (phase etcd): read by etcd only while /var/lib/etcd is empty.\n\
             ETCD_INITIAL_CLUSTER={initial}\nETCD_INITIAL_CLUSTER_STATE={state}\nETCD_INITIAL_CLUSTER_TOKEN={token}\n"
        )
    };
    let Some(running) = running else {
        let all = cluster
            .masters()
            .iter()
            .map(|m| format!("{}={}", m.name, members::peer_url(&m.address)))
            .collect::<Vec<_>>()
            .join(",");
        return Ok(FirstStart { env: env(all, "new"), join: false });
    };
    let me = members::peer_url(node.address());
    if running.iter().any(|m| m.peer_url == me && m.started) {
        return Err(StepError::new(format!(
            "{}: etcd lists this master as a started member, but its data directory is gone. Remove it from \
             the etcd cluster with `groundwork node remove {}`, then run apply again to add it afresh",
            node.name(),
            node.name()
        )));
    }
    Ok(FirstStart {
        env: env(members::initial_cluster_for_join(running, node.name(), node.address()), "existing"),
        join: true,
    })
}

/// `member add` for `node` on a running member (unless an earlier, interrupted run added it).
async fn join(cluster: &Cluster, node: &Node, running: &[Member]) -> Result<(), StepError> {
    let me = members::peer_url(node.address());
    if running.iter().any(|m| m.peer_url == me) {
        return Ok(());
    }
    let via = running_member(cluster).await?.ok_or_else(|| StepError::new("no running etcd member to join"))?;
    via.sh(
        "etcdctl member add",
        &crate::etcd::etcdctl(&format!("member add {} --peer-urls={me}", crate::transport::shell_quote(node.name()))),
    )
    .await?;
    Ok(())
}

/// The membership when this run's etcd phase began, looked at once (before any member starts).
async fn running_cluster(cluster: &Cluster) -> Result<Running, StepError> {
    let cell = cluster.shared.lock().await.etcd_running.clone();
    cell.get_or_try_init(|| async {
        let Some(via) = running_member(cluster).await? else { return Ok(None) };
        let list = via.sh("etcdctl member list", &crate::etcd::etcdctl("member list -w simple")).await?;
        members::parse(&list).map(Some).map_err(StepError::new)
    })
    .await
    .cloned()
}

/// A master whose etcd member has data and runs.
async fn running_member(cluster: &Cluster) -> Result<Option<Arc<Node>>, StepError> {
    for m in cluster.masters() {
        if let Some(n) = cluster.nodes.get(&m.name)
            && n.test(&format!("{HAS_DATA} && systemctl is-active -q etcd")).await?
        {
            return Ok(Some(n.clone()));
        }
    }
    Ok(None)
}

/// Every member of the cluster answers (asked from this member), within a minute.
pub(super) async fn wait_healthy(cluster: &Cluster, node: &Node) -> Result<(), StepError> {
    let want = cluster.masters().len();
    let mut last = String::new();
    for _ in 0..30 {
        let h = crate::etcd::health(&node.session).await?;
        if h.all_answered && h.healthy >= want {
            return Ok(());
        }
        last = format!("{} of {want} members healthy: {}", h.healthy, super::node::tail(&h.complaint, 3));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(StepError::new(format!("{}: etcd is not healthy after 60 s ({last})", node.name())))
}
