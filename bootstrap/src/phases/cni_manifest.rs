//! cni with `cni: calico` or `flannel`: the plugin's own manifest (the release's calico.yaml or
//! kube-flannel.yml, named by `cluster.cniManifest`) with the inventory's pod CIDR set in it,
//! applied once from the first master; its DaemonSet then installs the plugin on every node. Every
//! node gets Debian's standard plugins linked into /opt/cni/bin, where containerd looks for this
//! kind of network and where Flannel expects `bridge`, `portmap` and `host-local` beside its own.
//!
//! Not exercised by the container lab: Calico's and Flannel's images cannot be built offline here.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::inventory::Cni;
use crate::transport::shell_quote;

pub const DEBIAN_PLUGINS: &str = "/usr/lib/cni";
pub const UPSTREAM_PLUGINS: &str = "/opt/cni/bin";
const APPLIED_DIR: &str = "/etc/kubernetes/groundwork";

/// The pod-CIDR lines the releases ship, and how they read with the inventory's CIDR.
fn set_pod_cidr(cni: Cni, manifest: &str, cidr: &str) -> Result<String, String> {
    match cni {
        // kube-flannel.yml: net-conf.json's "Network": "10.244.0.0/16".
        Cni::Flannel => {
            let key = "\"Network\": \"";
            let start = manifest.find(key).ok_or("it has no net-conf.json \"Network\" entry")? + key.len();
            let end = start + manifest[start..].find('"').ok_or("its \"Network\" entry is not closed")?;
            Ok(format!("{}{cidr}{}", &manifest[..start], &manifest[end..]))
        }
        // calico.yaml: CALICO_IPV4POOL_CIDR ships commented out (192.168.0.0/16 otherwise).
        Cni::Calico => {
            let mut out = String::with_capacity(manifest.len());
            let mut lines = manifest.lines().peekable();
            let mut set = false;
            while let Some(line) = lines.next() {
                let bare = line.trim_start().trim_start_matches('#').trim_start();
                if bare == "- name: CALICO_IPV4POOL_CIDR" {
                    let indent = &line[..line.len() - line.trim_start().len()];
                    out.push_str(&format!("{indent}- name: CALICO_IPV4POOL_CIDR\n{indent}  value: \"{cidr}\"\n"));
                    // Drop the shipped value line that follows.
                    if lines
                        .peek()
                        .is_some_and(|l| l.trim_start().trim_start_matches('#').trim_start().starts_with("value:"))
                    {
                        lines.next();
                    }
                    set = true;
                    continue;
                }
                out.push_str(line);
                out.push('\n');
            }
            if set { Ok(out) } else { Err("it has no CALICO_IPV4POOL_CIDR entry (commented or not)".into()) }
        }
        Cni::Bridge => Ok(manifest.to_string()),
    }
}

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let cni = cluster.inventory.cluster.cni;
        let mut changes = standard_plugins(node).await?;
        if cluster.first_master().map(|m| m.name.as_str()) != Some(node.name()) {
            return Ok(changes);
        }
        let path = cluster.inventory.cluster.cni_manifest.as_ref().ok_or_else(|| {
            StepError::new(format!("cluster.cniManifest: `cni: {}` needs the plugin's manifest", cni.as_str()))
        })?;
        let local = crate::inventory::resolve_path(&cluster.base_dir, path);
        let text = std::fs::read_to_string(&local)
            .map_err(|e| StepError::new(format!("cluster.cniManifest: cannot read {}: {e}", local.display())))?;
        let pod_cidr = cluster.inventory.cluster.pod_cidr.0.to_string();
        let rendered = set_pod_cidr(cni, &text, &pod_cidr).map_err(|why| {
            StepError::new(format!(
                "cluster.cniManifest {}: cannot set the pod CIDR: {why}; is it the {} release manifest?",
                local.display(),
                cni.as_str()
            ))
        })?;
        let remote = format!("{APPLIED_DIR}/cni-{}.yaml", cni.as_str());
        let written = node.ensure_all(vec![file(&remote, rendered, 0o644)]).await?;
        let applied = !written.is_empty();
        changes.extend(written);
        if applied && !node.dry_run() {
            node.sh(
                &format!("kubectl apply of the {} manifest", cni.as_str()),
                &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f {}", shell_quote(&remote)),
            )
            .await?;
            changes.push(Change::new(format!("applied the {} manifest (pod CIDR {pod_cidr})", cni.as_str())));
        }
        Ok(changes)
    }
    .boxed()
}

/// Debian's plugins linked into /opt/cni/bin, beside what the plugin's installer puts there
/// (its own files are never replaced).
async fn standard_plugins(node: &Node) -> Result<Vec<Change>, StepError> {
    let missing = format!(
        "for p in {DEBIAN_PLUGINS}/*; do [ -e {UPSTREAM_PLUGINS}/\"${{p##*/}}\" ] || echo \"${{p##*/}}\"; done"
    );
    let names = node.sh("listing CNI plugins", &missing).await?;
    if names.trim().is_empty() {
        return Ok(vec![]);
    }
    if !node.dry_run() {
        node.sh(
            "linking the standard CNI plugins",
            &format!(
                "mkdir -p {UPSTREAM_PLUGINS} && for p in {DEBIAN_PLUGINS}/*; do [ -e {UPSTREAM_PLUGINS}/\"${{p##*/}}\" ] || ln -s \"$p\" {UPSTREAM_PLUGINS}/; done"
            ),
        )
        .await?;
    }
    let list: Vec<&str> = names.split_whitespace().collect();
    Ok(vec![Change::new(format!(
        "linked {} standard CNI plugin(s) into {UPSTREAM_PLUGINS}: {}",
        list.len(),
        list.join(" ")
    ))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flannel_gets_the_pod_cidr_in_net_conf() {
        let m = "data:\n  net-conf.json: |\n    {\n      \"Network\": \"10.244.0.0/16\",\n      \"Backend\": {\"Type\": \"vxlan\"}\n    }\n";
        let out = set_pod_cidr(Cni::Flannel, m, "10.32.0.0/16").unwrap();
        assert!(out.contains("\"Network\": \"10.32.0.0/16\","), "{out}");
        assert_eq!(out.replace("10.32.0.0/16", "10.244.0.0/16"), m, "nothing else changes");
        assert!(set_pod_cidr(Cni::Flannel, "kind: DaemonSet\n", "10.32.0.0/16").is_err());
    }

    #[test]
    fn calico_gets_its_commented_pool_cidr_set() {
        let m = "            - name: CALICO_DISABLE_FILE_LOGGING\n              value: \"true\"\n            \
                 # - name: CALICO_IPV4POOL_CIDR\n            #   value: \"192.168.0.0/16\"\n            \
                 - name: FELIX_LOGSEVERITYSCREEN\n";
        let out = set_pod_cidr(Cni::Calico, m, "10.244.0.0/16").unwrap();
        assert!(
            out.contains("            - name: CALICO_IPV4POOL_CIDR\n              value: \"10.244.0.0/16\"\n"),
            "{out}"
        );
        assert!(!out.contains("192.168.0.0/16") && out.contains("FELIX_LOGSEVERITYSCREEN"), "{out}");
        assert!(set_pod_cidr(Cni::Calico, "kind: DaemonSet\n", "10.244.0.0/16").is_err());
    }
}
