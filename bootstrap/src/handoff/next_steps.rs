//! NEXT-STEPS.md: what is in the handoff directory and the exact commands that deploy from it,
//! and `DeployScript`, the same commands as `groundwork handoff --run-deployer` runs them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::kubernetes::{DATABASE, SECRETS, STATIC_CLASS, STORAGE};
use super::{
    HandoffInputs, KUBECONFIG, NEXT_STEPS, PlaceholderLeft, deployer_file, digit_deployer, digit_helmfile, gitops,
    helmfile_dir,
};
use crate::inventory::{Deployer, DigitFlow};

/// The commands that deploy the first environment, run from the handoff directory.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
    let mut blocked = None;
    let source = inputs.digit.as_ref().map(|d| shell_quote(&d.source.root.display().to_string()));
    let deployer = match (inputs.deployer, inputs.digit.as_ref().map(|d| d.flow), &source) {
        (_, None, _) | (_, _, None) => {
            blocked = Some(
                "handoff.digit is not set, so no DIGIT environment files were written; set handoff.digit.source to your checkout of DIGIT's deploy-as-code"
                    .to_string(),
            );
            "helmfile"
        }
        (Deployer::Argocd, Some(_), _) | (Deployer::Flux, Some(_), _) => {
            if let Some(reason) = gitops::unsupported(inputs) {
                blocked = Some(reason.to_string());
            } else if inputs.gitops.is_none() {
                blocked = Some(
                    "handoff.gitops is not set, so there is no ArgoCD Application to apply; add handoff.gitops.repository (and path, revision) to the inventory"
                        .to_string(),
                );
            } else {
                commands.push(format!("kubectl apply -f {}", gitops::argocd_file(&env).display()));
                programs.push("kubectl");
            }
            "kubectl"
        }
        (_, Some(DigitFlow::Helmfile), Some(root)) => {
            let dir = helmfile_dir(&env);
            if encrypting {
                commands.push(format!("cp {} {root}/charts/environments/", dir.join(digit_helmfile::VALUES).display()));
                commands.push(format!(
                    "sops -d {} > {root}/charts/environments/{}",
                    dir.join(digit_helmfile::SECRETS).display(),
                    digit_helmfile::SECRETS
                ));
                programs.push("sops");
            } else {
                commands.push(format!(
                    "cp {} {} {root}/charts/environments/",
                    dir.join(digit_helmfile::VALUES).display(),
                    dir.join(digit_helmfile::SECRETS).display()
                ));
            }
            commands.push(format!(
                "helmfile -f {root}/{} -e {} apply",
                crate::digit::TOP_HELMFILE,
                digit_helmfile::HELMFILE_ENVIRONMENT
            ));
            programs.extend(["helmfile", "helm"]);
            "helmfile"
        }
        (_, Some(DigitFlow::Deployer), Some(root)) => {
            let mut copy = format!("cp {}", deployer_file(&env, false).display());
            if has(files, &deployer_file(&env, true).display().to_string()) {
                let _ = write!(copy, " {}", deployer_file(&env, true).display());
            }
            commands.push(format!("{copy} {root}/deploy-as-code/helm/environments/"));
            commands.push(format!("cd {root}/deploy-as-code/deployer"));
            let mut charts = digit_deployer::charts_with_volumes(inputs.volumes.as_ref());
            if charts.is_empty() {
                charts = digit_deployer::CHARTS.iter().map(|(_, chart)| *chart).collect();
            }
            // The deployer's --helm-dir defaults to ../../config-as-code; the files are in ../helm.
            commands.push(format!("go run main.go deploy --helm-dir ../helm -e {env} -c '{}'", charts.join(",")));
            programs.push("go");
            "go"
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
        variables: Vec::new(),
        blocked,
    }
}

