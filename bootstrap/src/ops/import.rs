//! `groundwork import ansible FILE`: a groundwork inventory from an Ansible inventory in
//! Kubespray's layout. Carried over: the groups `kube_control_plane` (or the older
//! `kube-master`) as masters and `kube_node` (`kube-node`) as workers, a `bastion` group or a
//! ProxyJump/ProxyCommand in `ansible_ssh_common_args` as the bastion, each host's
//! `ansible_host`, `ansible_user`, `ansible_port`, `ansible_ssh_private_key_file` and
//! `ansible_become`, and the group variables `kube_version`, `kube_pods_subnet`,
//! `kube_service_addresses` and `kube_network_plugin`. Every other setting is listed with its
//! file and line and why it was not carried; passwords are named, never copied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::import::ansible::{AnsibleError, Inventory, Located};
use crate::inventory::{self, LoadError, LocalFiles};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Ansible(#[from] AnsibleError),
    #[error("{file}: no host is in `kube_control_plane` (or `kube-master`): there is no master to carry over")]
    NoMasters { file: String },
}

/// A setting left behind: where it is, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct NotCarried {
    pub file: PathBuf,
    pub line: usize,
    pub setting: String,
    pub why: String,
}

impl std::fmt::Display for NotCarried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file.display(), self.line, self.setting, self.why)
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Imported {
    /// The groundwork inventory, with comments.
    pub text: String,
    pub not_carried: Vec<NotCarried>,
    /// What `validate` says of the text (rendered diagnostics; empty when it is valid).
    pub problems: Vec<String>,
}

/// Host variables groundwork reads (or deliberately reads around).
const HOST_VARS: &[&str] = &[
    "ansible_host",
    "ansible_user",
    "ansible_port",
    "ansible_ssh_private_key_file",
    "ansible_become",
    "ansible_ssh_common_args",
];
const SECRETS: &[&str] =
    &["ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"];

struct Reader<'a> {
    inv: &'a Inventory,
    used: BTreeSet<(PathBuf, usize, String)>,
    not_carried: Vec<NotCarried>,
}

impl Reader<'_> {
    fn take(&mut self, host: &str, name: &str) -> Option<Located> {
        let v = self.inv.var(host, name)?.clone();
        self.used.insert((v.file.clone(), v.line, name.to_string()));
        Some(v)
    }

    fn leave(&mut self, at: &Located, setting: &str, why: impl Into<String>) {
        self.used.insert((at.file.clone(), at.line, setting.to_string()));
        self.not_carried.push(NotCarried {
            file: at.file.clone(),
            line: at.line,
            setting: setting.into(),
            why: why.into(),
        });
    }
}

