//! Checks that need the whole inventory: unique names and addresses, the shape of the control
//! plane, networks that must not overlap, sections that need a host with a matching role,
//! files that must exist. Every finding is located through the source map.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use super::diagnostic::{Diagnostics, Severity};
use super::model::{
    BackingKind, Cni, EndpointMode, EtcdMode, Inventory, PackageSource, Role, SshOverride, Storage, VolumeProtocol,
};
use super::resolve_path;
use super::source_map::SourceMap;
use super::storage_profile::{claim_size, claim_volumes};
use super::values::{Cidr, SecretRef};

pub struct Checker<'a> {
    inv: &'a Inventory,
    map: &'a SourceMap,
    base_dir: &'a Path,
    out: &'a mut Diagnostics,
    local: LocalFiles,
}

/// Files the inventory names on the machine groundwork runs on (key files, the bundle, secret
/// files, the CNI manifest): a run needs them, but their absence says nothing about the file
/// itself, which may be written on one machine and used on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFiles {
    /// A missing one is an error (every command that connects, and `validate --here`).
    Required,
    /// A missing one is a warning (`validate`): the file is checked, not this machine.
    Reported,
}

impl<'a> Checker<'a> {
    pub fn new(
        inv: &'a Inventory,
        map: &'a SourceMap,
        base_dir: &'a Path,
        out: &'a mut Diagnostics,
        local: LocalFiles,
    ) -> Self {
        Checker { inv, map, base_dir, out, local }
    }

    /// Something the inventory names is not on this machine: an error or a warning as `local` says.
    fn missing_here(&mut self, path: &str, message: impl Into<String>, help: &str) {
        match self.local {
            LocalFiles::Required => self.error(path, message, help),
            LocalFiles::Reported => self.warn(
                path,
                format!("{} on this machine", message.into()),
                format!(
                    "{help}; `plan` and `apply` refuse to run until it is there (`validate --here` checks as they do)"
                ),
            ),
        }
    }

    pub fn run(mut self) {
        self.cluster();
        self.hosts();
        self.topology();
        self.networks();
        self.ssh();
        self.packages();
        self.storage();
        self.database();
        self.registry();
        if !is_dns_label(&self.inv.handoff.namespace) {
            self.error(
                "handoff.namespace",
                "is not a valid Kubernetes namespace name",
                "use lower-case letters, digits and `-`, at most 63 characters",
            );
        }
    }

    fn error(&mut self, path: &str, message: impl Into<String>, help: impl Into<String>) {
        let at = self.map.locate_value(path);
        self.out.push(Severity::Error, at, path, message, Some(help.into()));
    }

    fn warn(&mut self, path: &str, message: impl Into<String>, help: impl Into<String>) {
        let at = self.map.locate_value(path);
        self.out.push(Severity::Warning, at, path, message, Some(help.into()));
    }

