//! prepare-os: what kubeadm's preflight and the kubelet expect of the operating system.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;
use groundwork_protocol::tasks::HostsEntry;

use super::{Change, Cluster, Node, StepError};

/// Kernel parameters Kubernetes needs (forwarding, bridged traffic through iptables) and the
/// ones the kubelet insists on and would otherwise set itself.
pub const SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("vm.overcommit_memory", "1"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
];

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let entries = cluster
            .inventory
            .hosts
            .iter()
            .map(|h| HostsEntry { address: h.address.clone(), names: vec![h.name.clone()] })
            .collect();
        node.ensure_all(vec![
            Task::SwapOff,
            // br_netfilter must come before its sysctls exist.
            Task::Modules {
                file: "/etc/modules-load.d/groundwork-kubernetes.conf".into(),
                names: vec!["overlay".into(), "br_netfilter".into()],
            },
            Task::Sysctl {
                file: "/etc/sysctl.d/90-groundwork-kubernetes.conf".into(),
                values: SYSCTLS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
            Task::Hostname { name: node.name().to_string() },
            Task::HostsBlock { entries },
        ])
        .await
    }
    .boxed()
}
