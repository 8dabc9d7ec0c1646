//! What resetting a host means, as the shell it runs (`groundwork reset`, and the host of
//! `groundwork node remove`). A Kubernetes node loses everything that made it a member: kubeadm's
//! files and the kubelet's, its etcd member's data, the pod network (CNI config, bridge, routes to
//! the pod CIDR) and the iptables chains kube-proxy and the CNI plugins made (`KUBE-*`, `CNI-*`:
//! only those, so a site's own firewall rules stay), groundwork's units and files, the /etc/hosts
//! block. Installed software stays (packages, the bundle's binaries, imported images), so the host
//! is ready for `apply` again. Every step tolerates what is already gone: a reset interrupted
//! anywhere is finished by running it again.

use crate::transport::shell_quote;

/// Keeps the lines of `iptables-save` that are not Kubernetes' or the CNI plugins': their chains,
/// their rules, and the jumps to them from the built-in chains.
const WITHOUT_KUBERNETES_CHAINS: &str = "grep -vE '^:(KUBE-|CNI-)|^-A (KUBE-|CNI-)|-j (KUBE-|CNI-)'";

/// Resets a master or worker. `pod_cidr` bounds the routes removed.
pub fn kubernetes_node(pod_cidr: &str) -> String {
    let cidr = shell_quote(pod_cidr);
    format!(
        r#"set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ -x /usr/local/bin/kubeadm ] && {{ [ -e /etc/kubernetes/kubelet.conf ] || [ -d /etc/kubernetes/manifests ]; }}; then
  kubeadm reset --force --cleanup-tmp-dir >/var/log/groundwork-kubeadm-reset.log 2>&1 \
    || {{ echo "kubeadm reset failed: see /var/log/groundwork-kubeadm-reset.log" >&2; exit 1; }}
fi
for unit in kubelet etcd groundwork-pod-routes haproxy keepalived; do
  systemctl disable --now "$unit" >/dev/null 2>&1 || true
done
rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/etcd.restoring /etc/groundwork \
  /etc/cni/net.d/10-groundwork.conflist /var/lib/cni /var/lib/groundwork/etcd-restore \
  /etc/systemd/system/etcd.service /etc/systemd/system/groundwork-pod-routes.service \
  /etc/haproxy/haproxy.cfg /etc/keepalived/keepalived.conf /etc/keepalived/check-apiserver.sh \
  /etc/modules-load.d/groundwork-kubernetes.conf /etc/sysctl.d/90-groundwork-kubernetes.conf
systemctl daemon-reload
ip link delete cni0 >/dev/null 2>&1 || true
ip -4 route show root {cidr} | while read -r route; do ip route del $route >/dev/null 2>&1 || true; done
for tool in iptables ip6tables; do
  command -v "$tool-save" >/dev/null || continue
  rules=$("$tool-save") || continue
  printf '%s\n' "$rules" | grep -qE '^:(KUBE-|CNI-)|-j (KUBE-|CNI-)' || continue
  printf '%s\n' "$rules" | {WITHOUT_KUBERNETES_CHAINS} | "$tool-restore" \
    || {{ echo "$tool-restore refused the rules without KUBE-/CNI- chains" >&2; exit 1; }}
done
if grep -q '^# BEGIN groundwork' /etc/hosts; then
  # Written in place: in a container /etc/hosts is a bind mount that cannot be renamed over.
  kept=$(sed '/^# BEGIN groundwork$/,/^# END groundwork$/d' /etc/hosts) && printf '%s\n' "$kept" > /etc/hosts
fi
"#
    )
}

/// Wipes the backbone's volumes on the storage host: its exports and targets, then the data
/// under `directory` and the logical volumes `lvs` (`vg/name`; only with `--wipe-volumes`).
pub fn storage_volumes(directory: &str, lvs: &[String]) -> String {
    let dir = shell_quote(directory);
    let lvs = lvs
        .iter()
        .map(|lv| {
            let q = shell_quote(lv);
            format!("if lvs {q} >/dev/null 2>&1; then lvremove -y {q} >/dev/null || exit 1; fi\n")
        })
        .collect::<String>();
    format!(
        r#"set -u
for unit in tgt nfs-ganesha nfs-server; do systemctl stop "$unit" >/dev/null 2>&1 || true; done
rm -f /etc/tgt/conf.d/groundwork.conf /etc/tgt/groundwork-chap /etc/exports.d/groundwork.exports
rm -rf /etc/systemd/system/tgt.service.d/groundwork.conf
systemctl daemon-reload
rm -rf {dir}
{lvs}"#
    )
}

/// Drops the PostgreSQL cluster groundwork created, data and all (only with `--wipe-database`).
pub fn database(version: u32) -> String {
    format!(
        r#"set -u
if pg_lsclusters -h 2>/dev/null | awk '{{print $1, $2}}' | grep -qx '{version} main'; then
  pg_dropcluster --stop {version} main
fi
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kubernetes_and_cni_chains_leave_the_rules() {
        let saved = "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:SITE-SSH - [0:0]\n\
                     -A INPUT -j KUBE-FIREWALL\n-A INPUT -p tcp --dport 22 -j SITE-SSH\n\
                     -A KUBE-FIREWALL -j DROP\n-A SITE-SSH -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n\
                     *nat\n:CNI-abc - [0:0]\n-A POSTROUTING -s 10.244.1.0/24 -j CNI-abc\nCOMMIT\n";
        let mut child = std::process::Command::new("sh")
            .args(["-c", WITHOUT_KUBERNETES_CHAINS])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(saved.as_bytes()).unwrap();
        let kept = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        assert_eq!(
            kept,
            "*filter\n:INPUT ACCEPT [0:0]\n:SITE-SSH - [0:0]\n-A INPUT -p tcp --dport 22 -j SITE-SSH\n\
             -A SITE-SSH -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n*nat\nCOMMIT\n"
        );
        let script = kubernetes_node("10.244.0.0/16");
        assert!(script.contains(WITHOUT_KUBERNETES_CHAINS) && !script.contains("iptables -F"), "{script}");
    }
}
