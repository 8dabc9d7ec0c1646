//! registry: the site's container registry on its host. Debian's `docker-registry` (the CNCF
//! distribution registry) from the package source, listening on the host's internal address
//! with TLS (a server certificate the cluster CA signs, which every node trusts) and HTTP basic
//! authentication for every request (an htpasswd line kept in the state). Then the controller
//! asks it through the SSH tunnel, with the credentials: that proves the service, the
//! certificate and the password together.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::registry::{self, client::RegistryClient, htpasswd};

pub const NAME: &str = "registry";
const DIR: &str = "/etc/docker/registry";
const SERVICE: &str = "docker-registry";
/// The package's system user; the service runs as it, so its key and htpasswd are its own (0600).
const USER: &str = "docker-registry";
/// How long the registry may take to answer after a (re)start.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let Some((host, settings)) = registry::site(&cluster.inventory) else { return Ok(vec![]) };
        let names = crate::os_packages::owned(&[crate::os_packages::REGISTRY]);
        let mut changes = super::package_repository::install(cluster, node, names).await?;
        if node.dry_run() && !changes.is_empty() {
            // Its user and directories come with the package: nothing to compare with yet.
            changes.push(Change::new(format!(
                "configure the registry on {} with TLS and credentials",
                registry::address(host, settings)
            )));
            return Ok(changes);
        }
        let pki = match cluster.pki().await {
            Ok(p) => p,
            Err(e) if cluster.dry_run => return Ok(vec![Change::new(e.0)]),
            Err(e) => return Err(e),
        };
        let server = pki
            .registry_server()
            .ok_or_else(|| StepError::new("the cluster PKI holds no registry certificate (no registry in its spec)"))?;
        let Some(password) = password_of(cluster, settings)? else {
            changes.push(Change::new("generate the registry's password and configure the registry with it"));
            return Ok(changes);
        };
        let line = htpasswd::line(&cluster.state, &settings.user, &password, cluster.dry_run)
            .map_err(|e| StepError::new(e.to_string()))?;
        let config = crate::playbooks::render(
            "registry-config.yml",
            &serde_json::json!({"listen": registry::address(host, settings), "dir": DIR}),
        )?;
        let own = |path: &str, content: String| Task::File {
            path: path.into(),
            content,
            mode: 0o600,
            owner: USER.into(),
            group: USER.into(),
        };
        let files = vec![
            file(&format!("{DIR}/config.yml"), config, 0o644),
            file(&format!("{DIR}/tls.crt"), server.cert_pem().to_string(), 0o644),
            own(&format!("{DIR}/tls.key"), server.key().expose_secret().to_string()),
            own(&format!("{DIR}/htpasswd"), format!("{line}\n")),
        ];
        changes.extend(node.ensure_service_with(SERVICE, files).await?);
        if node.dry_run() {
            return Ok(changes);
        }
        let client = RegistryClient::new(
            pki.ca_cert_pem(),
            &host.address,
            settings.port,
            Some(registry::basic_auth(&settings.user, password.expose())),
        )
        .map_err(|e| StepError::new(e.to_string()))?;
        let started = std::time::Instant::now();
        loop {
            match client.ping(&node.session).await {
                Ok(()) => break,
                Err(e) if started.elapsed() > READY_WITHIN => {
                    return Err(StepError::new(format!(
                        "the registry does not answer within {} s: {e} (journalctl -u {SERVICE} on {})",
                        READY_WITHIN.as_secs(),
                        node.name()
                    )));
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            }
        }
        Ok(changes)
    }
    .boxed()
}

/// The registry's password; in a dry run None when it would be generated (nothing is written).
pub fn password_of(
    cluster: &Cluster,
    settings: &crate::inventory::Registry,
) -> Result<Option<crate::secrets::Secret>, StepError> {
    if cluster.dry_run {
        registry::existing_password(settings, &cluster.base_dir, &cluster.state).map_err(StepError::new)
    } else {
        registry::password(settings, &cluster.base_dir, &cluster.state).map(Some).map_err(StepError::new)
    }
}
