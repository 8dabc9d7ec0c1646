//! `groundwork kubeconfig --user NAME`: access for a person. A client certificate (CN the user,
//! O the groups) signed by the cluster CA on this machine, so the private key exists only here and
//! in the kubeconfig written for that person; an RBAC binding of one of Kubernetes' user-facing
//! roles (view, edit, admin, cluster-admin) to the user, cluster-wide or in one namespace.
//!
//! `--revoke` deletes the user's bindings. Kubernetes has no certificate revocation: the
//! certificate still authenticates until it expires, it is only no longer authorized for anything
//! groundwork granted. Bindings made by hand to the same user or groups still apply, and issuing
//! the same name again would re-grant. What was issued is recorded in the state directory's
//! `users/NAME.json` (serial, expiry, role), never the key.

use std::path::{Path, PathBuf};
use std::time::Instant;

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::access::{Access, AccessError, Reach};
use crate::inventory::LoadedInventory;
use crate::kube::KubeError;
use crate::state::write_atomic;
use crate::transport::TransportOptions;

/// The label every binding groundwork makes for a user carries (its value: the user).
const USER_LABEL: &str = "groundwork.io/user";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const RBAC: &str = "rbac.authorization.k8s.io";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UserRole {
    /// Read most objects (not Secrets).
    View,
    /// Read and write most objects, Secrets included; no roles or bindings.
    Edit,
    /// Everything in a namespace, roles and bindings included.
    Admin,
    /// Everything, everywhere.
    ClusterAdmin,
}

impl std::str::FromStr for UserRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [UserRole::View, UserRole::Edit, UserRole::Admin, UserRole::ClusterAdmin]
            .into_iter()
            .find(|r| r.cluster_role() == s)
            .ok_or_else(|| format!("`{s}` is not a role: view, edit, admin or cluster-admin"))
    }
}

impl UserRole {
    /// The built-in ClusterRole of the same name.
    pub fn cluster_role(self) -> &'static str {
        match self {
            UserRole::View => "view",
            UserRole::Edit => "edit",
            UserRole::Admin => "admin",
            UserRole::ClusterAdmin => "cluster-admin",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("--user `{name}`: {why}")]
    BadName { name: String, why: String },
    #[error("--group `{group}`: {why}")]
    BadGroup { group: String, why: String },
    #[error("--days {0}: between 1 and 3650 (the cluster CA's own lifetime)")]
    BadDays(u32),
    #[error(
        "--namespace `{0}` does not exist in the cluster: create it first, or leave --namespace out for a cluster-wide binding"
    )]
    NoNamespace(String),
    #[error("the API server: {0}")]
    Api(#[from] KubeError),
    #[error("the user's certificate: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no master answered: {0}")]
    NoMaster(String),
}

pub struct UserOptions {
    pub transport: TransportOptions,
    pub name: String,
    pub groups: Vec<String>,
    pub role: UserRole,
    pub namespace: Option<String>,
    pub days: u32,
    /// The kubeconfig to write; the state directory's `users/NAME.kubeconfig` when None.
    pub out: Option<PathBuf>,
}

/// What `users/NAME.json` records of an issued certificate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Issued {
    pub user: String,
    pub groups: Vec<String>,
    pub role: UserRole,
    pub namespace: Option<String>,
    pub serial: String,
    /// Unix time.
    pub not_after: i64,
    pub issued_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UserReport {
    pub issued: Issued,
    /// `ClusterRoleBinding NAME` or `RoleBinding NS/NAME`.
    pub binding: String,
    pub kubeconfig: PathBuf,
    pub took_ms: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RevokeReport {
    pub user: String,
    /// The bindings deleted.
    pub deleted: Vec<String>,
    pub removed_kubeconfig: Option<PathBuf>,
    /// Unix time the certificate still authenticates until (if it was issued here).
    pub certificate_valid_until: Option<i64>,
}

/// A user name is the certificate's CN and the RBAC subject: a DNS-like name or an e-mail
/// address, never one of Kubernetes' own (`system:`), never groundwork's admin.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let bad = |why: &str| Err(UserError::BadName { name: name.into(), why: why.into() });
    if name.is_empty() || name.len() > 63 {
        return bad("1 to 63 characters");
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._@".contains(c)) {
        return bad("lowercase letters, digits, '-', '.', '_' and '@' only (for example `asha` or `asha@egov.org`)");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start and end with a letter or digit");
    }
    if name == crate::pki::ADMIN_CN || name.starts_with("kube-") || name == "kubernetes-admin" {
        return bad("reserved for the cluster's own clients");
    }
    Ok(())
}

