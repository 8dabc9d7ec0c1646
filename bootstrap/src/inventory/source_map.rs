//! Where every field of a YAML document is, by field path (`hosts[2].address`), so that
//! findings made after deserialisation (duplicate addresses, overlapping CIDRs) can still name
//! the line and column. Built from the parser's event stream; also catches what serde would
//! silently accept (duplicate keys, several documents).

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScanError, Span, SpannedEventReceiver};

use super::diagnostic::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Where the key is, for mapping entries.
    pub key: Option<Location>,
    /// Where the value starts.
    pub value: Location,
}

/// A problem the event stream shows that deserialisation would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuralIssue {
    pub location: Location,
    pub path: String,
    pub message: String,
    pub help: String,
}

#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    entries: HashMap<String, Entry>,
    pub issues: Vec<StructuralIssue>,
}

impl SourceMap {
    /// Parses `text`; a syntax error comes back with its location.
    pub fn build(text: &str) -> Result<SourceMap, (Location, String)> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, true).map_err(|e: ScanError| {
            let m = e.marker();
            (Location { line: m.line().max(1), column: m.col() + 1 }, e.info().to_string())
        })?;
        Ok(builder.map)
    }

    pub fn get(&self, path: &str) -> Option<Entry> {
        self.entries.get(path).copied()
    }

    /// The location of the key at `path` (or its value, for sequence items), else of its nearest
    /// ancestor that exists in the file, else the start of the document.
    pub fn locate(&self, path: &str) -> Location {
        let mut p = path;
        loop {
            if let Some(e) = self.entries.get(p) {
                return e.key.unwrap_or(e.value);
            }
            match parent_path(p) {
                Some(parent) => p = parent,
                None => return Location::START,
            }
        }
    }

    /// Like [`locate`](Self::locate) but prefers the value (`address: HERE`).
    pub fn locate_value(&self, path: &str) -> Location {
        match self.entries.get(path) {
            Some(e) => e.value,
            None => self.locate(path),
        }
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> `` -> None.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

pub fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

enum Frame {
    Mapping {
        path: String,
        pending_key: Option<(String, Location)>,
        seen: HashSet<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
    /// Inside a complex (non-scalar) mapping key: tracked only to find its end.
    SkipKey {
        depth: usize,
    },
}

#[derive(Default)]
struct Builder {
    map: SourceMap,
    stack: Vec<Frame>,
    documents: usize,
}

fn location(span: &Span) -> Location {
    // saphyr's lines are 1-based, columns 0-based.
    Location { line: span.start.line().max(1), column: span.start.col() + 1 }
}

impl Builder {
    /// Registers a node that starts at `at`; returns its path (None when it is a mapping key or
    /// part of one).
    fn node(&mut self, at: Location, scalar_key: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => {
                self.map.entries.insert(String::new(), Entry { key: None, value: at });
                Some(String::new())
            }
            Some(Frame::SkipKey { .. }) => None,
            Some(Frame::Sequence { path, next }) => {
                let p = join_index(path, *next);
                *next += 1;
                self.map.entries.insert(p.clone(), Entry { key: None, value: at });
                Some(p)
            }
            Some(Frame::Mapping { path, pending_key, seen }) => match pending_key.take() {
                Some((key, key_at)) => {
                    let p = join_key(path, &key);
                    self.map.entries.insert(p.clone(), Entry { key: Some(key_at), value: at });
                    Some(p)
                }
                None => {
                    // This node is a key.
                    let key = scalar_key.unwrap_or("").to_string();
                    if !seen.insert(key.clone()) {
                        let p = join_key(path, &key);
                        self.map.issues.push(StructuralIssue {
                            location: at,
                            path: p.clone(),
                            message: format!("duplicate key `{key}`"),
                            help: format!(
                                "`{key}` appears more than once in this mapping (first at line {}); keep one",
                                self.map.entries.get(&p).and_then(|e| e.key).map_or(0, |l| l.line)
                            ),
                        });
                    }
                    *pending_key = Some((key, at));
                    None
                }
            },
        }
    }

    fn is_key_position(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { pending_key: None, .. }))
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        let at = location(&span);
        match ev {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.map.issues.push(StructuralIssue {
                        location: at,
                        path: String::new(),
                        message: "more than one YAML document".into(),
                        help: "an inventory is one document; remove the `---` separator and what follows, or split it into files".into(),
                    });
                }
            }
            Event::Scalar(value, ..) => {
                self.node(at, Some(&value));
            }
            Event::Alias(_) => {
                self.node(at, None);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if let Some(Frame::SkipKey { depth }) = self.stack.last_mut() {
                    *depth += 1;
                    return;
                }
                if self.is_key_position() {
                    self.node(at, Some(""));
                    self.stack.push(Frame::SkipKey { depth: 1 });
                    return;
                }
                let path = self.node(at, None).unwrap_or_default();
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Mapping { path, pending_key: None, seen: HashSet::new() }
                } else {
                    Frame::Sequence { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::SkipKey { depth }) = self.stack.last_mut() {
                    *depth -= 1;
                    if *depth > 0 {
                        return;
                    }
                }
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "cluster:\n  name: lab\nhosts:\n  - name: a\n    address: 10.0.0.1\n  - name: b\n    address: 10.0.0.2\n";

    #[test]
    fn paths_have_one_based_locations() {
        let m = SourceMap::build(DOC).unwrap();
        assert_eq!(m.get("cluster.name").unwrap().key, Some(Location { line: 2, column: 3 }));
        assert_eq!(m.get("cluster.name").unwrap().value, Location { line: 2, column: 9 });
        assert_eq!(m.get("hosts[1].address").unwrap().value, Location { line: 7, column: 14 });
        assert_eq!(m.locate("hosts[1].nothing.deeper"), Location { line: 6, column: 5 });
        assert_eq!(m.locate("nowhere"), Location::START);
    }

    #[test]
    fn duplicate_keys_and_documents_are_found() {
        let m = SourceMap::build("a: 1\nb: 2\na: 3\n---\nc: 1\n").unwrap();
        let messages: Vec<_> = m.issues.iter().map(|i| (i.location.line, i.message.as_str())).collect();
        assert_eq!(messages, vec![(3, "duplicate key `a`"), (4, "more than one YAML document")]);
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let (at, _) = SourceMap::build("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(at.line >= 1 && at.column >= 1);
    }

    #[test]
    fn complex_keys_do_not_confuse_paths() {
        let m = SourceMap::build("? [a, b]\n: 1\nc:\n  d: 2\n").unwrap();
        assert_eq!(m.get("c.d").unwrap().value.line, 4);
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[2].c"), Some("a.b[2]"));
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a"), Some(""));
        assert_eq!(parent_path(""), None);
    }
}
