//! init, join-masters, join-workers: kubeadm, from configuration files groundwork renders
//! (v1beta4, validated by `kubeadm config validate` before use). The bootstrap token and the
//! discovery hash are the controller's; the token lives in files of mode 0600 and never on a
//! command line or in a log.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::{Change, Cluster, Node, StepError};
use crate::pki::BootstrapToken;
use crate::playbooks;

const CONFIG_DIR: &str = "/etc/kubernetes/groundwork";
/// The first master's init configuration (0600: it holds the bootstrap token).
const INIT_CONFIG: &str = "/etc/kubernetes/groundwork/kubeadm-init.yaml";
/// Every master's configuration for `kubeadm init phase control-plane` (no token in it).
const CONTROL_PLANE_CONFIG: &str = "/etc/kubernetes/groundwork/kubeadm-control-plane.yaml";
const APISERVER_MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// kubectl on a master as the cluster's admin (its own admin.conf, [`ADMIN_CONF`]).
pub const ADMIN_KUBECTL: &str = "/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf";
const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

/// kubeadm starts the kubelet but does not enable it: without this a rebooted node stays out.
fn kubelet_enabled() -> Task {
    Task::Service { name: "kubelet".into(), enabled: true, running: true, restart: false }
}

fn config_file(path: String, content: String) -> Task {
    super::node::file(&path, content, 0o600)
}

async fn token(cluster: &Cluster) -> Result<BootstrapToken, StepError> {
    let (token, _) =
        BootstrapToken::load_or_create(&cluster.state.pki_dir()).map_err(|e| StepError::new(e.to_string()))?;
    Ok(token)
}

/// kubeadm phases to skip: CoreDNS when the bundle carries no CoreDNS image (it cannot be
/// built offline for the lab); a real site's bundle or registry has it.
pub(super) async fn skip_phases(cluster: &Cluster) -> Result<Vec<&'static str>, StepError> {
    let bundle = super::bundle::bundle(cluster).await?;
    let has_coredns = bundle.images().iter().any(|i| i.contains("coredns"));
    Ok(if has_coredns { vec![] } else { vec!["addon/coredns"] })
}

/// What kubeadm-init.yaml is rendered from for `node`: the cluster's configuration with this
/// master's own address. The bootstrap token only where it is needed (init, on the first master).
async fn control_plane_values(
    cluster: &Cluster,
    node: &Node,
    phase: &str,
    token: Option<&BootstrapToken>,
) -> Result<serde_json::Value, StepError> {
    let c = &cluster.inventory.cluster;
    let masters = cluster.masters();
    let mut sans: Vec<String> = vec!["127.0.0.1".into(), "localhost".into()];
    for m in &masters {
        sans.push(m.address.clone());
        sans.push(m.name.clone());
    }
    if let Some(a) = &c.control_plane_endpoint.address {
        sans.push(a.clone());
    }
    let etcd_endpoints: Vec<String> = masters.iter().map(|m| format!("https://{}:2379", m.address)).collect();
    Ok(serde_json::json!({
        "phase": phase,
        "token": token.map(|t| t.expose_secret().to_string()),
        "address": node.address(),
        "name": node.name(),
        "api_port": cluster.api_port(),
        "skip_phases": skip_phases(cluster).await?,
        "cluster": c.name,
        "kubernetes_version": c.kubernetes_version,
        "endpoint": cluster.endpoint(),
        "pod_cidr": c.pod_cidr.0.to_string(),
        "service_cidr": c.service_cidr.0.to_string(),
        "cert_sans": sans,
        "api_server_args": c.api_server.extra_args,
        "external_etcd": cluster.external_etcd(),
        "etcd_endpoints": etcd_endpoints,
        "cgroup_driver": super::runtime::cgroup_driver(node),
        "kubelet": c.kubelet,
        "takes_workloads": cluster.takes_workloads(node.name()),
    }))
}

