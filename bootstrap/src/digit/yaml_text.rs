//! Edits of an operator's YAML file that keep everything else byte for byte: comments, order,
//! quoting, blank lines. DIGIT's environment files are long, commented and hand-kept; a handoff
//! that re-serialised them would turn every `diff` against the operator's own file into noise.
//!
//! Hand-written rather than a crate: the maintained YAML crates (serde_yaml_ng, saphyr) drop
//! comments, and the lossless editors are young. The subset needed is small (block mappings,
//! scalars, block scalars skipped as opaque), and every edit is checked by parsing the result
//! with serde_yaml_ng (`DigitSource` callers verify the values they set).

use std::fmt;

/// A YAML document as lines, with edits that touch only the lines they must.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlText {
    lines: Vec<String>,
    trailing_newline: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("`{path}` (line {line}) holds a mapping or a list, not a single value")]
    NotScalar { path: String, line: usize },
    #[error("the edited file does not parse: {0}")]
    Unparsable(String),
    #[error("`{0}` did not read back as set")]
    NotReadBack(String),
}

/// One `<placeholder>` left in a value, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub line: usize,
    pub text: String,
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.text)
    }
}

/// A mapping key found on a line: its indentation, name and where its value starts.
#[derive(Debug)]
struct KeyLine {
    indent: usize,
    key: String,
    /// Byte offset of the value (after `key:` and spaces) in the line.
    value_at: usize,
    /// Byte offset of a trailing ` # comment`, if any.
    comment_at: Option<usize>,
}

impl YamlText {
    pub fn parse(text: &str) -> Self {
        YamlText {
            lines: text.lines().map(str::to_string).collect(),
            trailing_newline: text.ends_with('\n') || text.is_empty(),
        }
    }

    pub fn text(&self) -> String {
        let mut out = self.lines.join("\n");
        if self.trailing_newline {
            out.push('\n');
        }
        out
    }

    /// Sets the scalar at `path` to `value` (a YAML scalar, already quoted as needed). An existing
    /// line keeps its indentation and its comment; a missing key is added at the end of the
    /// deepest mapping of `path` that exists, creating the mappings between.
    pub fn set(&mut self, path: &[&str], value: &str) -> Result<(), EditError> {
        let (found, depth_found, parent_end, child_indent) = self.locate(path);
        if let Some(index) = found {
            let key = self.key_line(index).expect("located lines are keys");
            let end = self.block_end(index, key.indent);
            if end > index + 1 {
                // A block list may be replaced by a flow list; a mapping is never overwritten.
                let only_items = self.lines[index + 1..end].iter().all(|l| {
                    let t = l.trim_start();
                    t.is_empty() || t.starts_with('#') || t.starts_with("- ") || t == "-"
                });
                if !(value.starts_with('[') && only_items && key.value_at >= self.lines[index].trim_end().len()) {
                    return Err(EditError::NotScalar { path: path.join("."), line: index + 1 });
                }
                self.lines.drain(index + 1..end);
            }
            let line = &self.lines[index];
            let comment = key.comment_at.map(|at| line[at..].to_string()).unwrap_or_default();
            let value = same_quoting(&line[key.value_at..], value);
            let head = &line[..key.value_at];
            let sep = if head.ends_with(':') { " " } else { "" };
            self.lines[index] = format!("{head}{sep}{value}{comment}");
            return Ok(());
        }
        let mut insert = Vec::new();
        for (offset, key) in path[depth_found..].iter().enumerate() {
            let indent = child_indent.0 + offset * child_indent.1;
            let last = depth_found + offset + 1 == path.len();
            let key = quote_key(key);
            insert.push(if last {
                format!("{}{key}: {value}", " ".repeat(indent))
            } else {
                format!("{}{key}:", " ".repeat(indent))
            });
        }
        self.lines.splice(parent_end..parent_end, insert);
        Ok(())
    }

