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
    "haproxy.cfg",
    "keepalived.conf",
    "check-apiserver.sh",
    "kubeadm-init.yaml",
    "kubeadm-join.yaml",
    "cni-bridge.conflist",
    "pod-routes.sh",
    "groundwork-pod-routes.service",
    "tgt-targets.conf",
    "ganesha.conf",
    "nfs-exports",
    "iscsid.conf",
    "postgresql.conf",
    "pg_hba.conf",
    "pg-backup.sh",
    "pg-backup.service",
    "pg-backup.timer",
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
    fn every_template_parses_and_a_missing_value_is_named() {
        assert_eq!(engine().get_template_names().count(), TEMPLATES.len());
        let err = render("etcd.service", &serde_json::json!({})).unwrap_err().to_string();
        assert!(err.contains("etcd.service.tera") && err.contains("name"), "{err}");
    }
}