/// A path as one shell word.
fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
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
        STORAGE => "the default StorageClass and one PersistentVolume per DIGIT claim, pre-bound to it",
        DATABASE => "the namespace and `db-service`, a Service that points at the PostgreSQL host",
        SECRETS => "the iSCSI CHAP Secret the PersistentVolumes log in with",
        ".sops.yaml" => "sops creation rules, for `sops edit FILE`",
        super::REGISTRY => "the site registry's address and the registries every node pulls through it",
        super::REGISTRY_CA => "the CA that signed the site registry's certificate (the cluster CA)",
        _ if p.ends_with("/env.yaml") => {
            "your DIGIT env.yaml with groundwork's values filled in (replaces charts/environments/env.yaml)"
        }
        _ if p.ends_with("/env-secrets.yaml") => "your DIGIT env-secrets.yaml with groundwork's values filled in",
        _ if p.starts_with("digit/deployer/") && p.ends_with("-secrets.yaml") => {
            "DIGIT Go deployer secrets (copy to deploy-as-code/helm/environments/)"
        }
        _ if p.starts_with("digit/deployer/") => {
            "DIGIT Go deployer environment (copy to deploy-as-code/helm/environments/)"
        }
        _ if p.ends_with("/argocd-application.yaml") => {
            "ArgoCD Application running digit-helmfile.yaml through the helmfile plugin"
        }
        _ => "",
    }
}

pub fn render(
    inputs: &HandoffInputs,
    files: &[(PathBuf, bool)],
    placeholders: &[PlaceholderLeft],
    encrypting: bool,
) -> String {
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
    registry_section(w, inputs);
    storage_section(w, inputs, files, encrypting);
    placeholders_section(w, placeholders);
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

fn registry_section(w: &mut String, inputs: &HandoffInputs) {
    let Some(r) = &inputs.registry else { return };
    let _ = writeln!(
        w,
        "## Images: the site registry\n\n\
         The registry at `{}` serves every node; pulls of {} go through it, under the images' own\n\
         names, so the charts need no edits. Load the images the services need before deploying:\n\n\
         ```sh\ngroundwork images push -i INVENTORY --from DIR   # docker save / OCI tarballs\n```\n",
        r.address,
        r.mirrors.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
    );
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
            "`{STATIC_CLASS}` is the default StorageClass and has no provisioner: nothing is downloaded\n\
             and nothing is made on demand. Each claim DIGIT's charts will make has its own volume on {}\n\
             ({}), pre-bound to it:\n",
            plan.host, plan.address
        );
        let _ = writeln!(w, "| claim | volume | size | class |\n|---|---|---|---|");
        for v in &plan.volumes {
            match &v.claim {
                Some(c) => {
                    let class = c.storage_class.clone().unwrap_or_else(|| STATIC_CLASS.to_string());
                    let _ = writeln!(
                        w,
                        "| `{}/{}` | `{}` | {} | `{class}` |",
                        c.namespace,
                        c.name,
                        v.name,
                        super::kubernetes::quantity(v.size).0
                    );
                }
                None if plan.volumes.iter().any(|v| v.claim.is_some()) => {
                    let _ = writeln!(
                        w,
                        "| (none: served, no PersistentVolume) | `{}` | {} | |",
                        v.name,
                        super::kubernetes::quantity(v.size).0
                    );
                }
                None => {
                    let _ = writeln!(
                        w,
                        "| (any claim of class `{STATIC_CLASS}`) | `{}` | {} | `{STATIC_CLASS}` |",
                        v.name,
                        super::kubernetes::quantity(v.size).0
                    );
                }
            }
        }
        let _ = writeln!(w);
    }
    let commands = manifest_commands(files, encrypting);
    if commands.is_empty() {
        let _ = writeln!(w, "Nothing to apply: the inventory has no `storage` or `database` section.\n");
    } else {
        let _ = writeln!(w, "```sh\n{}\n```\n", commands.join("\n"));
    }
}

fn placeholders_section(w: &mut String, placeholders: &[PlaceholderLeft]) {
    if placeholders.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "## Still to fill in\n\nDIGIT's files keep these placeholders; only the site knows their values. Edit them in\n\
         your checkout (or here, before copying); `groundwork handoff --strict` fails while any remain.\n"
    );
    for p in placeholders {
        let _ = writeln!(w, "- `{}` line {}: `{}`", p.file.display(), p.line, p.text);
    }
    let _ = writeln!(w);
}