    /// Sets every (key path, YAML value) of `edits`, then parses the result and checks that each
    /// path reads back as its value: an edit this line editor got wrong is an error, never a file.
    pub fn set_all<K: AsRef<str>>(&mut self, edits: &[(Vec<K>, String)]) -> Result<(), EditError> {
        for (path, value) in edits {
            let keys: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
            self.set(&keys, value)?;
        }
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&self.text()).map_err(|e| EditError::Unparsable(e.to_string()))?;
        for (path, value) in edits {
            let want: Option<serde_yaml_ng::Value> = serde_yaml_ng::from_str(value).ok();
            let got = path.iter().try_fold(&doc, |node, key| node.get(key.as_ref()));
            if want.is_none() || got != want.as_ref() {
                let keys: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
                return Err(EditError::NotReadBack(keys.join(".")));
            }
        }
        Ok(())
    }

    /// Removes the key at `path` and everything under it; says whether it was there.
    pub fn remove(&mut self, path: &[&str]) -> bool {
        let (found, ..) = self.locate(path);
        let Some(index) = found else { return false };
        let indent = self.key_line(index).expect("located lines are keys").indent;
        let end = self.block_end(index, indent);
        self.lines.drain(index..end);
        true
    }

    /// Replaces `from` by `to` in every value (comments are left as they are), block scalars
    /// included; returns how many lines changed.
    pub fn replace_in_values(&mut self, from: &str, to: &str) -> usize {
        let mut changed = 0;
        for line in &mut self.lines {
            let end = value_end(line);
            if line[..end].contains(from) {
                let replaced = line[..end].replace(from, to);
                *line = format!("{replaced}{}", &line[end..]);
                changed += 1;
            }
        }
        changed
    }

    /// Every `<word_word>` placeholder left in a value (DIGIT's convention: lower-case words
    /// joined by `_`, e.g. `<db_host>`; HTML such as `<head>` has no `_` and is not one).
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut found = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let value = &line[..value_end(line)];
            let mut rest = value;
            while let Some(start) = rest.find('<') {
                let after = &rest[start + 1..];
                match after.find('>') {
                    Some(end) if is_placeholder_word(&after[..end]) => {
                        found.push(Placeholder { line: i + 1, text: format!("<{}>", &after[..end]) });
                        rest = &after[end + 1..];
                    }
                    _ => rest = after,
                }
            }
        }
        found
    }

    /// (line of `path` if present, how many of its keys exist, where to insert the rest, and
    /// (indent of the first missing key, indent step)).
    fn locate(&self, path: &[&str]) -> (Option<usize>, usize, usize, (usize, usize)) {
        let mut start = 0;
        let mut end = self.lines.len();
        let mut parent_indent: Option<usize> = None;
        let mut step = 2;
        for (depth, key) in path.iter().enumerate() {
            let mut found = None;
            let mut child_indent = None;
            let mut i = start;
            while i < end {
                let Some(k) = self.key_line(i) else {
                    i += 1;
                    continue;
                };
                let is_child = match parent_indent {
                    None => k.indent == child_indent.unwrap_or(k.indent),
                    Some(p) => k.indent > p && k.indent == child_indent.unwrap_or(k.indent),
                };
                if is_child {
                    child_indent.get_or_insert(k.indent);
                    if k.key == *key {
                        found = Some((i, k.indent));
                        break;
                    }
                }
                i = self.block_end(i, k.indent);
            }
            match found {
                Some((line, indent)) => {
                    if let Some(p) = parent_indent {
                        step = indent - p;
                    }
                    if depth + 1 == path.len() {
                        return (Some(line), depth + 1, line + 1, (indent, step));
                    }
                    parent_indent = Some(indent);
                    start = line + 1;
                    end = self.block_end(line, indent);
                }
                None => {
                    let indent = child_indent.unwrap_or_else(|| parent_indent.map_or(0, |p| p + step));
                    // After the parent's last non-blank line, so blank separators stay below.
                    let mut insert_at = end;
                    while insert_at > start && self.lines[insert_at - 1].trim().is_empty() {
                        insert_at -= 1;
                    }
                    if parent_indent.is_none() {
                        insert_at = end;
                    }
                    return (None, depth, insert_at, (indent, step));
                }
            }
        }
        unreachable!("the loop returns for the last key")
    }

    /// The first line after the block that starts at `line` (a key at `indent`): its more
    /// indented lines, blank and comment lines among them.
    fn block_end(&self, line: usize, indent: usize) -> usize {
        let mut end = line + 1;
        let mut last_content = line + 1;
        while end < self.lines.len() {
            let l = &self.lines[end];
            let trimmed = l.trim_start();
            if trimmed.is_empty() || (trimmed.starts_with('#') && leading_spaces(l) > indent) {
                end += 1;
                continue;
            }
            if trimmed.starts_with('#') || leading_spaces(l) <= indent {
                // A list under a key may sit at the key's own indentation.
                if leading_spaces(l) == indent && trimmed.starts_with("- ") && self.key_line(line).is_some() {
                    end += 1;
                    last_content = end;
                    continue;
                }
                break;
            }
            end += 1;
            last_content = end;
        }
        last_content
    }

    fn key_line(&self, i: usize) -> Option<KeyLine> {
        parse_key_line(&self.lines[i])
    }
}