    fn cluster(&mut self) {
        let c = &self.inv.cluster;
        match (c.cni, &c.cni_manifest) {
            (Cni::Bridge, Some(_)) => self.warn(
                "cluster.cniManifest",
                "`cni: bridge` needs no manifest; this one is not used",
                "remove cniManifest, or set `cni: calico` or `cni: flannel`",
            ),
            (Cni::Calico | Cni::Flannel, None) => self.error(
                "cluster.cni",
                format!("`cni: {}` needs the plugin's manifest", c.cni.as_str()),
                "set `cluster.cniManifest` to the release's calico.yaml or kube-flannel.yml beside the inventory",
            ),
            (Cni::Calico | Cni::Flannel, Some(m)) if !resolve_path(self.base_dir, m).is_file() => self.missing_here(
                "cluster.cniManifest",
                format!("{} does not exist", resolve_path(self.base_dir, m).display()),
                "point it at the plugin's manifest (relative paths start at the inventory's directory)",
            ),
            _ => {}
        }
        let k = &c.kubelet;
        let high = k.image_gc_high_threshold_percent.unwrap_or(85);
        let low = k.image_gc_low_threshold_percent.unwrap_or(80);
        if high > 100 || low >= high {
            let field = if high > 100 { "imageGcHighThresholdPercent" } else { "imageGcLowThresholdPercent" };
            self.error(
                &format!("cluster.kubelet.{field}"),
                format!("image GC thresholds low {low} and high {high} are not 0 <= low < high <= 100"),
                "set the high threshold at most 100 and the low one below it (defaults: 85 and 80)",
            );
        }
        self.extra_args("cluster.apiServer.extraArgs", &c.api_server.extra_args, &[]);
        self.extra_args("cluster.etcdExtraArgs", &c.etcd_extra_args, ETCD_FLAGS_OF_GROUNDWORK);
        if c.etcd == EtcdMode::Stacked && !c.etcd_extra_args.is_empty() {
            self.error(
                "cluster.etcdExtraArgs",
                "applies to the external etcd only; kubeadm runs a stacked etcd",
                "remove it, or set `cluster.etcd: external`",
            );
        }
        if !is_dns_label(&c.name) {
            self.error(
                "cluster.name",
                format!("`{}` is not a valid cluster name", c.name),
                "use lower-case letters, digits and `-`, starting with a letter, at most 63 characters",
            );
        }
        if !is_kubernetes_version(&c.kubernetes_version) {
            self.error(
                "cluster.kubernetesVersion",
                format!("`{}` is not a Kubernetes release", c.kubernetes_version),
                "write a release version such as v1.33.3",
            );
        }
        let ep = &c.control_plane_endpoint;
        match (ep.mode, &ep.address) {
            (EndpointMode::External | EndpointMode::Vip, None) => self.error(
                "cluster.controlPlaneEndpoint.mode",
                "this endpoint mode needs an address",
                "add `address:` with the load balancer's address or the virtual IP, or use `mode: localProxy`",
            ),
            (EndpointMode::LocalProxy, Some(_)) => self.warn(
                "cluster.controlPlaneEndpoint.address",
                "is ignored with `mode: localProxy` (every node reaches the API servers through its own local proxy)",
                "remove it, or set `mode: external` or `mode: vip` to use this address",
            ),
            _ => {}
        }
    }

