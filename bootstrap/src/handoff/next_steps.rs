//! NEXT-STEPS.md: what is in the handoff directory and the exact commands that deploy from it,
//! and `DeployScript`, the same commands as `groundwork handoff --run-deployer` runs them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::kubernetes::{CSI_NFS_DRIVER, DATABASE, NFS_CLASS, SECRETS, STATIC_CLASS, STORAGE};
use super::{
    HandoffInputs, KUBECONFIG, NEXT_STEPS, deployer_file, digit_deployer, digit_helmfile, gitops, helmfile_dir,
};
use crate::inventory::Deployer;

/// The variable naming the operator's DIGIT-DevOps checkout, where the DIGIT deployers run.
pub const DIGIT_DEVOPS_VAR: &str = "DIGIT_DEVOPS";

/// The commands that deploy the first environment, run from the handoff directory.
#[derive(Debug, Clone, Serialize)]
pub struct DeployScript {
    pub deployer: String,
    pub environment: String,
    /// Shell commands, one a line, as NEXT-STEPS.md shows them: first those that reach the
    /// cluster and apply the manifests, then the deployer's own.
    pub prepare: Vec<String>,
    pub deploy: Vec<String>,
    /// Programs the commands run; `--run-deployer` refuses to start without all of them.
    pub programs: Vec<String>,
    /// Environment variables the commands read.
    pub variables: Vec<String>,
    /// Why the commands cannot run from these files at all (e.g. no GitOps repository).
    pub blocked: Option<String>,
}

impl DeployScript {
    /// The commands as one `sh` script that stops at the first failure.
    pub fn shell(&self) -> String {
        format!("set -e\n{}\n", self.prepare.iter().chain(&self.deploy).cloned().collect::<Vec<_>>().join("\n"))
    }
}

fn has(files: &[(PathBuf, bool)], path: &str) -> bool {
    files.iter().any(|(p, _)| p == Path::new(path))
}

/// The commands for `inputs.deployer` and the first environment; `files` are the rendered files
/// (path, holds secrets).
pub fn deploy_script(inputs: &HandoffInputs, files: &[(PathBuf, bool)], encrypting: bool) -> DeployScript {
    let env = inputs.environments.first().cloned().unwrap_or_default();
    let mut prepare = Vec::new();
    let mut programs: Vec<&str> = Vec::new();
    if has(files, KUBECONFIG) {
        prepare.push(format!("export KUBECONFIG=\"$PWD/{KUBECONFIG}\""));
    }
    let manifests = manifest_commands(files, encrypting);
    if !manifests.is_empty() {
        programs.push("kubectl");
    }
    prepare.extend(manifests);
    let mut commands = Vec::new();
    if encrypting && has(files, SECRETS) {
        programs.push("sops");
    }
    let mut variables = Vec::new();
    let mut blocked = None;
    let deployer = match inputs.deployer {
        Deployer::Helm => {
            let dir = helmfile_dir(&env);
            let mut copy = format!("cp {}", dir.join(digit_helmfile::VALUES).display());
            if has(files, &dir.join(digit_helmfile::SECRETS).display().to_string()) {
                let _ = write!(copy, " {}", dir.join(digit_helmfile::SECRETS).display());
            }
            commands.push(format!("{copy} \"${DIGIT_DEVOPS_VAR}/deploy-as-code/charts/environments/\""));
            commands.push(format!("cd \"${DIGIT_DEVOPS_VAR}/deploy-as-code\""));
            commands.push(format!("helmfile -f digit-helmfile.yaml -e {} apply", digit_helmfile::HELMFILE_ENVIRONMENT));
            programs.extend(["helmfile", "helm"]);
            variables.push(DIGIT_DEVOPS_VAR.to_string());
            "helmfile"
        }
        Deployer::Digit => {
            let mut copy = format!("cp {}", deployer_file(&env, false).display());
            if has(files, &deployer_file(&env, true).display().to_string()) {
                let _ = write!(copy, " {}", deployer_file(&env, true).display());
            }
            commands.push(format!("{copy} \"${DIGIT_DEVOPS_VAR}/deploy-as-code/helm/environments/\""));
            commands.push(format!("cd \"${DIGIT_DEVOPS_VAR}/deploy-as-code/deployer\""));
            let mut charts = digit_deployer::charts_with_volumes(inputs.volumes.as_ref());
            if charts.is_empty() {
                charts = digit_deployer::CHARTS.iter().map(|(_, chart)| *chart).collect();
            }
            commands.push(format!("go run main.go deploy -e {env} -c '{}'", charts.join(",")));
            programs.push("go");
            variables.push(DIGIT_DEVOPS_VAR.to_string());
            "go"
        }
        Deployer::Argocd | Deployer::Flux if inputs.gitops.is_none() => {
            blocked = Some(
                "handoff.gitops is not set, so there is no ArgoCD Application or Flux object to apply; \
                 add handoff.gitops.repository (and path, revision) to the inventory"
                    .to_string(),
            );
            "kubectl"
        }
        Deployer::Argocd => {
            commands.push(format!("kubectl apply -f {}", gitops::argocd_file(&env).display()));
            programs.push("kubectl");
            "kubectl"
        }
        Deployer::Flux => {
            commands.push(format!("kubectl apply -f {}", gitops::flux_sync_file(&env).display()));
            programs.push("kubectl");
            "kubectl"
        }
    };
    let mut unique = Vec::new();
    for p in programs {
        if !unique.contains(&p.to_string()) {
            unique.push(p.to_string());
        }
    }
    DeployScript {
        deployer: deployer.into(),
        environment: env,
        prepare,
        deploy: commands,
        programs: unique,
        variables,
        blocked,
    }
}