fn leading_spaces(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_placeholder_word(word: &str) -> bool {
    let mut parts = word.split('_');
    let first = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    ok(first) && first.starts_with(|c: char| c.is_ascii_lowercase()) && !rest.is_empty() && rest.iter().all(|p| ok(p))
}

fn quote_key(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// `key: value  # comment` → the key. Lines that are comments, list items or not `key:` give None.
fn parse_key_line(line: &str) -> Option<KeyLine> {
    let indent = leading_spaces(line);
    let rest = &line[indent..];
    if rest.is_empty() || rest.starts_with('#') || rest.starts_with('-') || rest.starts_with("---") {
        return None;
    }
    let (key, after_key) = if let Some(q) = rest.strip_prefix('"') {
        let end = q.find('"')?;
        (q[..end].to_string(), indent + 1 + end + 1)
    } else if let Some(q) = rest.strip_prefix('\'') {
        let end = q.find('\'')?;
        (q[..end].to_string(), indent + 1 + end + 1)
    } else {
        let colon = find_key_colon(rest)?;
        (rest[..colon].trim_end().to_string(), indent + colon)
    };
    let tail = &line[after_key..];
    let tail = tail.strip_prefix(':')?;
    if !(tail.is_empty() || tail.starts_with(' ') || tail.starts_with('\t')) {
        return None;
    }
    let value_at = after_key + 1 + (tail.len() - tail.trim_start().len());
    let end = value_end(line);
    let comment_at = (end < line.len()).then_some(end);
    Some(KeyLine { indent, key, value_at: value_at.min(end.max(after_key + 1)), comment_at })
}

/// The first `:` followed by a space or the end of line, outside quotes.
fn find_key_colon(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t') {
            return Some(i);
        }
        if b == b'#' && i > 0 && bytes[i - 1] == b' ' {
            return None;
        }
    }
    None
}

/// Where a line's value ends: at a ` #` comment outside quotes, else the line's end (trailing
/// spaces before the comment belong to it).
fn value_end(line: &str) -> usize {
    let bytes = line.as_bytes();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if double => i += 1,
            b'"' if !single => double = !double,
            b'\'' if !double => single = !single,
            b'#' if !single && !double && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => {
                let mut start = i;
                while start > 0 && (bytes[start - 1] == b' ' || bytes[start - 1] == b'\t') {
                    start -= 1;
                }
                return start;
            }
            _ => {}
        }
        i += 1;
    }
    line.len()
}

/// `value` (a YAML scalar) quoted the way the value it replaces was, so a diff shows only the
/// value: a double-quoted old value gets a double-quoted new one (JSON's escapes are YAML's).
fn same_quoting(old: &str, value: &str) -> String {
    let Ok(serde_yaml_ng::Value::String(text)) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(value) else {
        return value.to_string();
    };
    if old.starts_with('"') {
        serde_json::to_string(&text).unwrap_or_else(|_| value.to_string())
    } else if old.starts_with('\'') {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        value.to_string()
    }
}

