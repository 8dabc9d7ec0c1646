//! The site's container registry: which host serves it and how (`site`, `address`), its password
//! and the htpasswd line made from it (`htpasswd`), how containerd on the nodes is told to pull
//! through it (`hosts_toml`), image names (`reference`), the tarballs operators bring
//! (`archive`) and the push over an SSH tunnel (`client`).
//!
//! One registry mirrors several upstreams: an image is kept under its upstream as the first part
//! of its repository (`docker.io/library/nginx`), so `docker.io/x` and `quay.io/x` never collide,
//! and containerd asks for exactly that path (`override_path`).

pub mod archive;
pub mod client;
pub mod htpasswd;
pub mod reference;

use std::path::Path;

use base64::Engine;

use crate::inventory::model::{Host, Inventory, Registry, Role};
use crate::secrets::{self, Secret};
use crate::state::StateDir;
use crate::state::secrets_store::{self, Generated};

/// Where the password is kept when the inventory names none.
pub const GENERATED_PASSWORD: &str = "registry-password";
/// Where containerd finds one `hosts.toml` per registry (containerd's own convention).
pub const CONTAINERD_HOSTS_DIR: &str = "/etc/containerd/certs.d";
/// The cluster CA on every node, for containerd to check the registry's certificate.
pub const NODE_CA: &str = "/etc/groundwork/registry-ca.crt";

/// The registry host the inventory names (or its only `registry` host) and its section.
pub fn site(inv: &Inventory) -> Option<(&Host, &Registry)> {
    let r = inv.registry.as_ref()?;
    let host = inv.section_host(r.host.as_deref(), Role::Registry)?;
    Some((host, r))
}

/// `address:port` as nodes reach it (an IPv6 address in brackets).
pub fn address(host: &Host, r: &Registry) -> String {
    if host.address.contains(':') {
        format!("[{}]:{}", host.address, r.port)
    } else {
        format!("{}:{}", host.address, r.port)
    }
}

/// The registry's password: the inventory's, or one generated once and kept in the state.
pub fn password(r: &Registry, base_dir: &Path, state: &StateDir) -> Result<Secret, String> {
    match &r.password {
        Some(reference) => secrets::resolve(reference, base_dir, "registry.password").map_err(|e| e.to_string()),
        None => secrets_store::generated(state, GENERATED_PASSWORD, Generated::Password).map_err(|e| e.to_string()),
    }
}

/// The password as [`password`] has it, without generating one (a dry run writes nothing):
/// None when it would be generated.
pub fn existing_password(r: &Registry, base_dir: &Path, state: &StateDir) -> Result<Option<Secret>, String> {
    if r.password.is_none() && !state.root().join("secrets").join(GENERATED_PASSWORD).exists() {
        return Ok(None);
    }
    password(r, base_dir, state).map(Some)
}

/// The `Authorization` header's value for `user` and `password` (HTTP basic).
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// The first part of the repository an upstream's images are kept under: the registry's name,
/// its port (a `:` cannot be in a repository name) after `_`.
pub fn upstream_prefix(upstream: &str) -> String {
    upstream.replace(':', "_")
}

/// The upstream's own address, containerd's fallback when the site registry lacks an image (on
/// an air-gapped site that fails, as it should: nothing else is reachable).
fn upstream_server(upstream: &str) -> String {
    match upstream {
        "docker.io" => "https://registry-1.docker.io".into(),
        other => format!("https://{other}"),
    }
}

/// containerd's `hosts.toml` for `upstream` (or, with `None`, for the site registry's own
/// address): pull and resolve through the site registry at `address`, its certificate checked
/// against the cluster CA, with the credentials in a header (containerd keeps none of its own
/// for a mirror). The file holds a credential: it is written 0600.
pub fn hosts_toml(upstream: Option<&str>, address: &str, authorization: &str) -> String {
    let (server, host) = match upstream {
        Some(u) => (upstream_server(u), format!("https://{address}/v2/{}", upstream_prefix(u))),
        None => (format!("https://{address}"), format!("https://{address}")),
    };
    let override_path = if upstream.is_some() { "\n  override_path = true" } else { "" };
    format!(
        "# Written by groundwork (phase container-runtime). Edits are replaced on the next apply.\n\
         server = \"{server}\"\n\n\
         [host.\"{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{NODE_CA}\"{override_path}\n\
         [host.\"{host}\".header]\n  authorization = \"{authorization}\"\n"
    )
}

/// The directory containerd looks in for `registry`: its name as images spell it, port included.
pub fn hosts_dir(registry: &str) -> String {
    format!("{CONTAINERD_HOSTS_DIR}/{registry}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_is_reached_under_its_upstreams_name_with_the_cluster_ca_and_credentials() {
        let toml = hosts_toml(Some("docker.io"), "10.0.0.5:5000", &basic_auth("u", "p"));
        assert!(toml.contains("server = \"https://registry-1.docker.io\""), "{toml}");
        assert!(toml.contains("[host.\"https://10.0.0.5:5000/v2/docker.io\"]"), "{toml}");
        assert!(toml.contains("override_path = true"), "{toml}");
        assert!(toml.contains("ca = \"/etc/groundwork/registry-ca.crt\""), "{toml}");
        assert!(toml.contains("authorization = \"Basic dTpw\""), "{toml}");
        let own = hosts_toml(None, "10.0.0.5:5000", "Basic x");
        assert!(own.contains("[host.\"https://10.0.0.5:5000\"]") && !own.contains("override_path"), "{own}");
        assert_eq!(upstream_prefix("registry.example.org:5000"), "registry.example.org_5000");
    }
}
