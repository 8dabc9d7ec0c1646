//! Turns YAML text into an [`Inventory`], or into one located diagnostic that says how to fix
//! the problem. serde's messages are rewritten for people editing a file: "unknown field" becomes
//! "unknown key ... did you mean", with the keys that are allowed there.

use std::path::Path;

use super::diagnostic::{Diagnostic, Diagnostics, Location, Severity};
use super::model::Inventory;
use super::source_map::{SourceMap, join_index, join_key};

/// Parses and deserialises; structural issues (duplicate keys, several documents) are errors too.
pub fn parse(file: &Path, text: &str) -> Result<(Inventory, SourceMap), Vec<Diagnostic>> {
    let mut diags = Diagnostics::new(file);
    let map = match SourceMap::build(text) {
        Ok(map) => map,
        Err((at, info)) => {
            diags.push(Severity::Error, at, "", format!("YAML syntax error: {info}"), Some(syntax_help(&info)));
            return Err(diags.sorted());
        }
    };
    for issue in &map.issues {
        diags.push(Severity::Error, issue.location, &issue.path, issue.message.clone(), Some(issue.help.clone()));
    }
    if map.get("").is_none() {
        diags.push(
            Severity::Error,
            Location::START,
            "",
            "the file is empty",
            Some("start from inventory/sdc-example.yaml, or run `groundwork schema` to see every key".into()),
        );
        return Err(diags.sorted());
    }

    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Inventory>(deserializer) {
        Ok(inventory) if !diags.has_errors() => Ok((inventory, map)),
        Ok(_) => Err(diags.sorted()),
        Err(err) => {
            let path = path_string(err.path());
            let inner = err.inner();
            let raw = strip_decorations(&inner.to_string());
            let (message, help, path) = explain(&raw, &path);
            let at = inner
                .location()
                .map(|l| Location { line: l.line().max(1), column: l.column().max(1) })
                .unwrap_or_else(|| map.locate(&path));
            diags.push(Severity::Error, at, &path, message, help);
            Err(diags.sorted())
        }
    }
}

fn path_string(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out = join_index(&out, *index),
            Segment::Map { key } => out = join_key(&out, key),
            Segment::Enum { variant } => out = join_key(&out, variant),
            Segment::Unknown => out = join_key(&out, "?"),
        }
    }
    out
}

/// serde_yaml_ng prefixes its own path and appends " at line L column C"; both are shown
/// separately, so they are removed from the message.
fn strip_decorations(message: &str) -> String {
    let mut m = message.trim();
    if let Some(i) = m.rfind(" at line ")
        && m[i..].contains(" column ")
    {
        m = &m[..i];
    }
    // "hosts[0].address: invalid type ..." -> "invalid type ..."
    if let Some((prefix, rest)) = m.split_once(": ")
        && !prefix.contains(' ')
        && !prefix.contains('`')
    {
        m = rest;
    }
    m.to_string()
}

/// Returns (message, help, path to report).
fn explain(raw: &str, path: &str) -> (String, Option<String>, String) {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (name, expected) = split_name_and_expected(rest);
        let parent = path.strip_suffix(name).map(|p| p.trim_end_matches('.')).unwrap_or(path);
        let where_ = if parent.is_empty() { "at the top level".to_string() } else { format!("in `{parent}`") };
        let help = suggestion_help(name, &expected, "keys allowed here");
        return (format!("unknown key `{name}` {where_}"), Some(help), path.to_string());
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (name, expected) = split_name_and_expected(rest);
        let help = suggestion_help(name, &expected, "allowed values");
        return (format!("`{name}` is not an allowed value"), Some(help), path.to_string());
    }
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let full = join_key(path, name);
        let where_ = if path.is_empty() { "at the top level".to_string() } else { format!("under `{path}`") };
        return (
            format!("required key `{name}` is missing"),
            Some(format!("add `{name}:` {where_}; `groundwork schema` describes it")),
            full,
        );
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        return (
            format!("expected {expected}, found {found}"),
            Some(format!("write {expected} here; `groundwork schema` describes `{path}`")),
            path.to_string(),
        );
    }
    if raw.starts_with("invalid length") || raw.starts_with("invalid value") {
        return (raw.to_string(), Some(format!("`groundwork schema` describes `{path}`")), path.to_string());
    }
    // Messages from the inventory's own value types carry their advice after "; ".
    match raw.split_once("; ") {
        Some((message, advice)) => (message.to_string(), Some(advice.to_string()), path.to_string()),
        None => (raw.to_string(), Some(format!("`groundwork schema` describes `{path}`")), path.to_string()),
    }
}

/// "adress`, expected one of `name`, `address`" -> ("adress", ["name", "address"])
fn split_name_and_expected(rest: &str) -> (&str, Vec<&str>) {
    let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let expected = tail.split('`').skip(1).step_by(2).collect();
    (name, expected)
}

fn suggestion_help(name: &str, expected: &[&str], what: &str) -> String {
    let list = expected.join(", ");
    match super::suggest::closest(name, expected.iter().copied()) {
        Some(best) => format!("did you mean `{best}`? {what}: {list}"),
        None if expected.is_empty() => "remove it".into(),
        None => format!("{what}: {list}"),
    }
}

fn syntax_help(info: &str) -> String {
    if info.contains("tab") {
        "YAML indents with spaces, never tabs".into()
    } else if info.contains("mapping values are not allowed") || info.contains("did not find expected key") {
        "check the indentation of this line against the lines above it, and that values containing `: ` are quoted"
            .into()
    } else {
        "check quoting, brackets and indentation around this point".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorations_are_stripped() {
        assert_eq!(
            strip_decorations("hosts[0]: unknown field `adress`, expected `name` at line 5 column 7"),
            "unknown field `adress`, expected `name`"
        );
        assert_eq!(
            strip_decorations("invalid type: string \"x\", expected u16"),
            "invalid type: string \"x\", expected u16"
        );
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let (msg, help, _) =
            explain("unknown field `adress`, expected one of `name`, `address`, `roles`", "hosts[0].adress");
        assert_eq!(msg, "unknown key `adress` in `hosts[0]`");
        assert_eq!(help.unwrap(), "did you mean `address`? keys allowed here: name, address, roles");
    }
}