fn deploy_section(w: &mut String, inputs: &HandoffInputs, script: &DeployScript) {
    let deployer = match (inputs.deployer, inputs.digit.as_ref().map(|d| d.flow)) {
        (Deployer::Argocd, _) => "ArgoCD",
        (Deployer::Flux, _) => "Flux",
        (_, Some(DigitFlow::Deployer)) => "DIGIT's Go deployer",
        _ => "DIGIT's Helmfile",
    };
    let _ = writeln!(w, "## 3. Deploy environment `{}` with {deployer}\n", script.environment);
    if let Some(reason) = &script.blocked {
        let _ = writeln!(w, "Not possible from these files: {reason}.\n");
        return;
    }
    deployer_caveats(w, inputs);
    match inputs.deployer {
        Deployer::Helm | Deployer::Digit => {
            let _ = writeln!(w, "The environment's files replace DIGIT's own in your checkout.");
            if let Some(digit) = inputs.digit.as_ref().filter(|d| d.flow == DigitFlow::Helmfile) {
                let root = shell_quote(&digit.source.root.display().to_string());
                let _ = writeln!(
                    w,
                    "What groundwork changed in yours, line by line:\n\n```sh\ndiff -u {root}/charts/environments/{} {}\n```\n",
                    digit_helmfile::VALUES,
                    helmfile_dir(&script.environment).join(digit_helmfile::VALUES).display()
                );
            }
            let _ = writeln!(w, "Then:\n");
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
    if inputs.deployer == Deployer::Helm && inputs.digit.as_ref().is_some_and(|d| d.flow == DigitFlow::Helmfile) {
        let _ = writeln!(
            w,
            "`env-secrets.yaml` holds the database passwords and the generated secrets: keep it out of Git\n\
             in the checkout (`echo charts/environments/env-secrets.yaml >> .git/info/exclude` there).\n"
        );
    }
    if script.programs.iter().any(|p| p == "sops")
        && inputs.digit.as_ref().is_some_and(|d| d.flow == DigitFlow::Helmfile)
    {
        let _ = writeln!(
            w,
            "DIGIT's helmfile reads `env-secrets.yaml` as plain values, so it is decrypted into your checkout\n\
             (`sops -d`); keep that copy out of Git.\n"
        );
    }
}

/// What DIGIT's digit-lts charts do that no value changes: said where the deployer flow is used.
fn deployer_caveats(w: &mut String, inputs: &HandoffInputs) {
    if inputs.digit.as_ref().is_some_and(|d| d.flow == DigitFlow::Deployer) {
        let _ = writeln!(
            w,
            "DIGIT's digit-lts charts make the iSCSI PersistentVolumes themselves from these values, at\n\
             LUN 0 with `readOnly: true` and (kafka-v2) `persistentVolumeReclaimPolicy: Recycle` written in\n\
             their templates: a read-only volume cannot be formatted or written, and iSCSI volumes cannot\n\
             be recycled. Change those two lines in your fork's persistent-volume templates first.\n"
        );
    }
}

fn gitops_preamble(w: &mut String, inputs: &HandoffInputs, script: &DeployScript) {
    let (Some(target), Some(digit)) = (&inputs.gitops, &inputs.digit) else { return };
    let env = &script.environment;
    let _ = writeln!(
        w,
        "ArgoCD runs DIGIT's helmfile through its helmfile Config Management Plugin (a sidecar of the\n\
         repo server registered as `{}`; install it once). First commit the environment's files to\n\
         {} on branch `{}`, as `{}/charts/environments/env.yaml` and `env-secrets.yaml`\n\
         (the secrets decrypted by the plugin, or kept out of Git and mounted), then:\n",
        gitops::HELMFILE_PLUGIN,
        target.repository,
        gitops::branch(target, env, digit.environments.len()),
        target.path.trim_end_matches('/'),
    );
}
