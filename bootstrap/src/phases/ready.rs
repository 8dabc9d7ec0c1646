//! wait-ready: every node `Ready`, as the API server reports it (asked by the controller itself
//! through an SSH tunnel; see `kube`).

use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Change, Cluster, Node, StepError};

const DEADLINE: Duration = Duration::from_secs(240);

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        if cluster.dry_run && !cluster.state.pki_dir().join("ca.crt").exists() {
            return Ok(vec![Change::new("wait until Ready (after kubeadm init)")]);
        }
        let started = Instant::now();
        loop {
            let last = match super::api::nodes(cluster).await {
                Ok(Some(nodes)) => match nodes.iter().find(|n| n.name == node.name()) {
                    Some(n) if n.ready => {
                        let waited = started.elapsed();
                        return Ok(if waited > Duration::from_secs(2) {
                            vec![Change::new(format!("Ready after {} s", waited.as_secs()))]
                        } else {
                            vec![]
                        });
                    }
                    Some(_) => "registered, not Ready".to_string(),
                    None => "not registered".to_string(),
                },
                Ok(None) => "no API server answers yet".to_string(),
                Err(e) => e.0,
            };
            if node.dry_run() {
                return Ok(vec![Change::new(format!("wait until Ready (now: {last})"))]);
            }
            if started.elapsed() > DEADLINE {
                return Err(StepError::new(format!(
                    "{}: not Ready after {} s ({last}); look at `journalctl -u kubelet` on the node",
                    node.name(),
                    DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    .boxed()
}