pub fn check_group(group: &str) -> Result<(), UserError> {
    let bad = |why: &str| Err(UserError::BadGroup { group: group.into(), why: why.into() });
    if group.starts_with("system:") || group.starts_with("kubeadm:") {
        // system:masters in particular: a super-user no RBAC binding grants and none can revoke.
        return bad("groups of Kubernetes and kubeadm are not handed out; grant a --role instead");
    }
    if group.is_empty() || group.len() > 63 || !group.chars().all(|c| c.is_ascii_alphanumeric() || "-._:@".contains(c))
    {
        return bad("1 to 63 letters, digits, '-', '.', '_', ':' or '@'");
    }
    Ok(())
}

fn binding_name(user: &str) -> String {
    format!("groundwork:user:{user}")
}

fn meta(user: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(binding_name(user)),
        namespace: namespace.map(str::to_string),
        labels: Some(
            [(USER_LABEL.to_string(), label_value(user)), (MANAGED_BY.to_string(), "groundwork".to_string())].into(),
        ),
        ..Default::default()
    }
}

/// Label values allow no '@': an e-mail's '@' becomes '_at_'.
fn label_value(user: &str) -> String {
    user.replace('@', "_at_")
}

fn subject(user: &str) -> Vec<Subject> {
    vec![Subject { kind: "User".into(), name: user.into(), api_group: Some(RBAC.into()), namespace: None }]
}

fn role_ref(role: UserRole) -> RoleRef {
    RoleRef { api_group: RBAC.into(), kind: "ClusterRole".into(), name: role.cluster_role().into() }
}

/// The binding for `user`: its URL and the object.
pub fn binding(user: &str, role: UserRole, namespace: Option<&str>) -> (String, serde_json::Value) {
    let name = binding_name(user);
    match namespace {
        None => (
            format!("/apis/{RBAC}/v1/clusterrolebindings/{name}"),
            serde_json::to_value(ClusterRoleBinding {
                metadata: meta(user, None),
                role_ref: role_ref(role),
                subjects: Some(subject(user)),
            })
            .expect("serialisable"),
        ),
        Some(ns) => (
            format!("/apis/{RBAC}/v1/namespaces/{ns}/rolebindings/{name}"),
            serde_json::to_value(RoleBinding {
                metadata: meta(user, Some(ns)),
                role_ref: role_ref(role),
                subjects: Some(subject(user)),
            })
            .expect("serialisable"),
        ),
    }
}

fn users_dir(access: &Access) -> PathBuf {
    access.state.root().join("users")
}

