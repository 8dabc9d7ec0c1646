//! The external etcd as the controller speaks to it on a master: etcdctl's command line (with the
//! API server's client certificate, which every master holds) and snapshots (`snapshot`), shared by
//! the etcd phase, `groundwork etcd` and the upgrade's snapshot before it starts.

pub mod members;
pub mod snapshot;

/// etcdctl against this member, as the API server's etcd client.
pub fn etcdctl(args: &str) -> String {
    etcdctl_at("https://127.0.0.1:2379", args)
}

/// etcdctl against the member at `endpoint` (a client URL), from a master.
pub fn etcdctl_at(endpoint: &str, args: &str) -> String {
    format!(
        "ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints={endpoint} \
         --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/apiserver-etcd-client.crt \
         --key=/etc/kubernetes/pki/apiserver-etcd-client.key --command-timeout=5s {args}"
    )
}

/// One look at the cluster's health from a member.
#[derive(Debug, Clone)]
pub struct Health {
    /// Members that answered healthy.
    pub healthy: usize,
    /// etcdctl's own verdict (it fails when any member does not answer).
    pub all_answered: bool,
    /// Its stderr, which says which member did not answer and why.
    pub complaint: String,
}

/// Asks the member on `session` how every member of its cluster is (`endpoint health --cluster`).
pub async fn health(session: &crate::transport::NodeSession) -> Result<Health, crate::transport::TransportError> {
    let out = session.exec_privileged(&etcdctl("endpoint health --cluster -w json"), None).await?;
    Ok(Health {
        healthy: out.stdout_text().matches("\"health\":true").count(),
        all_answered: out.success(),
        complaint: out.stderr_text(),
    })
}

/// etcdutl, which reads and restores snapshot files (from the bundle, beside etcdctl).
pub const ETCDUTL: &str = "/usr/local/bin/etcdutl";
