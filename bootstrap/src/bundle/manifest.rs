//! `manifest.json`: what an offline bundle holds, one entry per artifact file.
//!
//! ```json
//! {"format": 1, "name": "kubernetes-v1.33.3-amd64-lab", "kubernetesVersion": "v1.33.3", "recipe": "…",
//!  "artifacts": [
//!   {"name": "kubeadm", "kind": "binary", "path": "bin/kubeadm", "sha256": "…", "size": 74584248,
//!    "version": "v1.33.3", "installTo": "/usr/local/bin/kubeadm"},
//!   {"name": "kubernetes-images", "kind": "images", "path": "images/kubernetes-images.tar",
//!    "sha256": "…", "size": 410316288, "images": ["registry.k8s.io/kube-apiserver:v1.33.3", …]}]}
//! ```
//!
//! Fields this version does not know are ignored, so that a newer builder can add information
//! without breaking older controllers; anything that changes the meaning of a field bumps `format`.

use serde::{Deserialize, Serialize};

/// The manifest format this controller reads.
pub const FORMAT: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u64,
    /// The bundle's name, for people (e.g. `kubernetes-v1.33.3-amd64-lab`).
    pub name: String,
    /// The Kubernetes version the bundle's binaries and images are, e.g. `v1.33.3`.
    pub kubernetes_version: String,
    /// A hash of what the bundle was built from, when the builder records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Unique within the bundle: `kubeadm`, `etcd`, `kubernetes-images`.
    pub name: String,
    pub kind: ArtifactKind,
    /// Relative to the bundle directory, `/`-separated, never leaving it.
    pub path: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where on a node the file goes (binaries): an absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_to: Option<String>,
    /// The image references an `images` tarball holds, as `ctr images import` will name them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// The node roles that need it (`master`, `worker`); empty: every Kubernetes node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Where the file came from, for people (an archive, a Debian package and version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Artifact {
    /// Whether a node with these roles needs this artifact.
    pub fn is_for<'a>(&self, mut node_roles: impl Iterator<Item = &'a str>) -> bool {
        self.roles.is_empty() || node_roles.any(|r| self.roles.iter().any(|n| n == r))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// An executable copied to `installTo` on the nodes.
    Binary,
    /// A Debian package installed with dpkg on the nodes.
    Deb,
    /// A `docker save` / OCI tarball of container images, imported into containerd on the nodes.
    Images,
    /// An index file of the bundle's apt repository (`Packages`, `Release`, its signature, the
    /// key apt checks it with), uploaded with the packages.
    #[serde(rename = "apt-index")]
    AptIndex,
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArtifactKind::Binary => "binary",
            ArtifactKind::Deb => "deb",
            ArtifactKind::Images => "images",
            ArtifactKind::AptIndex => "apt-index",
        })
    }
}
