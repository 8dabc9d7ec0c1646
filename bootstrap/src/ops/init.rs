//! `groundwork init`: a first inventory from a few answers (the bastion, the masters', workers',
//! storage and database hosts' addresses, the SSH user and key), written with comments that say
//! what each part is and what to change next. It is checked with the same loader `validate` uses
//! before anything is written, and an existing file is never replaced.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::inventory::{self, LoadError, LocalFiles};

#[derive(Debug, Clone, Default)]
pub struct InitSpec {
    /// The cluster's name (lower-case letters, digits, `-`).
    pub name: String,
    /// The bastion as this machine reaches it: `ADDRESS` or `ADDRESS:PORT`; None to reach hosts directly.
    pub bastion: Option<String>,
    pub masters: Vec<String>,
    pub workers: Vec<String>,
    pub storage: Option<String>,
    pub database: Option<String>,
    /// The SSH user (sudo is used when it is not root).
    pub user: String,
    /// The SSH private key (None: ~/.ssh/id_ed25519).
    pub key: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists; groundwork init never replaces a file (choose another name, or remove it first)")]
    Exists(PathBuf),
    #[error("{what}: {why}")]
    Bad { what: String, why: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// The text made does not validate: a bug in `init`, or answers `validate` refuses.
    #[error("the inventory made from these answers does not validate:\n{0}")]
    Invalid(String),
}

/// The inventory text for `spec`, checked as `validate` checks a file at `path`.
pub fn render(spec: &InitSpec, path: &Path) -> Result<String, InitError> {
    let bad = |what: &str, why: String| InitError::Bad { what: what.into(), why };
    if spec.masters.is_empty() {
        return Err(bad(
            "--masters",
            "name at least one master's address (3 for a highly available control plane)".into(),
        ));
    }
    if spec.workers.is_empty() {
        return Err(bad(
            "--workers",
            "name at least one worker's address (the deployment guide sizes DIGIT for 4 to 6)".into(),
        ));
    }
    for a in spec.masters.iter().chain(&spec.workers).chain(spec.storage.iter()).chain(spec.database.iter()) {
        if a.is_empty() || a.contains(char::is_whitespace) || a.contains(',') {
            return Err(bad("address", format!("`{a}` is not an address")));
        }
    }
    let mut t = String::new();
    let w = &mut t;
    let _ = writeln!(
        w,
        "# A groundwork inventory written by `groundwork init`. Check it with\n\
         #   groundwork validate -i {file}\n\
         # then see what apply would do with `groundwork plan -i {file}`. Relative paths start at this\n\
         # file's directory; secrets are never written here ({{env: NAME}} or {{file: PATH}}).\n\
         apiVersion: groundwork/v1alpha1\nkind: Cluster\n\ncluster:\n  name: {name}\n  kubernetesVersion: v1.33.3",
        file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        name = spec.name,
    );
    match node_network(spec) {
        Some(net) => {
            let _ = writeln!(w, "  nodeNetwork: {net}              # guessed from the addresses below: check it");
        }
        None => {
            let _ =
                writeln!(w, "  # nodeNetwork: 172.16.10.0/24   # the hosts' segment; NFS and PostgreSQL admit only it");
        }
    }
    let _ = writeln!(
        w,
        "  controlPlaneEndpoint:\n    mode: localProxy                # localProxy | vip (keepalived, add `address:`) | external\n  \
         cni: bridge                       # bridge (offline, routed) | calico | flannel (with cniManifest)\n"
    );
    let key = spec.key.as_deref().map(|k| k.display().to_string()).unwrap_or_else(|| "~/.ssh/id_ed25519".into());
    let _ = writeln!(w, "ssh:\n  user: {}\n  keyFile: {key}", spec.user);
    if spec.user != "root" {
        let _ = writeln!(
            w,
            "  sudo: true                        # {} is not root: every command goes through sudo\n  \
             # sudoPassword: {{env: GW_SUDO_PASSWORD}}   # when sudo asks for one",
            spec.user
        );
    }
    let _ = writeln!(
        w,
        "  knownHosts: known_hosts           # unknown host keys are refused; `--accept-new` records them once"
    );
    if let Some(b) = &spec.bastion {
        let (address, port) = match b.rsplit_once(':') {
            Some((a, p)) if p.parse::<u16>().is_ok() && !a.contains(':') => (a, p.parse::<u16>().unwrap_or(22)),
            _ => (b.as_str(), 22),
        };
        let _ = writeln!(
            w,
            "\nbastion:                            # every host is reached through it\n  address: {address}\n  port: {port}"
        );
    }
    let _ = writeln!(w, "\nhosts:");
    let mut host = |name: String, address: &str, role: &str| {
        let _ = writeln!(w, "  - {{name: {name}, address: {address}, roles: [{role}]}}");
    };
    for (i, a) in spec.masters.iter().enumerate() {
        host(format!("master-{}", i + 1), a, "master");
    }
    for (i, a) in spec.workers.iter().enumerate() {
        host(format!("worker-{}", i + 1), a, "worker");
    }
    if let Some(a) = &spec.storage {
        host("storage-1".into(), a, "storage");
    }
    if let Some(a) = &spec.database {
        host("database-1".into(), a, "database");
    }
    let _ = writeln!(
        w,
        "\n# Packages come from the nodes' own repositories. For an air-gapped site, point at a signed\n\
         # offline bundle (`groundwork bundle build ... --os debian-12 --key KEY`):\n\
         packages:\n  source: online                    # online | proxy (+ proxy: URL) | mirror (+ mirror: URL) | bundle\n  \
         # bundle: bundles/kubernetes-v1.33.3-amd64\n  # bundleKey: {{file: keys/bundle-key.pub}}"
    );
    if spec.storage.is_some() {
        let _ = writeln!(
            w,
            "\n# NFS and iSCSI volumes for the stateful backbone (Kafka, Elasticsearch, ...).\n\
             storage:\n  profile: dev                      # dev | prod (DIGIT's SDC sizes)\n  \
             backingStore: {{kind: file, directory: /srv/groundwork}}   # or kind: lvm, volumeGroup: NAME"
        );
    }
    if spec.database.is_some() {
        let _ = writeln!(
            w,
            "\n# PostgreSQL outside the cluster; passwords are generated and kept in the state unless given.\n\
             database:\n  postgresql: {{version: 15}}\n  databases:\n    - {{name: egov, owner: egov_owner}}\n  \
             users:\n    - {{name: egov_app, database: egov, access: readwrite}}"
        );
    }
    let _ = writeln!(
        w,
        "\n# What the service deployer gets when the cluster is ready (kubeconfig, manifests, NEXT-STEPS.md).\n\
         handoff:\n  directory: handoff\n  namespace: egov"
    );
    match inventory::load_str_checking(path, t.clone(), LocalFiles::Reported) {
        Ok(_) => Ok(t),
        Err(LoadError::Invalid { diagnostics, source_text, .. }) => Err(InitError::Invalid(
            diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render(&source_text)).collect::<Vec<_>>().join("\n"),
        )),
        Err(e) => Err(InitError::Invalid(e.to_string())),
    }
}