/// Reads the inventory at `path` and makes a groundwork inventory of cluster `name`.
pub fn ansible(path: &Path, name: &str) -> Result<Imported, ImportError> {
    let inv = Inventory::read(path)?;
    let mut r = Reader { inv: &inv, used: BTreeSet::new(), not_carried: Vec::new() };
    let either = |a: &str, b: &str| {
        let mut hosts = inv.hosts_of(a);
        hosts.extend(inv.hosts_of(b).into_iter().filter(|h| !inv.hosts_of(a).contains(h)));
        hosts
    };
    let masters = either("kube_control_plane", "kube-master");
    let workers = either("kube_node", "kube-node");
    if masters.is_empty() {
        return Err(ImportError::NoMasters { file: path.display().to_string() });
    }
    let nodes: Vec<String> = masters.iter().chain(workers.iter().filter(|w| !masters.contains(w))).cloned().collect();

    // etcd: groundwork runs it on the masters.
    let etcd = inv.hosts_of("etcd");
    if !etcd.is_empty() && etcd != masters {
        let g = &inv.groups["etcd"];
        r.not_carried.push(NotCarried {
            file: g.file.clone(),
            line: g.line,
            setting: "etcd".into(),
            why: format!("etcd on {} (groundwork runs etcd on the masters: {})", etcd.join(", "), masters.join(", ")),
        });
    }
    for (group, why) in [("calico_rr", "Calico route reflectors are not set up by groundwork")] {
        if let Some(g) = inv.groups.get(group).filter(|_| !inv.hosts_of(group).is_empty()) {
            r.not_carried.push(NotCarried {
                file: g.file.clone(),
                line: g.line,
                setting: group.into(),
                why: why.into(),
            });
        }
    }

    // The bastion: a `bastion` group, or a jump host in the SSH arguments.
    let mut bastion: Option<(String, Option<u16>, Option<String>)> = None;
    if let Some(b) = inv.hosts_of("bastion").first() {
        let address = r.take(b, "ansible_host").map(|l| l.value).unwrap_or_else(|| b.clone());
        let port = r.take(b, "ansible_port").and_then(|l| l.value.parse().ok());
        let user = r.take(b, "ansible_user").map(|l| l.value);
        bastion = Some((address, port, user));
    }
    for host in &nodes {
        if let Some(args) = r.take(host, "ansible_ssh_common_args") {
            match jump_host(&args.value) {
                Some(j) if bastion.is_none() => bastion = Some(j),
                Some(_) => {}
                None => r.leave(
                    &args,
                    "ansible_ssh_common_args",
                    "no ProxyJump or ProxyCommand in it; other SSH options are not carried",
                ),
            }
        }
    }

    // SSH settings: the most common value for everyone, the others per host.
    let mut per_host: BTreeMap<String, BTreeMap<&str, String>> = BTreeMap::new();
    for host in &nodes {
        r.take(host, "ansible_host");
        let mut s = BTreeMap::new();
        for (var, key) in
            [("ansible_user", "user"), ("ansible_port", "port"), ("ansible_ssh_private_key_file", "keyFile")]
        {
            if let Some(v) = r.take(host, var) {
                s.insert(key, v.value);
            }
        }
        if let Some(b) = r.take(host, "ansible_become") {
            s.insert(
                "sudo",
                if matches!(b.value.to_lowercase().as_str(), "true" | "yes" | "1") { "true" } else { "false" }.into(),
            );
        }
        for secret in SECRETS {
            if let Some(v) = inv.var(host, secret).cloned() {
                r.leave(&v, secret, "a password is never written in a groundwork inventory: use ssh.sudoPassword / keyPassphrase with {env: NAME} or {file: PATH}");
            }
        }
        per_host.insert(host.clone(), s);
    }
    // Hosts that leave a setting out count too (they get Ansible's default): a value set on one
    // host of seven stays that host's.
    let common = |key: &str| -> Option<String> {
        let mut counts: BTreeMap<Option<&String>, usize> = BTreeMap::new();
        for s in per_host.values() {
            *counts.entry(s.get(key)).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(v, n)| (*n, v.is_some())).and_then(|(v, _)| v.cloned())
    };
    let defaults: BTreeMap<&str, Option<String>> =
        ["user", "port", "keyFile", "sudo"].into_iter().map(|k| (k, common(k))).collect();

    // Cluster-wide settings from the group variables.
    let any = nodes.first().cloned().unwrap_or_default();
    let version =
        r.take(&any, "kube_version").map(|l| if l.value.starts_with('v') { l.value } else { format!("v{}", l.value) });
    let pods = r.take(&any, "kube_pods_subnet").map(|l| l.value);
    let services = r.take(&any, "kube_service_addresses").map(|l| l.value);
    let cni = match r.take(&any, "kube_network_plugin") {
        Some(l) if l.value == "calico" || l.value == "flannel" => Some(l.value),
        Some(l) => {
            r.leave(
                &l,
                "kube_network_plugin",
                format!("`{}` is not one groundwork installs (bridge, calico, flannel)", l.value),
            );
            None
        }
        None => None,
    };

    // Everything else any host or group sets.
    let mut rest: Vec<(String, Located)> = Vec::new();
    for (_, vars) in &inv.hosts {
        rest.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for g in inv.groups.values() {
        rest.extend(g.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    rest.sort_by(|a, b| (&a.1.file, a.1.line).cmp(&(&b.1.file, b.1.line)));
    for (k, v) in rest {
        if r.used.contains(&(v.file.clone(), v.line, k.clone())) || SECRETS.contains(&k.as_str()) {
            continue;
        }
        let why = if HOST_VARS.contains(&k.as_str()) {
            "set on a host that is neither a master, a worker nor the bastion".to_string()
        } else if k == "ip" || k == "access_ip" {
            "groundwork uses the address it reaches the host at (ansible_host) for the node too".into()
        } else {
            "not a setting groundwork has".into()
        };
        r.leave(&v, &k, why);
    }

    let carried = Carried {
        name,
        masters: &masters,
        workers: &workers,
        per_host: &per_host,
        defaults: &defaults,
        bastion: &bastion,
        version,
        pods,
        services,
        cni,
    };
    let text = render(carried, &inv);
    let problems = match inventory::load_str_checking(
        &PathBuf::from(format!("{name}.yaml")),
        text.clone(),
        LocalFiles::Reported,
    ) {
        Ok(_) => vec![],
        Err(LoadError::Invalid { diagnostics, source_text, .. }) => {
            diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render(&source_text)).collect()
        }
        Err(e) => vec![e.to_string()],
    };
    let mut not_carried = r.not_carried;
    not_carried.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    not_carried.dedup();
    Ok(Imported { text, not_carried, problems })
}

/// `user@host:port` from `-o ProxyJump=...`, `-J ...` or a ProxyCommand running `ssh -W %h:%p`.
fn jump_host(args: &str) -> Option<(String, Option<u16>, Option<String>)> {
    let words: Vec<&str> = args.split_whitespace().map(|w| w.trim_matches(|c| c == '"' || c == '\'')).collect();
    let spec = words.iter().enumerate().find_map(|(i, w)| {
        w.strip_prefix("ProxyJump=")
            .or_else(|| w.strip_prefix("-oProxyJump="))
            .map(str::to_string)
            .or_else(|| (*w == "-J").then(|| words.get(i + 1).map(|s| s.to_string())).flatten())
    });
    if let Some(spec) = spec {
        let (user, rest) = match spec.split_once('@') {
            Some((u, r)) => (Some(u.to_string()), r.to_string()),
            None => (None, spec.clone()),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (rest, None),
        };
        return Some((host, port, user));
    }
    // ProxyCommand="ssh -W %h:%p -q user@host -p 2222"
    let start = words.iter().position(|w| w.contains("ProxyCommand"))?;
    let cmd = &words[start + 1..];
    let mut port = None;
    let mut target = None;
    let mut i = 0;
    while i < cmd.len() {
        match cmd[i] {
            "-p" => {
                port = cmd.get(i + 1).and_then(|p| p.parse().ok());
                i += 1;
            }
            "-W" | "-i" | "-o" | "-l" => i += 1,
            w if !w.starts_with('-') && w != "ssh" && !w.contains('%') => target = Some(w),
            _ => {}
        }
        i += 1;
    }
    let target = target?;
    let (user, host) = match target.split_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, target.to_string()),
    };
    Some((host, port, user))
}