pub fn init<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let c = &cluster.inventory.cluster;
        super::identity::ensure(cluster).await?;
        if node.dry_run() && !cluster.state.pki_dir().join("ca.crt").exists() {
            return Ok(vec![Change::new(format!("kubeadm init (Kubernetes {})", c.kubernetes_version))]);
        }
        let token = token(cluster).await?;
        let config =
            playbooks::render("kubeadm-init.yaml", &control_plane_values(cluster, node, "init", Some(&token)).await?)?;
        let file = INIT_CONFIG.to_string();
        let mut changes = node.ensure_all(vec![config_file(file.clone(), config)]).await?;
        if node.test(&format!("test -s {ADMIN_CONF}")).await? {
            changes.extend(node.ensure_all(vec![kubelet_enabled()]).await?);
            if !node.dry_run() {
                fetch_admin_kubeconfig(cluster, node).await?;
            }
            return Ok(changes);
        }
        if node.dry_run() {
            changes.push(Change::new(format!(
                "kubeadm init (Kubernetes {}, endpoint {})",
                c.kubernetes_version,
                cluster.endpoint()
            )));
            return Ok(changes);
        }
        node.sh("kubeadm config validate", &format!("/usr/local/bin/kubeadm config validate --config {file}")).await?;
        node.sh("kubeadm init", &format!("/usr/local/bin/kubeadm init --config {file}")).await?;
        changes.push(Change::new(format!("kubeadm init: control plane up on {}", node.name())));
        node.ensure_all(vec![kubelet_enabled()]).await?;
        fetch_admin_kubeconfig(cluster, node).await?;
        Ok(changes)
    }
    .boxed()
}

/// The kubeadm configuration files groundwork keeps on a master (the first master's
/// kubeadm-init.yaml, every master's kubeadm-control-plane.yaml), rendered for the inventory as it
/// is now: what an upgrade leaves behind, so the next apply finds them current.
pub(super) async fn refresh_configs(cluster: &Cluster, node: &Node) -> Result<Vec<Change>, StepError> {
    let mut files = Vec::new();
    if cluster.first_master().is_some_and(|m| m.name == node.name()) {
        let token = token(cluster).await?;
        let values = control_plane_values(cluster, node, "init", Some(&token)).await?;
        files.push(config_file(INIT_CONFIG.into(), playbooks::render("kubeadm-init.yaml", &values)?));
    }
    let values = control_plane_values(cluster, node, "apiserver", None).await?;
    files.push(config_file(CONTROL_PLANE_CONFIG.into(), playbooks::render("kubeadm-init.yaml", &values)?));
    node.ensure_all(files).await
}

/// The admin kubeconfig, kept by the controller (0600) for the operator and the handoff. Made
/// here from the controller's own PKI (its admin client certificate and the cluster CA), never
/// copied from a master: a master's admin.conf could name an exec plugin the operator's kubectl
/// would run.
async fn fetch_admin_kubeconfig(cluster: &Cluster, _node: &Node) -> Result<(), StepError> {
    let pki = cluster.pki().await?;
    write_admin_kubeconfig(&cluster.state, &cluster.inventory, &pki)
}