/// The namespace and `db-service` first (the Secret lives in that namespace), then the Secrets,
/// then the storage classes and volumes.
fn manifest_commands(files: &[(PathBuf, bool)], encrypting: bool) -> Vec<String> {
    let mut commands = Vec::new();
    if has(files, DATABASE) {
        commands.push(format!("kubectl apply -f {DATABASE}"));
    }
    if has(files, SECRETS) {
        commands.push(if encrypting {
            format!("sops -d {SECRETS} | kubectl apply -f -")
        } else {
            format!("kubectl apply -f {SECRETS}")
        });
    }
    if has(files, STORAGE) {
        commands.push(format!("kubectl apply -f {STORAGE}"));
    }
    commands
}

fn describe(path: &Path) -> &'static str {
    let p = path.display().to_string();
    match p.as_str() {
        KUBECONFIG => "the cluster's admin kubeconfig (mode 0600: it is cluster-admin)",
        STORAGE => "StorageClasses and a static PersistentVolume per iSCSI/NFS volume",
        DATABASE => "the namespace and `db-service`, a Service that points at the PostgreSQL host",
        SECRETS => "the `db` Secret (username, password, flyway-username, flyway-password) and the iSCSI CHAP Secret",
        ".sops.yaml" => "sops creation rules, for `sops edit FILE`",
        _ if p.ends_with("/env.yaml") => "DIGIT Helmfile values (copy to deploy-as-code/charts/environments/)",
        _ if p.ends_with("/env-secrets.yaml") => "DIGIT Helmfile secrets (copy next to env.yaml)",
        _ if p.starts_with("digit/deployer/") && p.ends_with("-secrets.yaml") => {
            "DIGIT Go deployer secrets (copy to deploy-as-code/helm/environments/)"
        }
        _ if p.starts_with("digit/deployer/") => {
            "DIGIT Go deployer environment (copy to deploy-as-code/helm/environments/)"
        }
        _ if p.ends_with("/values.yaml") => "Helm values for the GitOps repository",
        _ if p.ends_with("/argocd-application.yaml") => "ArgoCD Application",
        _ if p.ends_with("/flux-helmrelease.yaml") => "Flux HelmRelease (commit it to the repository)",
        _ if p.ends_with("/flux-sync.yaml") => "Flux GitRepository and Kustomization (apply once)",
        _ => "",
    }
}

