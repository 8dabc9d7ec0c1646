//! GitOps handoff for DIGIT's Helmfile flow, per environment, when the inventory names the
//! operator's DIGIT repository: an ArgoCD Application that runs DIGIT's own
//! `digit-helmfile.yaml` through ArgoCD's helmfile Config Management Plugin.
//!
//! Neither ArgoCD nor Flux understands helmfile by itself. ArgoCD runs it through a CMP sidecar
//! (the plugin named `helmfile`, which the site installs once); DIGIT's helmfiles pass Go
//! templated values to their releases (the Elasticsearch password, Kafka's cluster id, the
//! ingress settings), so a plain Helm object per chart would deploy them without those, and
//! Flux (Helm objects only) gets no objects: `next_steps` says so instead of writing objects
//! that would deploy something else. DIGIT's Go deployer applies rendered manifests with
//! kubectl and has no chart for either to follow.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Content, DigitInputs, GitOpsTarget, HandoffError, HandoffInputs, Rendered, digit_helmfile, yaml};
use crate::inventory::DigitFlow;

pub const ARGOCD_NAMESPACE: &str = "argocd";
/// The CMP plugin's name, as the site registers it with ArgoCD's repo server.
pub const HELMFILE_PLUGIN: &str = "helmfile";
const IN_CLUSTER: &str = "https://kubernetes.default.svc";

pub fn dir(env: &str) -> PathBuf {
    Path::new("gitops").join(env)
}
pub fn argocd_file(env: &str) -> PathBuf {
    dir(env).join("argocd-application.yaml")
}

/// The branch an environment's Application follows: DIGIT's helmfile reads one environment's
/// files from `charts/environments/`, so each environment lives on its own branch (the
/// inventory's `revision` when there is only one environment).
pub fn branch(target: &GitOpsTarget, env: &str, environments: usize) -> String {
    if environments == 1 { target.revision.clone() } else { env.to_string() }
}

/// Why no GitOps object is written for this flow and deployer, if none is.
pub fn unsupported(inputs: &HandoffInputs) -> Option<&'static str> {
    match inputs.digit.as_ref().map(|d| d.flow) {
        None => Some("handoff.digit is not set, so there is no DIGIT repository to follow"),
        Some(DigitFlow::Deployer) => Some(
            "DIGIT's Go deployer renders its charts and applies them with kubectl; there is no chart or helmfile for ArgoCD or Flux to follow",
        ),
        Some(DigitFlow::Helmfile) if inputs.deployer == crate::inventory::Deployer::Flux => Some(
            "Flux has no helmfile support and DIGIT's helmfiles pass templated values to their releases; deploy with helmfile, or with ArgoCD and its helmfile plugin",
        ),
        Some(DigitFlow::Helmfile) => None,
    }
}

pub fn render(inputs: &HandoffInputs, out: &mut Rendered) -> Result<(), HandoffError> {
    let (Some(target), Some(digit)) = (&inputs.gitops, &inputs.digit) else { return Ok(()) };
    if digit.flow != DigitFlow::Helmfile {
        return Ok(());
    }
    for env in &digit.environments {
        let app = application(inputs, digit, target, &env.name);
        out.add(argocd_file(&env.name), yaml::document("the ArgoCD Application", &app)?, Content::Plain);
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
    /// The deploy-as-code directory in the repository (holds digit-helmfile.yaml).
    path: String,
    plugin: Plugin,
}

#[derive(Serialize)]
struct Plugin {
    name: &'static str,
    env: Vec<EnvVar>,
}

#[derive(Serialize)]
struct EnvVar {
    name: &'static str,
    value: String,
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

fn application(
    inputs: &HandoffInputs,
    digit: &DigitInputs,
    target: &GitOpsTarget,
    env: &str,
) -> Object<ApplicationSpec> {
    Object {
        api_version: "argoproj.io/v1alpha1",
        kind: "Application",
        metadata: Metadata { name: format!("{}-{env}", inputs.cluster), namespace: ARGOCD_NAMESPACE },
        spec: ApplicationSpec {
            project: "default",
            source: ApplicationSource {
                repo_url: target.repository.clone(),
                target_revision: branch(target, env, digit.environments.len()),
                path: target.path.clone(),
                plugin: Plugin {
                    name: HELMFILE_PLUGIN,
                    env: vec![
                        EnvVar { name: "HELMFILE_FILE", value: crate::digit::TOP_HELMFILE.into() },
                        EnvVar { name: "HELMFILE_ENVIRONMENT", value: digit_helmfile::HELMFILE_ENVIRONMENT.into() },
                    ],
                },
            },
            destination: Destination { server: IN_CLUSTER, namespace: inputs.namespace.clone() },
            sync_policy: SyncPolicy {
                automated: Automated { prune: true, self_heal: true },
                sync_options: vec!["CreateNamespace=true"],
            },
        },
    }
}
