//! `groundwork import ansible` on inventories written the way Kubespray's sample inventory and
//! documentation lay them out (written for this test: an INI inventory with group_vars/
//! directories, and a YAML one with host variables and a ProxyCommand): what is carried over, the
//! list of what is not with file and line, and an inventory that validates.

use std::path::Path;
use std::process::Command;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn groundwork(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_groundwork")).args(args).output().expect("groundwork runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const INI: &str = "\
# The cluster's nodes; `ip` binds Kubernetes to another interface.
[all]
node1 ansible_host=10.10.1.11  # ip=10.3.0.1 etcd_member_name=etcd1
node2 ansible_host=10.10.1.12
node3 ansible_host=10.10.1.13
node4 ansible_host=10.10.1.21
node5 ansible_host=10.10.1.22
node6 ansible_host=10.10.1.23
node7 ansible_host=10.10.1.24 ansible_port=2200
jump ansible_host=198.51.100.7 ansible_user=gate

[bastion]
jump

[kube_control_plane]
node[1:3]

[etcd]
node[1:3]

[kube_node]
node[4:7]

[calico_rr]

[k8s_cluster:children]
kube_control_plane
kube_node
calico_rr
";

const ALL_YML: &str = "\
---
ansible_user: ops
ansible_become: true
ansible_ssh_private_key_file: ~/.ssh/cluster_ed25519
bin_dir: /usr/local/bin
";

const K8S_CLUSTER_YML: &str = "\
---
kube_version: v1.33.3
kube_network_plugin: calico
kube_service_addresses: 10.233.0.0/18
kube_pods_subnet: 10.233.64.0/18
kube_proxy_mode: ipvs
cluster_name: cluster.local
";

#[test]
fn a_kubespray_ini_inventory_with_group_vars_is_carried_over_and_the_rest_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory/mycluster");
    write(&inv, "inventory.ini", INI);
    write(&inv, "group_vars/all/all.yml", ALL_YML);
    write(&inv, "group_vars/k8s_cluster/k8s-cluster.yml", K8S_CLUSTER_YML);
    let out_file = dir.path().join("mycluster.yaml");
    let out = groundwork(&[
        "import",
        "ansible",
        inv.join("inventory.ini").to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}");
    let written = std::fs::read_to_string(&out_file).unwrap();
    for want in [
        "name: mycluster",
        "kubernetesVersion: v1.33.3",
        "podCIDR: 10.233.64.0/18",
        "serviceCIDR: 10.233.0.0/18",
        "cni: calico",
        "user: ops",
        "keyFile: ~/.ssh/cluster_ed25519",
        "sudo: true",
        "address: 198.51.100.7",
        "ssh: {user: gate}",
        "{name: node1, address: 10.10.1.11, roles: [master]}",
        "{name: node7, address: 10.10.1.24, roles: [worker], ssh: {port: 2200}}",
    ] {
        assert!(written.contains(want), "no `{want}` in:\n{written}");
    }
    assert!(!written.contains("jump"), "the bastion is not a cluster host:\n{written}");
    let k8s = inv.join("group_vars/k8s_cluster/k8s-cluster.yml");
    let all = inv.join("group_vars/all/all.yml");
    for (file, line, setting) in [(&k8s, 6, "kube_proxy_mode"), (&k8s, 7, "cluster_name"), (&all, 5, "bin_dir")] {
        let want = format!("not carried: {}:{line}: {setting}: ", file.display());
        assert!(said.contains(&want), "no `{want}` in:\n{said}");
    }
    assert!(!said.contains("kube_version"), "a carried setting is listed: {said}");
    // What it wrote validates (the Calico manifest and key file are this machine's to provide).
    let v = groundwork(&["validate", "-i", out_file.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    // Never replaced.
    let again = groundwork(&[
        "import",
        "ansible",
        inv.join("inventory.ini").to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("never replaces"), "{}", text(&again.stderr));
}

const HOSTS_YAML: &str = "\
all:
  hosts:
    cp1:
      ansible_host: 10.20.0.11
      ip: 10.20.0.11
    cp2:
      ansible_host: 10.20.0.12
    cp3:
      ansible_host: 10.20.0.13
    w1:
      ansible_host: 10.20.0.21
    w2:
      ansible_host: 10.20.0.22
    w3:
      ansible_host: 10.20.0.23
    w4:
      ansible_host: 10.20.0.24
      ansible_become_password: hunter2-not-to-be-copied
  vars:
    ansible_user: deploy
    ansible_become: yes
    ansible_ssh_common_args: '-o ProxyCommand=\"ssh -W %h:%p -q jump@bastion.example.org -p 2022\"'
  children:
    kube_control_plane:
      hosts:
        cp1:
        cp2:
        cp3:
    kube_node:
      hosts:
        w1:
        w2:
        w3:
        w4:
    etcd:
      hosts:
        w1:
        w2:
        w3:
    k8s_cluster:
      children:
        kube_control_plane:
        kube_node:
";

#[test]
fn a_kubespray_yaml_inventory_with_a_proxycommand_and_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("prod");
    write(&inv, "hosts.yaml", HOSTS_YAML);
    let file = inv.join("hosts.yaml");
    let out = groundwork(&["import", "ansible", file.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("hunter2"), "a password was copied: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let inventory = report["text"].as_str().unwrap();
    for want in [
        "name: prod",
        "address: bastion.example.org",
        "port: 2022",
        "ssh: {user: jump}",
        "user: deploy",
        "sudo: true",
        "useAgent: true",
        "{name: w4, address: 10.20.0.24, roles: [worker]}",
    ] {
        assert!(inventory.contains(want), "no `{want}` in:\n{inventory}");
    }
    let listed: Vec<String> = report["not_carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}:{}:{}", n["file"].as_str().unwrap(), n["line"], n["setting"].as_str().unwrap()))
        .collect();
    let at = |line: usize, setting: &str| format!("{}:{line}:{setting}", file.display());
    for want in [at(5, "ip"), at(18, "ansible_become_password"), at(35, "etcd")] {
        assert!(listed.contains(&want), "no {want} in {listed:#?}");
    }
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report:#}");
}

#[test]
fn an_inventory_without_masters_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.ini", "[kube_node]\nn1 ansible_host=10.0.0.1\n");
    let out = groundwork(&["import", "ansible", dir.path().join("hosts.ini").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no host is in `kube_control_plane`"), "{}", text(&out.stderr));
}
