//! DIGIT's helmfile state files, read for what groundwork must know without a Go template engine:
//! the releases (name, namespace, chart, installed, values list). Template actions are replaced
//! by opaque markers before the YAML is parsed; `{{ .Values | toYaml ... }}` (the environment
//! values passed whole to a release) is recognised, and so is an `installed:` that is a literal.
//! What a template computes is not known here; the tests render the same files with real Helm and
//! compare.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::DigitError;

/// The marker for `{{ .Values | toYaml | nindent N }}`: the whole environment values.
pub const ENV_VALUES: &str = "__groundwork_environment_values__";
const OPAQUE: &str = "__groundwork_template__";

#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    /// The chart directory, absolute (None for a chart from a repository, e.g. `grafana/loki`).
    pub chart: Option<PathBuf>,
    /// `installed:` when it is a literal; a templated one counts as installed.
    pub installed: bool,
    pub values: Vec<ValuesItem>,
    /// The state file, relative to the deploy-as-code directory.
    pub state_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValuesItem {
    File(PathBuf),
    EnvironmentValues,
    Inline(Value),
}

/// The releases of `digit-helmfile.yaml` and every sub-helmfile it lists, in order.
pub fn releases(root: &Path) -> Result<Vec<Release>, DigitError> {
    let top = root.join(super::TOP_HELMFILE);
    let mut out = Vec::new();
    for doc in documents(&top)? {
        let Some(list) = doc.get("helmfiles").and_then(Value::as_sequence) else { continue };
        for entry in list {
            let Some(path) = entry.get("path").and_then(Value::as_str).or_else(|| entry.as_str()) else { continue };
            let file = normalize(&root.join(path));
            let relative = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
            for doc in documents(&file)? {
                out.extend(releases_of(&doc, &file, &relative));
            }
        }
    }
    Ok(out)
}

fn releases_of(doc: &Value, file: &Path, relative: &Path) -> Vec<Release> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let Some(list) = doc.get("releases").and_then(Value::as_sequence) else { return vec![] };
    list.iter()
        .filter_map(|r| {
            let name = r.get("name")?.as_str()?.to_string();
            let chart = r.get("chart").and_then(Value::as_str).map(|c| c.replace(OPAQUE, &name));
            let chart = chart.filter(|c| c.starts_with('.') || c.starts_with('/')).map(|c| normalize(&dir.join(c)));
            let installed = !matches!(r.get("installed"), Some(Value::Bool(false)));
            let values = r
                .get("values")
                .and_then(Value::as_sequence)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| match item {
                            Value::String(s) if s == ENV_VALUES => Some(ValuesItem::EnvironmentValues),
                            Value::String(s) if !s.contains(OPAQUE) => Some(ValuesItem::File(normalize(&dir.join(s)))),
                            Value::Mapping(_) => Some(ValuesItem::Inline(item.clone())),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Release {
                namespace: r.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string(),
                name,
                chart,
                installed,
                values,
                state_file: relative.to_path_buf(),
            })
        })
        .collect()
}

/// A state file's YAML documents, template actions made opaque and merge keys (`<<: *default`)
/// applied.
fn documents(path: &Path) -> Result<Vec<Value>, DigitError> {
    let text = std::fs::read_to_string(path).map_err(|source| DigitError::Read { path: path.to_path_buf(), source })?;
    let text = without_templates(&text);
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let mut value = <Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| DigitError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        value.apply_merge().map_err(|e| DigitError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Template comments and lines that hold only actions (`{{- if }}`, `{{- end }}`) go; the
/// environment-values action becomes `ENV_VALUES`; any other action becomes `OPAQUE`.
fn without_templates(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Comments first: they may span lines and hold `{{` in prose.
    let mut uncommented = String::with_capacity(text.len());
    while let Some(start) = rest.find("{{") {
        let after = &rest[start..];
        let inner = after[2..].trim_start_matches('-').trim_start();
        if inner.starts_with("/*")
            && let Some(end) = after.find("*/")
        {
            let close = after[end..].find("}}").map(|c| end + c + 2).unwrap_or(after.len());
            uncommented.push_str(&rest[..start]);
            rest = &after[close..];
            continue;
        }
        uncommented.push_str(&rest[..start + 2]);
        rest = &rest[start + 2..];
    }
    uncommented.push_str(rest);
    for line in uncommented.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("{{") && trimmed.ends_with("}}") && trimmed.matches("{{").count() == 1 {
            let inner = trimmed.trim_start_matches("{{").trim_start_matches('-').trim();
            let is_output = inner.starts_with(".Values |") && inner.contains("toYaml");
            if !is_output {
                continue;
            }
        }
        out.push_str(&replace_actions(line));
        out.push('\n');
    }
    out
}

fn replace_actions(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        // `{{` + backquoted raw string + `}}` nests braces: take the raw string's end.
        let end = if after[2..].trim_start().starts_with('`') {
            after[3..].find('`').and_then(|b| after[3 + b..].find("}}").map(|e| 3 + b + e + 2))
        } else {
            after.find("}}").map(|e| e + 2)
        };
        let Some(end) = end else {
            out.push_str(after);
            return out;
        };
        let action = &after[..end];
        let inner = action.trim_start_matches("{{").trim_end_matches("}}").trim_matches('-').trim();
        if inner.starts_with(".Values |") && inner.contains("toYaml") {
            out.push_str(ENV_VALUES);
        } else {
            out.push_str(OPAQUE);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                // `..` cancels a name before it; at the start of a relative path it stays.
                if matches!(out.components().next_back(), Some(std::path::Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() || out.components().count() > 1 {
                    out.push("..");
                }
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_actions_become_markers_and_control_lines_go() {
        let text = "{{- /* a {{ comment }}\n spanning */}}\nreleases:\n{{- if true }}\n- name: a\n  chart: ./{{`{{ .Release.Name }}`}}\n  installed: false\n  values:\n    - ./a/values.yaml\n    - {{ .Values | toYaml | nindent 8 }}\n    - secret:\n        password: {{ .Values.secrets.x }}\n{{- end }}\n";
        let cleaned = without_templates(text);
        let doc: Value = serde_yaml_ng::from_str(&cleaned).expect(&cleaned);
        let rel = releases_of(&doc, Path::new("/d/charts/x/h.yaml"), Path::new("charts/x/h.yaml"));
        assert_eq!(rel.len(), 1);
        assert_eq!(rel[0].chart.as_deref(), Some(Path::new("/d/charts/x/a")));
        assert!(!rel[0].installed);
        assert_eq!(rel[0].values[0], ValuesItem::File("/d/charts/x/a/values.yaml".into()));
        assert_eq!(rel[0].values[1], ValuesItem::EnvironmentValues);
        assert!(matches!(rel[0].values[2], ValuesItem::Inline(_)));
    }

    #[test]
    fn relative_paths_keep_their_leading_parents() {
        assert_eq!(normalize(Path::new("inventory/../../shared/x/./y")), Path::new("../shared/x/y"));
        assert_eq!(normalize(Path::new("/a/b/../c")), Path::new("/a/c"));
    }
}
