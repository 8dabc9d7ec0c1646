//! `groundwork images push --from DIR`: every image tarball in DIR (`docker save` archives and OCI
//! image layouts, gzip-compressed or not) into the site registry, through the bastion and an SSH
//! tunnel to the registry host, under the names the tarballs carry. Blobs the registry already
//! holds are not sent again, so pushing a directory twice sends only manifests the second time.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inventory::LoadedInventory;
use crate::registry::archive::{self, ArchiveError};
use crate::registry::client::{self, Pushed, RegistryClient, RegistryError};
use crate::registry::{self as site_registry};
use crate::state::StateDir;
use crate::transport::{Transport, TransportError, TransportOptions, target};

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(
        "the inventory has no `registry` section with a registry host; add one (see inventory/sdc-example.yaml) and run `groundwork apply`"
    )]
    NoRegistry,
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} holds no image tarball (*.tar, *.tar.gz, *.tgz)", .0.display())]
    Empty(PathBuf),
    #[error("the cluster CA {}: {source} (run `groundwork apply` first: it makes the registry's certificate)", path.display())]
    NoCa { path: PathBuf, source: std::io::Error },
    #[error("registry password: {0}")]
    Password(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{host}: {source}")]
    Transport { host: String, source: TransportError },
    #[error("{image}: {source}")]
    Push { image: String, source: RegistryError },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// What `images push` did, per tarball and name.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PushReport {
    /// The registry's address as nodes reach it.
    pub registry: String,
    pub images: Vec<PushedImage>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PushedImage {
    pub tarball: PathBuf,
    #[serde(flatten)]
    pub pushed: Pushed,
}

/// The tarballs in `dir`, sorted by name.
pub fn tarballs(dir: &Path) -> Result<Vec<PathBuf>, ImagesError> {
    let read = |source| ImagesError::Read { path: dir.to_path_buf(), source };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_file() && [".tar", ".tar.gz", ".tgz"].iter().any(|e| name.ends_with(e)) {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(ImagesError::Empty(dir.to_path_buf()));
    }
    Ok(found)
}

/// Pushes every image of every tarball in `dir`; `each` is told of every image as it lands.
pub async fn push(
    loaded: &LoadedInventory,
    opts: TransportOptions,
    dir: &Path,
    mut each: impl FnMut(&PushedImage),
) -> Result<PushReport, ImagesError> {
    let (host, settings) = site_registry::site(&loaded.inventory).ok_or(ImagesError::NoRegistry)?;
    let files = tarballs(dir)?;
    let state = StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name);
    let ca_path = state.pki_dir().join("ca.crt");
    let ca = std::fs::read_to_string(&ca_path).map_err(|source| ImagesError::NoCa { path: ca_path, source })?;
    let password = site_registry::password(settings, &loaded.base_dir, &state).map_err(ImagesError::Password)?;
    let client = RegistryClient::new(
        &ca,
        &host.address,
        settings.port,
        Some(site_registry::basic_auth(&settings.user, password.expose())),
    )?;
    let address = site_registry::address(host, settings);

    let t = target::hosts(loaded).into_iter().find(|t| t.name == host.name).ok_or(ImagesError::NoRegistry)?;
    let transport = Transport::connect(target::bastion(loaded).as_ref(), std::slice::from_ref(&t), opts)
        .await
        .map_err(|source| ImagesError::Transport { host: "bastion".into(), source })?;
    let session =
        transport.open(&t).await.map_err(|source| ImagesError::Transport { host: host.name.clone(), source })?;
    client.ping(&session).await?;

    // Unpacked next to the tarballs: the same disk, which has room for them.
    let mut report = PushReport { registry: address.clone(), images: Vec::new() };
    for file in files {
        let unpacked = archive::open(&file, dir)?;
        for image in &unpacked.images {
            for name in &image.names {
                let pushed = client::push(&client, &session, image, name, &address)
                    .await
                    .map_err(|source| ImagesError::Push { image: name.to_string(), source })?;
                let pushed = PushedImage { tarball: file.clone(), pushed };
                each(&pushed);
                report.images.push(pushed);
            }
        }
    }
    transport.close().await;
    Ok(report)
}