pub fn render(inputs: &HandoffInputs, files: &[(PathBuf, bool)], encrypting: bool) -> String {
    let script = deploy_script(inputs, files, encrypting);
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Next steps for cluster `{}`\n", inputs.cluster);
    let _ = writeln!(
        w,
        "Written by `groundwork handoff` (and the last phase of `groundwork apply`); running it again\n\
         rewrites only the files that changed. Run every command below from this directory.\n"
    );
    let _ = writeln!(w, "## What is here\n\n| file | what it is |\n|---|---|");
    let _ = writeln!(w, "| `{NEXT_STEPS}` | this file |");
    for (path, _) in files {
        let _ = writeln!(w, "| `{}` | {} |", path.display(), describe(path));
    }
    let _ = writeln!(w);
    secrets_section(w, files, encrypting, inputs.sops.is_some());
    cluster_section(w, files);
    storage_section(w, inputs, files, encrypting);
    deploy_section(w, inputs, &script);
    if inputs.environments.len() > 1 {
        let _ = writeln!(
            w,
            "Other environments ({}): the same commands with the environment's own files.\n",
            inputs.environments[1..].join(", ")
        );
    }
    md
}

fn secrets_section(w: &mut String, files: &[(PathBuf, bool)], encrypting: bool, sops_configured: bool) {
    let secret_files: Vec<String> =
        files.iter().filter(|(_, s)| *s).map(|(p, _)| format!("`{}`", p.display())).collect();
    if secret_files.is_empty() {
        return;
    }
    let _ = writeln!(w, "## Secrets\n");
    let list = secret_files.join(", ");
    if encrypting {
        let _ = writeln!(
            w,
            "{list}\nare encrypted with sops for the inventory's age recipient; decrypt with `sops -d FILE`\n\
             (the age private key in `SOPS_AGE_KEY_FILE`), edit with `sops edit FILE`.\n"
        );
    } else if sops_configured {
        let _ = writeln!(
            w,
            "{list}\nhold passwords in plain text (mode 0600): sops was not installed when they were written.\n\
             Do not commit them; install sops and run `groundwork handoff` again to encrypt them.\n"
        );
    } else {
        let _ = writeln!(
            w,
            "{list}\nhold passwords in plain text (mode 0600). Do not commit them; set\n\
             `handoff.sops.ageRecipient` in the inventory to have them encrypted with sops.\n"
        );
    }
}

fn cluster_section(w: &mut String, files: &[(PathBuf, bool)]) {
    let _ = writeln!(w, "## 1. Reach the cluster\n");
    if has(files, KUBECONFIG) {
        let _ = writeln!(
            w,
            "```sh\nexport KUBECONFIG=\"$PWD/{KUBECONFIG}\"\nkubectl get nodes\n```\n\n\
             Its server is the API endpoint as the nodes see it; from outside the cluster network keep\n\
             open the SSH tunnel through the bastion that `groundwork apply` prints.\n"
        );
    } else {
        let _ =
            writeln!(w, "The cluster does not exist yet: run `groundwork apply`, then `groundwork handoff` again.\n");
    }
}