    /// Flags for a command line: a flag name, and a value that stays one word in a systemd unit
    /// and one string in kubeadm's YAML.
    fn extra_args(&mut self, path: &str, args: &std::collections::BTreeMap<String, String>, reserved: &[&str]) {
        for (name, value) in args {
            let at = format!("{path}.{name}");
            let good_name = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !good_name {
                self.error(
                    &at,
                    format!("`{name}` is not a flag name"),
                    "write the flag without the leading `--`: lower-case letters, digits and `-`",
                );
            } else if reserved.contains(&name.as_str()) {
                self.error(
                    &at,
                    format!("`--{name}` is set by groundwork itself"),
                    "remove it: groundwork derives it from the inventory and the cluster's PKI",
                );
            } else if value.is_empty()
                || value
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '\'' | '$' | '%'))
            {
                self.error(
                    &at,
                    "is empty or holds blanks, quotes, `\\`, `$` or `%`",
                    "write one word (a list as `a,b`); these characters would change how the command line is read",
                );
            }
        }
    }

    fn hosts(&mut self) {
        if self.inv.hosts.is_empty() {
            self.error(
                "hosts",
                "there are no hosts",
                "list the masters, workers, storage and database hosts under `hosts:`",
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut addresses: HashMap<&str, usize> = HashMap::new();
        for (i, h) in self.inv.hosts.iter().enumerate() {
            let p = format!("hosts[{i}]");
            if !is_hostname(&h.name) {
                self.error(
                    &format!("{p}.name"),
                    format!("`{}` is not a valid host name", h.name),
                    "use lower-case letters, digits, `-` and `.`; it becomes the Kubernetes node name",
                );
            }
            if h.address.parse::<IpAddr>().is_err() && !is_hostname(&h.address.to_lowercase()) {
                self.error(
                    &format!("{p}.address"),
                    format!("`{}` is neither an IP address nor a DNS name", h.address),
                    "write the address the bastion reaches this host at, e.g. 10.0.0.11",
                );
            }
            if h.roles.is_empty() {
                self.error(
                    &format!("{p}.roles"),
                    "the host has no role",
                    "give it at least one of: master, worker, storage, database",
                );
            }
            for (j, r) in h.roles.iter().enumerate() {
                if h.roles[..j].contains(r) {
                    self.warn(
                        &format!("{p}.roles[{j}]"),
                        format!("role `{}` is listed twice", r.as_str()),
                        "remove the duplicate",
                    );
                }
            }
            if let Some(first) = names.insert(&h.name, i) {
                let line = self.map.locate_value(&format!("hosts[{first}].name")).line;
                self.error(
                    &format!("{p}.name"),
                    format!("host name `{}` is used twice", h.name),
                    format!("hosts[{first}] (line {line}) has the same name; every host needs its own"),
                );
            }
            if let Some(first) = addresses.insert(&h.address, i) {
                let line = self.map.locate_value(&format!("hosts[{first}].address")).line;
                self.error(
                    &format!("{p}.address"),
                    format!("address `{}` is used twice", h.address),
                    format!("hosts[{first}] (line {line}) has the same address; every host needs its own"),
                );
            }
        }
    }

    fn topology(&mut self) {
        let masters = self.inv.hosts_with(Role::Master).count();
        let workers = self.inv.hosts_with(Role::Worker).count();
        match masters {
            0 => self.error(
                "hosts",
                "no host has role `master`",
                "give three hosts `roles: [master]` for a highly available control plane",
            ),
            1 => self.warn(
                "hosts",
                "one master: the control plane is not highly available",
                "use three masters for HA; one is fine for a test",
            ),
            n if n % 2 == 0 => self.error(
                "hosts",
                format!("{n} masters: etcd needs an odd number to keep quorum"),
                format!("use {} or {} masters (3 for HA)", n - 1, n + 1),
            ),
            _ => {}
        }
        match workers {
            0 => self.warn(
                "hosts",
                "no host has role `worker`: services have nowhere to run",
                "add 4 to 6 hosts with `roles: [worker]`",
            ),
            4..=6 => {}
            n => self.warn(
                "hosts",
                format!("{n} workers: the deployment guide sizes DIGIT for 4 to 6"),
                "this works, but check the capacity against the services you deploy",
            ),
        }
        if self.inv.storage.is_none() && self.inv.hosts_with(Role::Storage).next().is_some() {
            self.warn(
                "hosts",
                "a host has role `storage` but there is no `storage` section",
                "add a `storage:` section (see inventory/sdc-example.yaml), or the host is left alone",
            );
        }
        if self.inv.database.is_none() && self.inv.hosts_with(Role::Database).next().is_some() {
            self.warn(
                "hosts",
                "a host has role `database` but there is no `database` section",
                "add a `database:` section (see inventory/sdc-example.yaml), or the host is left alone",
            );
        }
        if self.inv.registry.is_none() && self.inv.hosts_with(Role::Registry).next().is_some() {
            self.warn(
                "hosts",
                "a host has role `registry` but there is no `registry` section",
                "add a `registry:` section (see inventory/sdc-example.yaml), or the host is left alone",
            );
        }
    }

    fn networks(&mut self) {
        let c = &self.inv.cluster;
        let named: Vec<(&str, Cidr)> = [
            ("cluster.podCIDR", Some(c.pod_cidr)),
            ("cluster.serviceCIDR", Some(c.service_cidr)),
            ("cluster.nodeNetwork", c.node_network),
        ]
        .into_iter()
        .filter_map(|(p, n)| n.map(|n| (p, n)))
        .collect();
        for (i, (pa, a)) in named.iter().enumerate() {
            for (pb, b) in &named[i + 1..] {
                if a.overlaps(b) {
                    self.error(
                        pb,
                        format!("{b} overlaps {pa} ({a})"),
                        "pod, service and node networks must be disjoint; pick a range that overlaps neither",
                    );
                }
            }
        }
        // A network drawn over the hosts' segment would otherwise give one error per host.
        for (pn, net) in &named[..2] {
            let inside: Vec<usize> = (self.inv.hosts.iter().enumerate())
                .filter(|(_, h)| h.address.parse::<IpAddr>().is_ok_and(|ip| net.contains_ip(&ip)))
                .map(|(i, _)| i)
                .collect();
            if let Some(&first) = inside.first() {
                let others = match inside.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} more host(s))"),
                };
                let ip = &self.inv.hosts[first].address;
                self.error(
                    &format!("hosts[{first}].address"),
                    format!("{ip} lies inside {pn} ({net}){others}"),
                    format!("move {pn} to a range that holds no host address"),
                );
            }
        }
        if let Some(node_net) = c.node_network {
            for (i, h) in self.inv.hosts.iter().enumerate() {
                if let Ok(ip) = h.address.parse::<IpAddr>()
                    && !node_net.contains_ip(&ip)
                {
                    self.warn(
                        &format!("hosts[{i}].address"),
                        format!("{ip} is outside cluster.nodeNetwork ({node_net})"),
                        "correct the address or widen nodeNetwork; exports and database access are limited to nodeNetwork",
                    );
                }
            }
        }
        if let Some(addr) = &c.control_plane_endpoint.address
            && let (Ok(ip), Some(node_net)) = (addr.parse::<IpAddr>(), c.node_network)
            && c.control_plane_endpoint.mode == EndpointMode::Vip
            && !node_net.contains_ip(&ip)
        {
            self.error(
                "cluster.controlPlaneEndpoint.address",
                format!("virtual IP {ip} is outside cluster.nodeNetwork ({node_net})"),
                "a keepalived VIP must be on the masters' network",
            );
        }
    }

    fn ssh(&mut self) {
        let d = &self.inv.ssh;
        self.key_file("ssh.keyFile", d.key_file.as_deref());
        self.secret("ssh.keyPassphrase", d.key_passphrase.as_ref());
        self.secret("ssh.sudoPassword", d.sudo_password.as_ref());
        if let Some(kh) = &d.known_hosts
            && !resolve_path(self.base_dir, kh).exists()
        {
            self.warn(
                "ssh.knownHosts",
                format!("{} does not exist yet", kh.display()),
                "groundwork refuses unknown host keys; create it, or run with --accept-new once to record them",
            );
        }
        if let Some(b) = &self.inv.bastion {
            if b.address.trim().is_empty() {
                self.error("bastion.address", "is empty", "write the bastion's address as seen from this machine");
            }
            self.host_ssh("bastion.ssh", &b.ssh);
        }
        for i in 0..self.inv.hosts.len() {
            let o = self.inv.hosts[i].ssh.clone();
            self.host_ssh(&format!("hosts[{i}].ssh"), &o);
        }
    }

    /// Checks one host's effective SSH settings (its override over the defaults).
    fn host_ssh(&mut self, p: &str, o: &SshOverride) {
        let d = &self.inv.ssh;
        self.key_file(&format!("{p}.keyFile"), o.key_file.as_deref());
        self.secret(&format!("{p}.keyPassphrase"), o.key_passphrase.as_ref());
        self.secret(&format!("{p}.sudoPassword"), o.sudo_password.as_ref());
        let has_key = o.key_file.is_some() || d.key_file.is_some();
        let agent = o.use_agent.unwrap_or(d.use_agent);
        if !has_key && !agent {
            self.error(
                p,
                "no way to log in: no key file and no ssh-agent",
                "set `ssh.keyFile` to a private key, or `ssh.useAgent: true` to use the running ssh-agent",
            );
        }
        let user = o.user.as_deref().unwrap_or(&d.user);
        let sudo = o.sudo.unwrap_or(d.sudo);
        if user != "root" && !sudo && !p.starts_with("bastion") {
            self.warn(
                p,
                format!("user `{user}` is not root and sudo is off"),
                "groundwork needs root on every node: set `sudo: true`",
            );
        }
    }

    fn key_file(&mut self, p: &str, file: Option<&Path>) {
        if let Some(f) = file {
            let full = resolve_path(self.base_dir, f);
            if !full.is_file() {
                self.missing_here(p, format!("key file {} does not exist", full.display()), "point it at an existing private key (relative paths start at the inventory's directory), or use `useAgent: true`");
            }
        }
    }

    fn secret(&mut self, p: &str, secret: Option<&SecretRef>) {
        match secret {
            Some(SecretRef::File(f)) => {
                let full = resolve_path(self.base_dir, f);
                if !full.is_file() {
                    self.missing_here(
                        p,
                        format!("secret file {} does not exist", full.display()),
                        "create the file (mode 0600) or reference an environment variable with `{env: NAME}`",
                    );
                }
            }
            Some(SecretRef::Env(name)) if std::env::var_os(name).is_none() => {
                self.warn(
                    p,
                    format!("environment variable {name} is not set here"),
                    format!("export {name} before running groundwork on this machine"),
                );
            }
            _ => {}
        }
    }

    fn packages(&mut self) {
        let pk = &self.inv.packages;
        let url_ok =
            |u: &Option<String>| u.as_deref().is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"));
        match pk.source {
            PackageSource::Proxy if !url_ok(&pk.proxy) => self.error(
                "packages.source",
                "`source: proxy` needs `proxy:` with an http:// or https:// URL",
                "add e.g. `proxy: http://10.0.0.2:3142`",
            ),
            PackageSource::Mirror if !url_ok(&pk.mirror) => self.error(
                "packages.source",
                "`source: mirror` needs `mirror:` with an http:// or https:// URL",
                "add e.g. `mirror: http://mirror.example/debian`",
            ),
            PackageSource::Bundle if pk.bundle.is_none() => self.error(
                "packages.source",
                "`source: bundle` needs `bundle:` with the bundle's directory",
                "add `bundle: path/to/bundle`",
            ),
            _ => {}
        }
        if let Some(key) = &pk.bundle_key {
            if pk.bundle.is_none() {
                self.error(
                    "packages.bundleKey",
                    "a bundle key, but no bundle (`packages.bundle`) for it to check",
                    "name the bundle's directory in `bundle:`, or remove `bundleKey:`",
                );
            }
            let missing = match key {
                crate::inventory::BundleKey::File { file } => {
                    Some(resolve_path(self.base_dir, file)).filter(|path| !path.is_file())
                }
                crate::inventory::BundleKey::Inline(_) => None,
            };
            if let Some(path) = missing {
                self.missing_here(
                    "packages.bundleKey",
                    format!("bundle key file {} does not exist", path.display()),
                    "copy the site's public key (KEY.pub from `groundwork bundle keygen` or `minisign -G`) there; \
                     relative paths start at the inventory's directory",
                );
            } else if let Err(e) = crate::bundle::signature::TrustedKey::read(key, self.base_dir) {
                self.error("packages.bundleKey", e.to_string(), "pin the site's key: `bundleKey: RW...` (the second line of its .pub file) or `bundleKey: {file: KEY.pub}`");
            }
        }
        if pk.bundle.is_some() && pk.bundle_key.is_none() {
            self.warn(
                "packages.bundle",
                "no `bundleKey`: nothing proves who made this bundle, and `apply` refuses it unless \
                 --allow-unsigned-bundle is given",
                "pin the key the bundle is signed with: `bundleKey: {file: KEY.pub}` (`groundwork bundle keygen` \
                 and `groundwork bundle sign` make and use one)",
            );
        }
        if let Some(b) = &pk.bundle {
            let full = resolve_path(self.base_dir, b);
            if !full.is_dir() {
                self.missing_here(
                    "packages.bundle",
                    format!("bundle directory {} does not exist", full.display()),
                    "point it at the unpacked offline bundle (relative paths start at the inventory's directory)",
                );
            }
        }
    }

    /// The host a section runs on: the one it names, else the only host with the role.
    fn section_host(&mut self, section: &str, named: Option<&str>, role: Role) {
        match named {
            Some(name) => match self.inv.hosts.iter().find(|h| h.name == name) {
                None => self.error(
                    &format!("{section}.host"),
                    format!("there is no host named `{name}`"),
                    "name one of the hosts listed under `hosts`",
                ),
                Some(h) if !h.roles.contains(&role) => self.error(
                    &format!("{section}.host"),
                    format!("host `{name}` does not have role `{}`", role.as_str()),
                    format!("add `{}` to its roles", role.as_str()),
                ),
                Some(_) => {}
            },
            None => match self.inv.hosts_with(role).count() {
                0 => self.error(
                    section,
                    format!("no host has role `{}`", role.as_str()),
                    format!("add `{}` to the roles of the host that serves it", role.as_str()),
                ),
                1 => {}
                n => self.error(
                    section,
                    format!("{n} hosts have role `{}`", role.as_str()),
                    format!("say which one with `{section}.host`"),
                ),
            },
        }
    }

    fn storage(&mut self) {
        let Some(s) = &self.inv.storage else { return };
        self.section_host("storage", s.host.as_deref(), Role::Storage);
        if s.backing_store.kind == BackingKind::Lvm && s.backing_store.volume_group.is_none() {
            self.error(
                "storage.backingStore.kind",
                "`kind: lvm` needs `volumeGroup`",
                "add `volumeGroup: NAME` with an existing LVM volume group on the storage host",
            );
        }
        if !s.backing_store.directory.is_absolute() {
            self.error(
                "storage.backingStore.directory",
                "must be an absolute path on the storage host",
                "write e.g. /srv/groundwork",
            );
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, v) in s.volumes.iter().enumerate() {
            let p = format!("storage.volumes[{i}]");
            if !is_dns_label(&v.name) {
                self.error(
                    &format!("{p}.name"),
                    format!("`{}` is not a valid volume name", v.name),
                    "use lower-case letters, digits and `-`",
                );
            }
            if seen.insert(&v.name, i).is_some() {
                self.error(
                    &format!("{p}.name"),
                    format!("volume `{}` is listed twice", v.name),
                    "merge the two entries",
                );
            }
            if v.count > 0 && v.size.bytes() == 0 {
                self.error(&format!("{p}.size"), "size is zero", "give each volume a size, e.g. 50Gi");
            }
        }
        if !s.digit_claims.is_empty() {
            self.digit_claims(s);
        }
        let volumes = s.effective_volumes();
        let uses = |proto| volumes.iter().any(|v| v.protocol == proto);
        if uses(VolumeProtocol::Iscsi) && s.iscsi.chap.is_none() {
            self.warn(
                "storage.iscsi",
                "iSCSI targets without CHAP: any initiator on the allowed list can log in",
                "add `chap: {user: NAME, password: {env: VARIABLE}}`",
            );
        }
        if let Some(chap) = &s.iscsi.chap {
            self.secret("storage.iscsi.chap.password", Some(&chap.password));
        }
        if uses(VolumeProtocol::Nfs) && s.nfs.allowed_network.is_none() && self.inv.cluster.node_network.is_none() {
            self.error(
                "storage.nfs",
                "NFS exports need a network to allow",
                "set `cluster.nodeNetwork` or `storage.nfs.allowedNetwork`",
            );
        }
    }

    /// `storage.volumes` against the claims of DIGIT's charts: every claim gets one volume at
    /// least its size, and no volume is left without a claim.
    fn digit_claims(&mut self, s: &Storage) {
        for claim in &s.digit_claims {
            if claim_size(claim).is_none() {
                self.error(
                    "handoff.digit.source",
                    format!(
                        "DIGIT's release `{}` claims `{}` for {}/{}, which is not a size",
                        claim.release, claim.size, claim.namespace, claim.name
                    ),
                    "fix the size in DIGIT's values (e.g. 8Gi)",
                );
            }
        }
        let wanted = claim_volumes(&s.digit_claims);
        for (i, v) in s.volumes.iter().enumerate() {
            let p = format!("storage.volumes[{i}]");
            match wanted.iter().find(|w| w.name == v.name) {
                Some(w) if v.count != w.count => self.error(
                    &format!("{p}.count"),
                    format!(
                        "DIGIT's charts claim {} `{}` volume(s); {} would leave {}",
                        w.count,
                        v.name,
                        v.count,
                        if v.count > w.count { "a volume without a claim" } else { "a claim without a volume" }
                    ),
                    format!("set `count: {}` (the charts' replicas) or change the replicas in DIGIT's values", w.count),
                ),
                Some(w) if v.size < w.size => self.error(
                    &format!("{p}.size"),
                    format!("`{}` volumes are smaller than DIGIT's claim of {}", v.name, w.size),
                    format!("give them at least {}", w.size),
                ),
                None if v.count > 0 => self.warn(
                    &format!("{p}.name"),
                    format!(
                        "no DIGIT chart claims `{}` volumes: the storage host serves them, but no PersistentVolume is written for them",
                        v.name
                    ),
                    format!(
                        "DIGIT's charts claim: {}",
                        wanted.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ),
                _ => {}
            }
        }
    }

    fn registry(&mut self) {
        let Some(r) = &self.inv.registry else { return };
        self.section_host("registry", r.host.as_deref(), Role::Registry);
        if r.port == 0 {
            self.error("registry.port", "port 0 cannot be listened on", "use a port such as 5000");
        }
        if r.user.is_empty() || r.user.contains(':') || r.user.chars().any(char::is_whitespace) {
            self.error(
                "registry.user",
                format!("`{}` cannot be a registry user name", r.user),
                "use letters, digits, `-` and `_` (no `:` or spaces)",
            );
        }
        let mut seen = HashMap::new();
        for (i, m) in r.mirrors.iter().enumerate() {
            let p = format!("registry.mirrors[{i}]");
            if !is_registry_host(m) {
                self.error(
                    &p,
                    format!("`{m}` is not a registry host name"),
                    "write the registry as images name it, e.g. `docker.io` or `registry.example.org:5000`, without a scheme or path",
                );
            }
            if seen.insert(m.as_str(), i).is_some() {
                self.error(&p, format!("`{m}` is listed twice"), "keep one entry");
            }
        }
    }

    fn database(&mut self) {
        let Some(db) = &self.inv.database else { return };
        self.section_host("database", db.host.as_deref(), Role::Database);
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, d) in db.databases.iter().enumerate() {
            let p = format!("database.databases[{i}]");
            for (field, v) in [("name", &d.name), ("owner", &d.owner)] {
                if !is_sql_identifier(v) {
                    self.error(
                        &format!("{p}.{field}"),
                        format!("`{v}` is not a plain PostgreSQL identifier"),
                        "use lower-case letters, digits and `_`, starting with a letter",
                    );
                }
            }
            if names.insert(&d.name, i).is_some() {
                self.error(&format!("{p}.name"), format!("database `{}` is listed twice", d.name), "keep one entry");
            }
        }
        for (i, u) in db.users.iter().enumerate() {
            let p = format!("database.users[{i}]");
            if !is_sql_identifier(&u.name) {
                self.error(
                    &format!("{p}.name"),
                    format!("`{}` is not a plain PostgreSQL identifier", u.name),
                    "use lower-case letters, digits and `_`, starting with a letter",
                );
            }
            if !names.contains_key(u.database.as_str()) {
                self.error(
                    &format!("{p}.database"),
                    format!("there is no database `{}`", u.database),
                    "name one listed under `database.databases`",
                );
            }
            self.secret(&format!("{p}.password"), u.password.as_ref());
        }
        if let Some(b) = &db.backup {
            if !b.directory.is_absolute() {
                self.error(
                    "database.backup.directory",
                    "must be an absolute path on the database host",
                    "write e.g. /var/backups/groundwork",
                );
            }
            if b.keep == 0 {
                self.error("database.backup.keep", "keeping 0 backups deletes every backup", "keep at least 1");
            }
        }
    }
}

