//! A kubeconfig with embedded client certificate, for the controller's own API calls.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::{ADMIN_CN, PkiError};

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<'a, Cluster>>,
    users: Vec<Named<'a, User>>,
    contexts: Vec<Named<'a, Context<'a>>>,
    current_context: &'a str,
    preferences: Preferences,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    value: T,
}

#[derive(Serialize)]
struct Cluster {
    cluster: ClusterData,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterData {
    server: String,
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct User {
    user: UserData,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserData {
    client_certificate_data: String,
    client_key_data: String,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextData<'a>,
}

#[derive(Serialize)]
struct ContextData<'a> {
    cluster: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[derive(Serialize)]
struct Preferences {}

/// kubeconfig YAML for `server_url` (`https://host:6443`) with the PEMs embedded (base64 `*-data`
/// fields); user `groundwork-admin`, context `groundwork-admin@CLUSTER`. The text holds the
/// private key: write it 0600.
pub fn admin_kubeconfig(
    cluster_name: &str,
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<String, PkiError> {
    user_kubeconfig(cluster_name, server_url, ca_pem, ADMIN_CN, None, client_cert_pem, client_key_pem)
}

/// The same for any user: context `USER@CLUSTER`, its default namespace `namespace` if given.
pub fn user_kubeconfig(
    cluster_name: &str,
    server_url: &str,
    ca_pem: &str,
    user: &str,
    namespace: Option<&str>,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<String, PkiError> {
    let context = format!("{user}@{cluster_name}");
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: cluster_name,
            value: Cluster {
                cluster: ClusterData {
                    server: server_url.to_string(),
                    certificate_authority_data: STANDARD.encode(ca_pem),
                },
            },
        }],
        users: vec![Named {
            name: user,
            value: User {
                user: UserData {
                    client_certificate_data: STANDARD.encode(client_cert_pem),
                    client_key_data: STANDARD.encode(client_key_pem),
                },
            },
        }],
        contexts: vec![Named {
            name: &context,
            value: Context { context: ContextData { cluster: cluster_name, user, namespace } },
        }],
        current_context: &context,
        preferences: Preferences {},
    };
    // The error says what could not be serialized, never the values.
    serde_yaml_ng::to_string(&config).map_err(|e| PkiError::invalid("kubeconfig", e.to_string()))
}