fn storage_section(w: &mut String, inputs: &HandoffInputs, files: &[(PathBuf, bool)], encrypting: bool) {
    let _ = writeln!(w, "## 2. Storage and the database\n");
    if let Some(plan) = &inputs.volumes {
        let _ = writeln!(
            w,
            "`{NFS_CLASS}` is the default StorageClass: claims without a class get a directory under\n\
             `{}` on {} through csi-driver-nfs ({CSI_NFS_DRIVER}), which must be installed first, e.g.\n\n\
             ```sh\nhelm repo add csi-driver-nfs https://raw.githubusercontent.com/kubernetes-csi/csi-driver-nfs/master/charts\n\
             helm upgrade --install csi-driver-nfs csi-driver-nfs/csi-driver-nfs --namespace kube-system\n```\n\n\
             The static volumes ({} of them) carry the class `{STATIC_CLASS}` and the labels\n\
             `groundwork.io/component` and `groundwork.io/volume`; a claim gets one by naming that class\n\
             and, with a selector, the volume.\n",
            super::kubernetes::dynamic_share(plan),
            plan.address,
            plan.volumes.len()
        );
    }
    let commands = manifest_commands(files, encrypting);
    if commands.is_empty() {
        let _ = writeln!(w, "Nothing to apply: the inventory has no `storage` or `database` section.\n");
    } else {
        let _ = writeln!(w, "```sh\n{}\n```\n", commands.join("\n"));
    }
}

fn deploy_section(w: &mut String, inputs: &HandoffInputs, script: &DeployScript) {
    let deployer = match inputs.deployer {
        Deployer::Helm => "DIGIT's Helmfile (DIGIT 2.9 LTS and later)",
        Deployer::Digit => "DIGIT's Go deployer",
        Deployer::Argocd => "ArgoCD",
        Deployer::Flux => "Flux",
    };
    let _ = writeln!(w, "## 3. Deploy environment `{}` with {deployer}\n", script.environment);
    if let Some(reason) = &script.blocked {
        let _ = writeln!(w, "Not possible from these files: {reason}.\n");
        return;
    }
    match inputs.deployer {
        Deployer::Helm | Deployer::Digit => {
            let _ = writeln!(
                w,
                "In a checkout of your fork of DIGIT-DevOps (`export {DIGIT_DEVOPS_VAR}=/path/to/DIGIT-DevOps`):\n"
            );
        }
        Deployer::Argocd | Deployer::Flux => gitops_preamble(w, inputs, script),
    }
    let _ = writeln!(w, "```sh\n{}\n```\n", script.deploy.join("\n"));
    let _ = writeln!(
        w,
        "`groundwork handoff --run-deployer` runs the commands of sections 1 to 3 when {} installed{}.\n",
        match script.programs.as_slice() {
            [one] => format!("`{one}` is"),
            [init @ .., last] =>
                format!("{} and `{last}` are", init.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")),
            [] => "nothing else is".to_string(),
        },
        if script.variables.is_empty() {
            String::new()
        } else {
            format!(" and {} is set", script.variables.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "))
        }
    );
    if inputs.deployer == Deployer::Helm && script.programs.iter().any(|p| p == "sops") {
        let _ = writeln!(
            w,
            "Helmfile decrypts `env-secrets.yaml` through the helm-secrets plugin (`helm plugin install https://github.com/jkroepke/helm-secrets`).\n"
        );
    }
    let lun = inputs.volumes.as_ref().and_then(|p| {
        p.iscsi()
            .find_map(|v| if let crate::storage::VolumeAccess::Iscsi { lun, .. } = v.access { Some(lun) } else { None })
    });
    if let (Deployer::Digit, Some(lun)) = (inputs.deployer, lun)
        && lun != 0
    {
        let _ = writeln!(
            w,
            "The iSCSI volumes are at LUN {lun} (tgt keeps LUN 0 for the target itself); check that the\n\
             persistentvolume templates of your DIGIT-DevOps charts use that LUN (some hard-code 0).\n"
        );
    }
}

fn gitops_preamble(w: &mut String, inputs: &HandoffInputs, script: &DeployScript) {
    let Some(target) = &inputs.gitops else { return };
    let env = &script.environment;
    let _ = writeln!(
        w,
        "First commit to {} (branch `{}`):\n\n\
         - `{}` as `{}`\n\
         - for Flux, `{}` as `{}/helmrelease.yaml`\n\n\
         then:\n",
        target.repository,
        target.revision,
        gitops::values_file(env).display(),
        gitops::values_in_repo(target, env),
        gitops::helmrelease_file(env).display(),
        gitops::flux_path(&inputs.cluster, env),
    );
}
