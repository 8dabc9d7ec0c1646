//! GitOps handoff, per environment, when the inventory names a repository:
//! `gitops/<env>/values.yaml` (to commit as `<path>/values-<env>.yaml`), an ArgoCD Application,
//! a Flux HelmRelease (to commit as `clusters/<cluster>/<env>/helmrelease.yaml`) and the Flux
//! GitRepository + Kustomization that reconcile it (applied to the cluster once).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Content, GitOpsTarget, HandoffError, HandoffInputs, Rendered, digit_helmfile, yaml};

pub const ARGOCD_NAMESPACE: &str = "argocd";
pub const FLUX_NAMESPACE: &str = "flux-system";
const IN_CLUSTER: &str = "https://kubernetes.default.svc";

pub fn dir(env: &str) -> PathBuf {
    Path::new("gitops").join(env)
}
pub fn values_file(env: &str) -> PathBuf {
    dir(env).join("values.yaml")
}
pub fn argocd_file(env: &str) -> PathBuf {
    dir(env).join("argocd-application.yaml")
}
pub fn helmrelease_file(env: &str) -> PathBuf {
    dir(env).join("flux-helmrelease.yaml")
}
pub fn flux_sync_file(env: &str) -> PathBuf {
    dir(env).join("flux-sync.yaml")
}

/// The values file's name in the repository, next to the chart (ArgoCD resolves it there).
pub fn values_name(env: &str) -> String {
    format!("values-{env}.yaml")
}
/// The repository path of the values file (Flux resolves it from the repository root).
pub fn values_in_repo(target: &GitOpsTarget, env: &str) -> String {
    join_repo_path(&target.path, &values_name(env))
}
/// Where the HelmRelease is committed, for the Flux Kustomization to find.
pub fn flux_path(cluster: &str, env: &str) -> String {
    format!("clusters/{cluster}/{env}")
}

/// Flux names a chart in a Git source by its path from the repository root, `./` first.
fn chart_path(dir: &str) -> String {
    match dir.trim_matches('/').trim_start_matches("./") {
        "" | "." => "./".to_string(),
        d => format!("./{d}"),
    }
}

fn join_repo_path(dir: &str, name: &str) -> String {
    match dir.trim_matches('/').trim_start_matches("./") {
        "" | "." => name.to_string(),
        d => format!("{d}/{name}"),
    }
}

pub fn render(inputs: &HandoffInputs, out: &mut Rendered) -> Result<(), HandoffError> {
    let Some(target) = &inputs.gitops else { return Ok(()) };
    let values = yaml::document("the GitOps values", &digit_helmfile::values(inputs))?;
    for env in &inputs.environments {
        let name = format!("{}-{env}", inputs.cluster);
        out.add(values_file(env), values.clone(), Content::Plain);
        out.add(
            argocd_file(env),
            yaml::document("the ArgoCD Application", &application(inputs, target, env, &name))?,
            Content::Plain,
        );
        out.add(
            helmrelease_file(env),
            yaml::document("the Flux HelmRelease", &helm_release(inputs, target, env, &name))?,
            Content::Plain,
        );
        let sync = [
            yaml::document("the Flux GitRepository", &git_repository(inputs, target))?,
            yaml::document("the Flux Kustomization", &kustomization(inputs, env, &name))?,
        ];
        out.add(flux_sync_file(env), yaml::documents(&sync), Content::Plain);
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: S,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
    namespace: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationSpec {
    project: &'static str,
    source: ApplicationSource,
    destination: Destination,
    sync_policy: SyncPolicy,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationSource {
    #[serde(rename = "repoURL")]
    repo_url: String,
    target_revision: String,
    path: String,
    helm: HelmSource,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HelmSource {
    value_files: Vec<String>,
}

#[derive(Serialize)]
struct Destination {
    server: &'static str,
    namespace: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncPolicy {
    automated: Automated,
    sync_options: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Automated {
    prune: bool,
    self_heal: bool,
}

fn application(inputs: &HandoffInputs, target: &GitOpsTarget, env: &str, name: &str) -> Object<ApplicationSpec> {
    Object {
        api_version: "argoproj.io/v1alpha1",
        kind: "Application",
        metadata: Metadata { name: name.to_string(), namespace: ARGOCD_NAMESPACE },
        spec: ApplicationSpec {
            project: "default",
            source: ApplicationSource {
                repo_url: target.repository.clone(),
                target_revision: target.revision.clone(),
                path: target.path.clone(),
                helm: HelmSource { value_files: vec![values_name(env)] },
            },
            destination: Destination { server: IN_CLUSTER, namespace: inputs.namespace.clone() },
            sync_policy: SyncPolicy {
                automated: Automated { prune: true, self_heal: true },
                sync_options: vec!["CreateNamespace=true"],
            },
        },
    }
}

#[derive(Serialize)]
struct GitRepositorySpec {
    interval: &'static str,
    url: String,
    #[serde(rename = "ref")]
    reference: GitReference,
}

#[derive(Serialize)]
struct GitReference {
    branch: String,
}

fn git_repository(inputs: &HandoffInputs, target: &GitOpsTarget) -> Object<GitRepositorySpec> {
    Object {
        api_version: "source.toolkit.fluxcd.io/v1",
        kind: "GitRepository",
        metadata: Metadata { name: inputs.cluster.clone(), namespace: FLUX_NAMESPACE },
        spec: GitRepositorySpec {
            interval: "1m",
            url: target.repository.clone(),
            reference: GitReference { branch: target.revision.clone() },
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KustomizationSpec {
    interval: &'static str,
    path: String,
    prune: bool,
    source_ref: SourceRef,
}

#[derive(Serialize)]
struct SourceRef {
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'static str>,
}

fn kustomization(inputs: &HandoffInputs, env: &str, name: &str) -> Object<KustomizationSpec> {
    Object {
        api_version: "kustomize.toolkit.fluxcd.io/v1",
        kind: "Kustomization",
        metadata: Metadata { name: name.to_string(), namespace: FLUX_NAMESPACE },
        spec: KustomizationSpec {
            interval: "10m",
            path: format!("./{}", flux_path(&inputs.cluster, env)),
            prune: true,
            source_ref: SourceRef { kind: "GitRepository", name: inputs.cluster.clone(), namespace: None },
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HelmReleaseSpec {
    interval: &'static str,
    target_namespace: String,
    install: Install,
    chart: ChartTemplate,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Install {
    create_namespace: bool,
}

#[derive(Serialize)]
struct ChartTemplate {
    spec: ChartSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChartSpec {
    chart: String,
    source_ref: SourceRef,
    values_files: Vec<String>,
    reconcile_strategy: &'static str,
}

fn helm_release(inputs: &HandoffInputs, target: &GitOpsTarget, env: &str, name: &str) -> Object<HelmReleaseSpec> {
    Object {
        api_version: "helm.toolkit.fluxcd.io/v2",
        kind: "HelmRelease",
        metadata: Metadata { name: name.to_string(), namespace: FLUX_NAMESPACE },
        spec: HelmReleaseSpec {
            interval: "10m",
            target_namespace: inputs.namespace.clone(),
            install: Install { create_namespace: true },
            chart: ChartTemplate {
                spec: ChartSpec {
                    chart: chart_path(&target.path),
                    source_ref: SourceRef {
                        kind: "GitRepository",
                        name: inputs.cluster.clone(),
                        namespace: Some(FLUX_NAMESPACE),
                    },
                    values_files: vec![values_in_repo(target, env)],
                    // Chart files from Git change without a version bump: follow the commit.
                    reconcile_strategy: "Revision",
                },
            },
        },
    }
}
