//! The templates in `playbooks/templates/`, compiled into the binary (so the controller needs no
//! files beside it) and rendered with tera. An operator reads exactly what is written to a node
//! in those files.

use std::sync::OnceLock;

use serde::Serialize;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../playbooks/templates/", $name, ".tera")))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "containerd-config.toml",
    "kubelet.service",
    "kubelet-kubeadm.conf",
    "etcd.service",
    "etcd-backup.sh",
    "etcd-backup.service",
    "etcd-backup.timer",
    "haproxy.cfg",
    "keepalived.conf",
    "check-apiserver.sh",
    "kubeadm-init.yaml",
    "kubeadm-join.yaml",
    "cni-bridge.conflist",
    "pod-routes.sh",
    "groundwork-pod-routes.service",
    "tgt-targets.conf",
    "tgt-groundwork.conf",
    "ganesha.conf",
    "nfs-exports",
    "iscsid.conf",
    "postgresql.conf",
    "pg_hba.conf",
    "pg-backup.sh",
    "pg-backup.service",
    "pg-backup.timer",
    "registry-config.yml",
];

#[derive(Debug, thiserror::Error)]
#[error("template playbooks/templates/{name}.tera: {message}")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

fn engine() -> &'static tera::Tera {
    static ENGINE: OnceLock<tera::Tera> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut t = tera::Tera::default();
        t.autoescape_on(vec![]);
        t.add_raw_templates(TEMPLATES.iter().copied()).expect("the built-in templates parse (a unit test checks it)");
        t
    })
}

/// Renders template `name` (without `.tera`) with `values`.
pub fn render(name: &str, values: &impl Serialize) -> Result<String, TemplateError> {
    let err = |message: String| TemplateError { name: name.to_string(), message };
    let ctx = tera::Context::from_serialize(values).map_err(|e| err(e.to_string()))?;
    engine().render(name, &ctx).map_err(|e| {
        // tera hides the cause (a missing variable, say) in the source chain.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        err(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_directory_the_binary_and_the_playbooks_readme_agree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir.join("templates"))
            .expect("playbooks/templates")
            .map(|e| e.expect("entry").file_name().to_string_lossy().trim_end_matches(".tera").to_string())
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = TEMPLATES.iter().map(|(n, _)| n.to_string()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled, "a template in playbooks/templates/ is not compiled in, or the other way round");
        let readme = std::fs::read_to_string(dir.join("README.md")).expect("playbooks/README.md");
        for name in &compiled {
            assert!(readme.contains(&format!("`{name}`")), "playbooks/README.md does not list {name}");
        }
    }

    #[test]
    fn every_template_parses_and_a_missing_value_is_named() {
        assert_eq!(engine().get_template_names().count(), TEMPLATES.len());
        let err = render("etcd.service", &serde_json::json!({})).unwrap_err().to_string();
        assert!(err.contains("etcd.service.tera") && err.contains("name"), "{err}");
    }

    #[test]
    fn extra_args_continue_the_etcd_command_line_and_go_into_kubeadms_api_server() {
        let etcd = |args: serde_json::Value| {
            render(
                "etcd.service",
                &serde_json::json!({"name": "m1", "address": "10.0.0.1", "cluster": "c", "initial_env": "/e", "extra_args": args}),
            )
            .unwrap()
        };
        let plain = etcd(serde_json::json!({}));
        assert!(plain.contains("--snapshot-count=10000\nRestart=always"), "{plain}");
        let more = etcd(serde_json::json!({"quota-backend-bytes": "4294967296", "heartbeat-interval": "200"}));
        assert!(
            more.contains(
                "--snapshot-count=10000 \\\n  --heartbeat-interval=200 \\\n  --quota-backend-bytes=4294967296\nRestart"
            ),
            "{more}"
        );

        let init = |token: Option<&str>, args: serde_json::Value, takes_workloads: bool| {
            render(
                "kubeadm-init.yaml",
                &serde_json::json!({
                    "phase": "apiserver", "token": token, "address": "10.0.0.1", "name": "m1", "api_port": 6443,
                    "skip_phases": [], "cluster": "c", "kubernetes_version": "v1.33.3", "endpoint": "127.0.0.1:6444",
                    "pod_cidr": "10.244.0.0/16", "service_cidr": "10.96.0.0/12", "cert_sans": ["127.0.0.1"],
                    "api_server_args": args, "external_etcd": false, "etcd_endpoints": [], "cgroup_driver": "systemd",
                    "kubelet": {}, "takes_workloads": takes_workloads,
                }),
            )
            .unwrap()
        };
        let without = init(None, serde_json::json!({}), false);
        assert!(!without.contains("bootstrapTokens") && !without.contains("extraArgs"), "{without}");
        assert!(without.contains("kind: InitConfiguration\nlocalAPIEndpoint:"), "{without}");
        // kubeadm's default control-plane taint unless the master is also a worker.
        assert!(without.contains("      value: 10.0.0.1\n\n---") && !without.contains("taints"), "{without}");
        let worker_too = init(None, serde_json::json!({}), true);
        assert!(worker_too.contains("      value: 10.0.0.1\n  # This master"), "{worker_too}");
        assert!(worker_too.contains("\n  taints: []\n\n---"), "{worker_too}");
        let with = init(Some("abcdef.0123456789abcdef"), serde_json::json!({"event-ttl": "2h"}), false);
        assert!(with.contains("bootstrapTokens:\n  - token: \"abcdef.0123456789abcdef\""), "{with}");
        assert!(with.contains("  extraArgs:\n    - name: event-ttl\n      value: \"2h\"\n"), "{with}");
    }
}