/// The etcd flags groundwork's unit sets (playbooks/templates/etcd.service.tera).
const ETCD_FLAGS_OF_GROUNDWORK: &[&str] = &[
    "name",
    "data-dir",
    "listen-client-urls",
    "advertise-client-urls",
    "listen-peer-urls",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "listen-metrics-urls",
    "client-cert-auth",
    "trusted-ca-file",
    "cert-file",
    "key-file",
    "peer-client-cert-auth",
    "peer-trusted-ca-file",
    "peer-cert-file",
    "peer-key-file",
    "snapshot-count",
];

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

fn is_sql_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_kubernetes_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else { return false };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// A registry as image names spell it: a lower-case DNS name or IP address, with an optional
/// port (`docker.io`, `registry.example.org:5000`), no scheme and no path.
pub fn is_registry_host(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(is_dns_label("digit-sdc"));
        assert!(!is_dns_label("Digit"));
        assert!(!is_dns_label("-x"));
        assert!(is_hostname("master-1.sdc.example"));
        assert!(!is_hostname("master_1"));
        assert!(is_sql_identifier("egov_app"));
        assert!(!is_sql_identifier("egov-app"));
        assert!(is_kubernetes_version("v1.33.3"));
        assert!(!is_kubernetes_version("1.33"));
    }
}