/// Writes `admin.conf` (0600) from `pki` for the inventory's endpoint, unless it already says that.
pub fn write_admin_kubeconfig(
    state: &crate::state::StateDir,
    inventory: &crate::inventory::Inventory,
    pki: &crate::pki::ClusterPki,
) -> Result<(), StepError> {
    let text = pki
        .admin_kubeconfig(&inventory.cluster.name, &format!("https://{}", super::endpoint_of(inventory)))
        .map_err(|e| StepError::new(e.to_string()))?;
    let path = state.kubeconfig_file();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        crate::state::write_atomic(&path, text.as_bytes(), 0o600)
            .map_err(|e| StepError::new(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The bootstrap token must exist in the cluster before a join: kubeadm init made it, but it
/// expires after 24 h, so a later run (adding a worker, say) creates it again from the first master.
async fn ensure_token_in_cluster(cluster: &Cluster, token: &BootstrapToken) -> Result<(), StepError> {
    let first = cluster.first_master().ok_or_else(|| StepError::new("no master in the inventory"))?;
    let master = cluster.node(&first.name)?;
    let list = master
        .sh("kubeadm token list", &format!("/usr/local/bin/kubeadm token list --kubeconfig {ADMIN_CONF}"))
        .await?;
    if list.lines().any(|l| l.trim().starts_with(&format!("{}.", token.id()))) {
        return Ok(());
    }
    // kubeadm takes the token from init's configuration file (0600), which holds the controller's
    // token: never on a command line, where /proc would show it to every user of the master.
    let id = token.id();
    let cmd = format!(
        "grep -q 'token: \"{id}\\.' {INIT_CONFIG} || {{ echo '{INIT_CONFIG} does not hold the bootstrap token {id}: run apply with phase init' >&2; exit 1; }}; \
         /usr/local/bin/kubeadm token create --config {INIT_CONFIG} --kubeconfig {ADMIN_CONF} >/dev/null"
    );
    let out = master.session.exec_privileged(&cmd, None).await?;
    if !out.success() {
        return Err(StepError::new(format!(
            "{}: could not renew the bootstrap token: {}",
            master.name(),
            super::node::tail(&out.stderr_text(), 3)
        )));
    }
    Ok(())
}

async fn join(cluster: &Cluster, node: &Node, control_plane: bool) -> Result<Vec<Change>, StepError> {
    let phase = if control_plane { "join-masters" } else { "join-workers" };
    let pki = cluster.pki().await;
    let pki = match pki {
        Ok(p) => p,
        Err(e) if node.dry_run() => return Ok(vec![Change::new(format!("kubeadm join (after: {e})"))]),
        Err(e) => return Err(e),
    };
    let first = cluster.first_master().ok_or_else(|| StepError::new("no master in the inventory"))?;
    // A joining master has no API server of its own yet: it discovers through the first one.
    // Workers use the endpoint (their local load balancer, or the operator's).
    let discovery =
        if control_plane { format!("{}:{}", first.address, cluster.api_port()) } else { cluster.endpoint() };
    let token = token(cluster).await?;
    let config = playbooks::render(
        "kubeadm-join.yaml",
        &serde_json::json!({
            "phase": phase,
            "discovery_endpoint": discovery,
            "token": token.expose_secret(),
            "ca_cert_hash": pki.discovery_hash(),
            "name": node.name(),
            "address": node.address(),
            "control_plane": control_plane,
            "takes_workloads": control_plane && cluster.takes_workloads(node.name()),
            "api_port": cluster.api_port(),
        }),
    )?;
    let file = format!("{CONFIG_DIR}/kubeadm-join.yaml");
    let mut changes = node.ensure_all(vec![config_file(file.clone(), config)]).await?;
    if node.test(&format!("test -s {KUBELET_CONF}")).await? {
        changes.extend(node.ensure_all(vec![kubelet_enabled()]).await?);
        return Ok(changes);
    }
    if node.dry_run() {
        changes.push(Change::new(format!("kubeadm join{}", if control_plane { " --control-plane" } else { "" })));
        return Ok(changes);
    }
    ensure_token_in_cluster(cluster, &token).await?;
    node.sh("kubeadm config validate", &format!("/usr/local/bin/kubeadm config validate --config {file}")).await?;
    node.sh("kubeadm join", &format!("/usr/local/bin/kubeadm join --config {file}")).await?;
    node.ensure_all(vec![kubelet_enabled()]).await?;
    changes.push(Change::new(format!("kubeadm join{}", if control_plane { " --control-plane" } else { "" })));
    Ok(changes)
}

pub fn join_master<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    join(cluster, node, true).boxed()
}

pub fn join_worker<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    join(cluster, node, false).boxed()
}

/// apiserver: every master's API server with the inventory's settings. kubeadm init writes them
/// once; a later change is applied here: each master renders its control-plane configuration, and
/// where it differs (or the running manifest lacks a wanted flag) regenerates its API server's
/// static pod with `kubeadm init phase control-plane apiserver`, one master at a time, each ready
/// again (its own /readyz) before the next. The first master then stores the configuration in the
/// cluster (kubeadm-config), so that a master joined later gets the same settings.
pub fn api_server_settings<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        // Not a control-plane node (yet): init or join makes it one, with these settings.
        if !node.test(&format!("test -s {APISERVER_MANIFEST}")).await? {
            return Ok(vec![]);
        }
        let values = control_plane_values(cluster, node, "apiserver", None).await?;
        let config = playbooks::render("kubeadm-init.yaml", &values)?;
        let mut changes = node.ensure_all(vec![config_file(CONTROL_PLANE_CONFIG.into(), config)]).await?;
        let args = &cluster.inventory.cluster.api_server.extra_args;
        let present =
            args.iter().map(|(k, v)| format!("grep -qxF -e '    - --{k}={v}' {APISERVER_MANIFEST}")).collect::<Vec<_>>();
        if changes.is_empty() && (present.is_empty() || node.test(&present.join(" && ")).await?) {
            return Ok(changes);
        }
        if node.dry_run() {
            changes.push(Change::new("would regenerate the API server's static pod (settings changed), one master at a time"));
            return Ok(changes);
        }
        let turn = cluster.rolling_turn("apiserver", node).await?;
        let before = manifest_digest(node).await?;
        let old_pid = node.sh("finding the API server", "pgrep -xo kube-apiserver || true").await?;
        let outcome = async {
            node.sh(
                "kubeadm init phase control-plane apiserver",
                &format!("/usr/local/bin/kubeadm init phase control-plane apiserver --config {CONTROL_PLANE_CONFIG}"),
            )
            .await?;
            if manifest_digest(node).await? == before {
                return Ok(false);
            }
            wait_api_server_restarted(cluster, node, old_pid.trim()).await?;
            Ok(true)
        }
        .await;
        match outcome {
            Ok(false) => drop(turn),
            Ok(true) => changes.push(turn.finish("regenerated the API server's static pod", Ok(()))?),
            Err(e) => {
                turn.finish("regenerating the API server's static pod", Err(e))?;
            }
        }
        if cluster.first_master().is_some_and(|m| m.name == node.name()) {
            node.sh(
                "kubeadm init phase upload-config kubeadm",
                &format!(
                    "/usr/local/bin/kubeadm init phase upload-config kubeadm --config {CONTROL_PLANE_CONFIG} --kubeconfig {ADMIN_CONF}"
                ),
            )
            .await?;
        }
        Ok(changes)
    }
    .boxed()
}

async fn manifest_digest(node: &Node) -> Result<String, StepError> {
    node.sh("reading the API server's manifest", &format!("sha256sum {APISERVER_MANIFEST}")).await
}

/// The kubelet replaced the API server process `old` with a new one, and the new one is ready: asked of this
/// master's own API server, not through a load balancer that might answer from another master.
async fn wait_api_server_restarted(cluster: &Cluster, node: &Node, old: &str) -> Result<(), StepError> {
    let replaced = if old.is_empty() { "true".to_string() } else { format!("! kill -0 {old} 2>/dev/null") };
    let ready = format!(
        "{replaced} && /usr/local/bin/kubectl --kubeconfig {ADMIN_CONF} --server https://127.0.0.1:{} \
         --request-timeout=3s get --raw /readyz",
        cluster.api_port()
    );
    super::rolling::wait_until(
        node,
        "the API server restarted with the new settings and ready",
        std::time::Duration::from_secs(180),
        std::time::Duration::from_millis(500),
        &ready,
    )
    .await
}