/// `text` with `comment` after it in a column of its own.
fn commented(text: String, comment: &str) -> String {
    format!("{text:<38}# {comment}")
}

/// What was carried over, ready to be written out.
struct Carried<'a> {
    name: &'a str,
    masters: &'a [String],
    workers: &'a [String],
    per_host: &'a BTreeMap<String, BTreeMap<&'static str, String>>,
    defaults: &'a BTreeMap<&'static str, Option<String>>,
    bastion: &'a Option<(String, Option<u16>, Option<String>)>,
    version: Option<String>,
    pods: Option<String>,
    services: Option<String>,
    cni: Option<String>,
}

fn render(c: Carried<'_>, inv: &Inventory) -> String {
    let Carried { name, masters, workers, per_host, defaults, bastion, version, pods, services, cni } = c;
    let mut t = String::new();
    let w = &mut t;
    let _ = writeln!(
        w,
        "# Imported by `groundwork import ansible` from an Ansible inventory; check it with\n\
         # `groundwork validate -i FILE`. What was not carried over was listed when it ran.\n\
         apiVersion: groundwork/v1alpha1\nkind: Cluster\n\ncluster:\n  name: {name}"
    );
    if let Some(v) = version {
        let _ = writeln!(w, "{}", commented(format!("  kubernetesVersion: {v}"), "kube_version"));
    }
    if let Some(p) = pods {
        let _ = writeln!(w, "{}", commented(format!("  podCIDR: {p}"), "kube_pods_subnet"));
    }
    if let Some(s) = services {
        let _ = writeln!(w, "{}", commented(format!("  serviceCIDR: {s}"), "kube_service_addresses"));
    }
    match cni {
        Some(c) => {
            let _ = writeln!(
                w,
                "  cni: {c}                            # kube_network_plugin\n  cniManifest: cni/{c}.yaml     # the release's manifest, beside this file"
            );
        }
        None => {
            let _ = writeln!(w, "  cni: bridge");
        }
    }
    let _ = writeln!(w, "\nssh:");
    if let Some(u) = &defaults["user"] {
        let _ = writeln!(w, "  user: {u}");
    }
    if let Some(p) = &defaults["port"] {
        let _ = writeln!(w, "  port: {p}");
    }
    match &defaults["keyFile"] {
        Some(k) => {
            let _ = writeln!(w, "  keyFile: {k}");
        }
        None => {
            let _ = writeln!(
                w,
                "  useAgent: true                      # no ansible_ssh_private_key_file: keys from ssh-agent"
            );
        }
    }
    match (defaults["sudo"].as_deref(), defaults["user"].as_deref()) {
        (Some("true"), _) => {
            let _ = writeln!(w, "{}", commented("  sudo: true".into(), "ansible_become"));
        }
        // Kubespray's plays run with `become: true` whatever the inventory says.
        (None, Some(user)) if user != "root" => {
            let _ = writeln!(w, "{}", commented("  sudo: true".into(), "Kubespray's plays become root"));
        }
        _ => {}
    }
    let _ = writeln!(w, "  knownHosts: known_hosts");
    if let Some((address, port, user)) = bastion {
        let _ = writeln!(w, "\nbastion:\n  address: {address}\n  port: {}", port.unwrap_or(22));
        if let Some(u) = user.as_ref().filter(|u| Some(*u) != defaults["user"].as_ref()) {
            let _ = writeln!(w, "  ssh: {{user: {u}}}");
        }
    }
    let _ = writeln!(w, "\nhosts:");
    for host in masters.iter().chain(workers.iter().filter(|h| !masters.contains(h))) {
        let mut roles = vec![];
        if masters.contains(host) {
            roles.push("master");
        }
        if workers.contains(host) {
            roles.push("worker");
        }
        let address = inv.var(host, "ansible_host").map(|l| l.value.clone()).unwrap_or_else(|| host.clone());
        let own = &per_host[host];
        let overrides: Vec<String> =
            own.iter().filter(|(k, v)| defaults[**k].as_ref() != Some(*v)).map(|(k, v)| format!("{k}: {v}")).collect();
        let ssh = if overrides.is_empty() { String::new() } else { format!(", ssh: {{{}}}", overrides.join(", ")) };
        let _ = writeln!(
            w,
            "  - {{name: {}, address: {address}, roles: [{}]{ssh}}}",
            host.to_lowercase(),
            roles.join(", ")
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hosts_are_read_from_proxyjump_and_proxycommand() {
        assert_eq!(
            jump_host("-o ProxyJump=ops@203.0.113.5:2222"),
            Some(("203.0.113.5".into(), Some(2222), Some("ops".into())))
        );
        assert_eq!(jump_host("-J bastion.example.org"), Some(("bastion.example.org".into(), None, None)));
        assert_eq!(
            jump_host("-o ProxyCommand=\"ssh -W %h:%p -q ops@bastion.example.org -p 2200\""),
            Some(("bastion.example.org".into(), Some(2200), Some("ops".into())))
        );
        assert_eq!(jump_host("-o StrictHostKeyChecking=no"), None);
    }
}