/// A string as a YAML scalar (plain when that is safe, quoted otherwise).
pub fn scalar(value: &str) -> String {
    let yaml = serde_yaml_ng::to_string(value).expect("a string serialises");
    yaml.trim_end_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "global:\n  domain: <domain_name> ## your domain\n\nconfigmaps:\n  egov-config:\n    data:\n      db-host: <db_host> ## db\n      host-map: \"{'<tenant_id>':'https://<domain_name>/'}\" # keep\n\nsecrets:\n    db:\n        username: <db_username>\n    git-sync:\n        ssh: |-\n            -----BEGIN-----\n            abc: def\n        known_hosts: x\n";

    #[test]
    fn a_value_is_replaced_and_its_comment_kept() {
        let mut y = YamlText::parse(DOC);
        y.set(&["global", "domain"], "digit.example.in").unwrap();
        y.set(&["configmaps", "egov-config", "data", "db-host"], "db-service.egov").unwrap();
        let text = y.text();
        assert!(text.contains("  domain: digit.example.in ## your domain\n"), "{text}");
        assert!(text.contains("      db-host: db-service.egov ## db\n"), "{text}");
        y.set(&["configmaps", "egov-config", "data", "host-map"], &scalar("{'pg':'https://x/'}")).unwrap();
        assert!(y.text().contains("      host-map: \"{'pg':'https://x/'}\" # keep\n"), "{}", y.text());
        assert_eq!(text.lines().count(), DOC.lines().count());
    }

    #[test]
    fn missing_keys_are_added_under_the_deepest_existing_parent_with_its_indentation() {
        let mut y = YamlText::parse(DOC);
        y.set(&["secrets", "db", "flywayUsername"], "owner").unwrap();
        y.set(&["secrets", "kafka", "clusterID"], "abc").unwrap();
        y.set(&["root-ingress", "cert-issuer"], "site-ca").unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&y.text()).unwrap();
        assert_eq!(v["secrets"]["db"]["flywayUsername"].as_str(), Some("owner"));
        assert_eq!(v["secrets"]["db"]["username"].as_str(), Some("<db_username>"));
        assert_eq!(v["secrets"]["kafka"]["clusterID"].as_str(), Some("abc"));
        assert_eq!(v["root-ingress"]["cert-issuer"].as_str(), Some("site-ca"));
        assert!(y.text().contains("\n        flywayUsername: owner\n"), "{}", y.text());
        assert_eq!(v["secrets"]["git-sync"]["known_hosts"].as_str(), Some("x"));
    }

    #[test]
    fn keys_inside_a_block_scalar_are_not_keys() {
        let mut y = YamlText::parse(DOC);
        y.set(&["secrets", "git-sync", "abc"], "z").unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&y.text()).unwrap();
        assert_eq!(v["secrets"]["git-sync"]["abc"].as_str(), Some("z"));
        assert!(v["secrets"]["git-sync"]["ssh"].as_str().unwrap().contains("abc: def"));
    }

    #[test]
    fn set_all_reads_every_value_back() {
        let mut y = YamlText::parse(DOC);
        let edits = [
            (vec!["global", "domain"], scalar("d.in")),
            (vec!["secrets", "kafka", "clusterID"], scalar("x: y")),
            (vec!["secrets", "db", "list"], "[a, 'b c']".to_string()),
        ];
        y.set_all(&edits).unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&y.text()).unwrap();
        assert_eq!(v["secrets"]["kafka"]["clusterID"].as_str(), Some("x: y"));
        assert_eq!(v["secrets"]["db"]["list"][1].as_str(), Some("b c"));
        // A value that is not YAML leaves a file that does not parse: an error, not a file.
        let bad = [(vec!["global", "domain"], "[unclosed".to_string())];
        assert!(matches!(YamlText::parse(DOC).set_all(&bad), Err(EditError::Unparsable(_))));
    }

    #[test]
    fn a_key_and_its_block_are_removed() {
        let mut y = YamlText::parse(
            "kafka:\n  persistence:\n    aws:\n      - volumeId: x\n        zone: z\n    enabled: true\n",
        );
        assert!(y.remove(&["kafka", "persistence", "aws"]));
        assert!(!y.remove(&["kafka", "persistence", "azure"]));
        assert_eq!(y.text(), "kafka:\n  persistence:\n    enabled: true\n");
    }

    #[test]
    fn a_block_list_becomes_a_flow_list() {
        let mut y = YamlText::parse("kafka:\n  iqn:\n    - a\n    - b\n  size: 1\n");
        y.set(&["kafka", "iqn"], "[x, y, z]").unwrap();
        assert_eq!(y.text(), "kafka:\n  iqn: [x, y, z]\n  size: 1\n");
    }

    #[test]
    fn a_mapping_is_not_overwritten_by_a_scalar() {
        let mut y = YamlText::parse(DOC);
        assert!(matches!(y.set(&["secrets", "db"], "x"), Err(EditError::NotScalar { line: 11, .. })));
    }

    #[test]
    fn placeholders_are_found_in_values_not_comments_and_replaced() {
        let mut y = YamlText::parse(DOC);
        let found: Vec<String> = y.placeholders().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            found,
            [
                "line 2: <domain_name>",
                "line 7: <db_host>",
                "line 8: <tenant_id>",
                "line 8: <domain_name>",
                "line 12: <db_username>"
            ]
        );
        assert_eq!(y.replace_in_values("<domain_name>", "d.in"), 2);
        assert!(y.text().contains("'https://d.in/'"));
        assert!(!YamlText::parse("x: '<head>' # <not_me>\n").placeholders().iter().any(|_| true));
    }

    #[test]
    fn scalars_are_quoted_when_yaml_needs_it() {
        assert_eq!(scalar("abc"), "abc");
        assert_eq!(scalar("true"), "'true'");
        assert_eq!(scalar("a: b"), "'a: b'");
    }
}
