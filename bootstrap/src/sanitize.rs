//! Text that comes from a node or the API server is untrusted: a compromised node could send
//! terminal escape sequences (move the cursor, rewrite earlier lines, set the window title) or
//! forge whole report lines. Everything such text carries into the controller passes through
//! here where it enters (agent answers, command output, API responses), so printing code never
//! has to think about it.

/// Multi-line text (diffs, command output): every control character except `\n` and `\t` is
/// dropped (`\r` too: it would let a line overwrite the one before it).
pub fn text(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.to_string();
    }
    s.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect()
}

/// One line for a report (a summary, a note): line breaks and tabs become spaces, other control
/// characters are dropped.
pub fn line(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// [`text`] applied to every string (keys included) of a JSON document, in place.
pub fn json(value: &mut serde_json::Value) {
    json_with(value, text);
}

/// [`line`] applied to every string of a JSON document: for documents without multi-line text
/// (a node's facts, shown in tables).
pub fn json_lines(value: &mut serde_json::Value) {
    json_with(value, line);
}

fn json_with(value: &mut serde_json::Value, clean: fn(&str) -> String) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if s.chars().any(char::is_control) {
                *s = clean(s);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| json_with(v, clean)),
        Value::Object(map) => {
            if map.keys().any(|k| k.chars().any(char::is_control)) {
                let old = std::mem::take(map);
                map.extend(old.into_iter().map(|(k, v)| (line(&k), v)));
            }
            map.values_mut().for_each(|v| json_with(v, clean));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The last `n` non-empty lines of `text`, joined with " | " (one line for reports).
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_carriage_returns_are_dropped() {
        assert_eq!(text("ok\x1b[2J\x1b]0;pwned\x07 done\r\nnext\tcol"), "ok[2J]0;pwned done\nnext\tcol");
        assert_eq!(line("changed\n    worker-1     ok\tfine\x1b[1A"), "changed     worker-1     ok fine[1A");
        assert_eq!(text("plain"), "plain");
        // C1 controls (U+0080..U+009F, e.g. CSI as one character) too.
        assert_eq!(text("a\u{9b}31mb"), "a31mb");
    }

    #[test]
    fn every_string_of_a_json_document_is_cleaned() {
        let mut v = serde_json::json!({"summary": "x\x1b[31m", "list": ["\x07a", 1], "k\x1b": {"diff": "-a\n+b\r"}});
        json(&mut v);
        assert_eq!(v, serde_json::json!({"summary": "x[31m", "list": ["a", 1], "k": {"diff": "-a\n+b"}}));
        let mut facts = serde_json::json!({"os": {"name": "Debian\n    worker-1  ok"}});
        json_lines(&mut facts);
        assert_eq!(facts, serde_json::json!({"os": {"name": "Debian     worker-1  ok"}}));
    }
}