fn record_path(access: &Access, user: &str) -> PathBuf {
    users_dir(access).join(format!("{user}.json"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UserError + '_ {
    move |source| UserError::Io { path: path.to_path_buf(), source }
}

fn check_options(opts: &UserOptions) -> Result<(), UserError> {
    check_name(&opts.name)?;
    for g in &opts.groups {
        check_group(g)?;
    }
    if !(1..=3650).contains(&opts.days) {
        return Err(UserError::BadDays(opts.days));
    }
    Ok(())
}

/// What [`issue`] would do with `opts` (checked as it checks them); nothing is touched.
pub fn issue_plan(loaded: &LoadedInventory, opts: &UserOptions) -> Result<Vec<String>, UserError> {
    check_options(opts)?;
    let state = crate::state::StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name);
    let kubeconfig =
        opts.out.clone().unwrap_or_else(|| state.root().join("users").join(format!("{}.kubeconfig", opts.name)));
    let groups = if opts.groups.is_empty() { String::new() } else { format!(", O={}", opts.groups.join("+")) };
    let binding = match &opts.namespace {
        None => format!("ClusterRoleBinding {}", binding_name(&opts.name)),
        Some(ns) => format!("RoleBinding {ns}/{} (the namespace must exist)", binding_name(&opts.name)),
    };
    Ok(vec![
        format!("bind ClusterRole {} to user {} through {binding}", opts.role.cluster_role(), opts.name),
        format!(
            "sign a client certificate CN={}{groups}, valid {} days, with the cluster CA on this machine",
            opts.name, opts.days
        ),
        format!("write its kubeconfig (the key in it, mode 0600) to {}", kubeconfig.display()),
    ])
}

pub async fn issue(loaded: &LoadedInventory, opts: UserOptions) -> Result<UserReport, UserError> {
    check_options(&opts)?;
    let started = Instant::now();
    let access = Access::open(loaded, opts.transport.clone(), Reach::Masters, "groundwork kubeconfig").await?;
    let result = issue_with(loaded, &access, &opts).await;
    access.close().await;
    result.map(|(issued, binding, kubeconfig)| UserReport {
        issued,
        binding,
        kubeconfig,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

async fn issue_with(
    loaded: &LoadedInventory,
    access: &Access,
    opts: &UserOptions,
) -> Result<(Issued, String, PathBuf), UserError> {
    let (_, via) = *access.masters().first().ok_or_else(|| UserError::NoMaster(unreachable(access)))?;
    let kube = access.kube(loaded)?;
    let ns = opts.namespace.as_deref();
    if let Some(ns) = ns {
        match kube.get_json(via, &format!("/api/v1/namespaces/{ns}")).await {
            Err(KubeError::Status { status: 404, .. }) => return Err(UserError::NoNamespace(ns.into())),
            other => {
                other?;
            }
        }
    }
    // The binding first: a kubeconfig is written only for a user the cluster knows what to allow.
    let (path, object) = binding(&opts.name, opts.role, ns);
    // roleRef cannot change in place: a binding to another role is replaced.
    if let Ok(existing) = kube.get_json(via, &path).await
        && existing["roleRef"]["name"] != opts.role.cluster_role()
    {
        kube.delete(via, &path).await?;
    }
    kube.apply(via, &path, &object).await?;
    let described = match ns {
        None => format!("ClusterRoleBinding {}", binding_name(&opts.name)),
        Some(ns) => format!("RoleBinding {ns}/{}", binding_name(&opts.name)),
    };

    let client = access.pki().user_client(&opts.name, &opts.groups, opts.days)?;
    let server = format!("https://{}", crate::phases::endpoint_of(&loaded.inventory));
    let text = access.pki().user_kubeconfig(&loaded.inventory.cluster.name, &server, &opts.name, ns, &client)?;
    let dir = users_dir(access);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let kubeconfig = opts.out.clone().unwrap_or_else(|| dir.join(format!("{}.kubeconfig", opts.name)));
    write_atomic(&kubeconfig, text.as_bytes(), 0o600).map_err(io(&kubeconfig))?;
    let (serial, not_after) = crate::pki::serial_and_expiry(client.cert_pem())?;
    let issued = Issued {
        user: opts.name.clone(),
        groups: opts.groups.clone(),
        role: opts.role,
        namespace: opts.namespace.clone(),
        serial,
        not_after,
        issued_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        revoked_at: None,
    };
    let record = record_path(access, &opts.name);
    write_atomic(&record, &serde_json::to_vec_pretty(&issued).expect("serialisable"), 0o600).map_err(io(&record))?;
    Ok((issued, described, kubeconfig))
}

fn unreachable(access: &Access) -> String {
    access.unreachable.iter().map(|(n, e)| format!("{n}: {e}")).collect::<Vec<_>>().join("; ")
}

pub async fn revoke(
    loaded: &LoadedInventory,
    transport: TransportOptions,
    user: &str,
) -> Result<RevokeReport, UserError> {
    check_name(user)?;
    let access = Access::open(loaded, transport, Reach::Masters, "groundwork kubeconfig --revoke").await?;
    let result = revoke_with(loaded, &access, user).await;
    access.close().await;
    result
}

async fn revoke_with(loaded: &LoadedInventory, access: &Access, user: &str) -> Result<RevokeReport, UserError> {
    let (_, via) = *access.masters().first().ok_or_else(|| UserError::NoMaster(unreachable(access)))?;
    let kube = access.kube(loaded)?;
    let mut deleted = Vec::new();
    let (cluster_wide, _) = binding(user, UserRole::View, None);
    if kube.delete(via, &cluster_wide).await? {
        deleted.push(format!("ClusterRoleBinding {}", binding_name(user)));
    }
    // Namespaced bindings anywhere, found by their label.
    let selector = format!("{USER_LABEL}%3D{}", label_value(user));
    let list = kube.get_json(via, &format!("/apis/{RBAC}/v1/rolebindings?labelSelector={selector}")).await?;
    for item in list["items"].as_array().into_iter().flatten() {
        let (ns, name) = (item["metadata"]["namespace"].as_str(), item["metadata"]["name"].as_str());
        if let (Some(ns), Some(name)) = (ns, name)
            && kube.delete(via, &format!("/apis/{RBAC}/v1/namespaces/{ns}/rolebindings/{name}")).await?
        {
            deleted.push(format!("RoleBinding {ns}/{name}"));
        }
    }
    let record = record_path(access, user);
    let mut valid_until = None;
    if let Some(mut issued) = std::fs::read(&record).ok().and_then(|b| serde_json::from_slice::<Issued>(&b).ok()) {
        valid_until = Some(issued.not_after);
        issued.revoked_at = Some(time::OffsetDateTime::now_utc().unix_timestamp());
        write_atomic(&record, &serde_json::to_vec_pretty(&issued).expect("serialisable"), 0o600)
            .map_err(io(&record))?;
    }
    let kubeconfig = users_dir(access).join(format!("{user}.kubeconfig"));
    let removed_kubeconfig = std::fs::remove_file(&kubeconfig).ok().map(|_| kubeconfig);
    Ok(RevokeReport { user: user.into(), deleted, removed_kubeconfig, certificate_valid_until: valid_until })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_pass_for_the_cluster_s_own_are_refused() {
        for ok in ["asha", "asha@egov.org", "ops-team.1", "a"] {
            check_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "Asha", "system:admin", "groundwork-admin", "kube-scheduler", "-x", "x-", "a b", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_group("developers").is_ok());
        for bad in ["system:masters", "kubeadm:cluster-admins", "", "a b"] {
            assert!(check_group(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_namespaced_role_is_a_role_binding_to_the_built_in_cluster_role() {
        let (path, b) = binding("asha@egov.org", UserRole::Edit, Some("egov"));
        assert_eq!(
            path,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/egov/rolebindings/groundwork:user:asha@egov.org"
        );
        assert_eq!(b["kind"], "RoleBinding");
        assert_eq!(b["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(b["metadata"]["namespace"], "egov");
        assert_eq!(b["metadata"]["labels"][USER_LABEL], "asha_at_egov.org");
        assert_eq!(b["roleRef"], serde_json::json!({"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"}));
        assert_eq!(b["subjects"], serde_json::json!([{"apiGroup": RBAC, "kind": "User", "name": "asha@egov.org"}]));

        let (path, b) = binding("ops", UserRole::ClusterAdmin, None);
        assert_eq!(path, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/groundwork:user:ops");
        assert_eq!(b["kind"], "ClusterRoleBinding");
        assert_eq!(b["roleRef"]["name"], "cluster-admin");
        assert!(b["metadata"].get("namespace").is_none());
    }
}
