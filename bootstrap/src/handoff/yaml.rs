//! YAML output: one document per value, documents joined with `---` as kubectl and sops read them.

use serde::Serialize;

use super::HandoffError;

pub fn document<T: Serialize>(what: &str, value: &T) -> Result<String, HandoffError> {
    serde_yaml_ng::to_string(value)
        .map_err(|e| HandoffError::Serialize { what: what.to_string(), message: e.to_string() })
}

pub fn documents(docs: &[String]) -> String {
    docs.iter().map(|d| format!("---\n{d}")).collect()
}