/// Writes `text` to `path`, which must not exist (created exclusively: a file that appears
/// meanwhile is not replaced either).
pub fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    use std::io::Write;
    let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(InitError::Exists(path.to_path_buf())),
        Err(source) => return Err(InitError::Write { path: path.to_path_buf(), source }),
    };
    f.write_all(text.as_bytes()).map_err(|source| InitError::Write { path: path.to_path_buf(), source })
}

/// The /24 every host address is in, when they are all IPv4 addresses of one /24.
fn node_network(spec: &InitSpec) -> Option<String> {
    let all: Vec<Ipv4Addr> = spec
        .masters
        .iter()
        .chain(&spec.workers)
        .chain(spec.storage.iter())
        .chain(spec.database.iter())
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    let first = all.first()?.octets();
    all.iter().all(|a| a.octets()[..3] == first[..3]).then(|| format!("{}.{}.{}.0/24", first[0], first[1], first[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InitSpec {
        InitSpec {
            name: "site".into(),
            bastion: Some("bastion.example.org:2222".into()),
            masters: ["10.1.2.11", "10.1.2.12", "10.1.2.13"].map(String::from).to_vec(),
            workers: ["10.1.2.21", "10.1.2.22", "10.1.2.23", "10.1.2.24"].map(String::from).to_vec(),
            storage: Some("10.1.2.31".into()),
            database: Some("10.1.2.41".into()),
            user: "deploy".into(),
            key: Some("keys/id_ed25519".into()),
        }
    }

    #[test]
    fn answers_become_an_inventory_that_loads_with_every_host_and_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yaml");
        let text = render(&spec(), &path).unwrap();
        assert!(text.contains("nodeNetwork: 10.1.2.0/24"), "{text}");
        assert!(text.contains("sudo: true"), "{text}");
        assert!(text.contains("port: 2222"), "{text}");
        let loaded = inventory::load_str_checking(&path, text, LocalFiles::Reported).unwrap();
        let inv = loaded.inventory;
        assert_eq!(inv.hosts.len(), 9);
        assert_eq!(inv.hosts[8].name, "database-1");
        assert!(inv.storage.is_some() && inv.database.is_some());
        assert_eq!(inv.ssh.user, "deploy");
    }

    #[test]
    fn missing_answers_and_existing_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yaml");
        let err = render(&InitSpec { masters: vec![], ..spec() }, &path).unwrap_err().to_string();
        assert!(err.starts_with("--masters:"), "{err}");
        let err = render(&InitSpec { name: "Bad Name".into(), ..spec() }, &path).unwrap_err().to_string();
        assert!(err.contains("does not validate") && err.contains("cluster.name"), "{err}");
        std::fs::write(&path, "mine").unwrap();
        let err = write_new(&path, "new").unwrap_err().to_string();
        assert!(err.contains("never replaces"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }
}
