//! A finding about an inventory: where it is (file, line, column, field path), what is wrong,
//! and how to fix it. Rendered like a compiler message, with the offending line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub const START: Location = Location { line: 1, column: 1 };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub location: Location,
    /// Field path such as `hosts[2].address`; empty for the document itself.
    pub path: String,
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic with the source line it points at.
    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let subject = if self.path.is_empty() { String::new() } else { format!("{}: ", self.path) };
        out.push_str(&format!("{label}: {subject}{}\n", self.message));
        let Location { line, column } = self.location;
        out.push_str(&format!("  --> {}:{line}:{column}\n", self.file.display()));
        if let Some(text) = source.lines().nth(line.saturating_sub(1)) {
            let gutter = line.to_string().len();
            let pad = " ".repeat(gutter);
            let caret_at: String =
                text.chars().take(column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let width = token_width(text, column);
            let shown = if self.is_sensitive() { mask(text, column, width) } else { text.to_string() };
            out.push_str(&format!("{pad} |\n{line} | {shown}\n{pad} | {caret_at}{}\n", "^".repeat(width)));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

impl Diagnostic {
    /// A finding about a password or passphrase field: its line may hold a secret someone
    /// wrote inline, which must not be echoed to the terminal.
    fn is_sensitive(&self) -> bool {
        let last = self.path.rsplit(['.', '[']).next().unwrap_or("").to_ascii_lowercase();
        last.contains("password") || last.contains("passphrase") || last.contains("secret")
    }
}

/// `text` with everything from `column` to the end of the line replaced by `*`.
fn mask(text: &str, column: usize, width: usize) -> String {
    let keep: String = text.chars().take(column.saturating_sub(1)).collect();
    format!("{keep}{}", "*".repeat(width))
}

/// Width of the token starting at `column`: up to whitespace, `:` or `,`, at least 1.
fn token_width(text: &str, column: usize) -> usize {
    text.chars()
        .skip(column.saturating_sub(1))
        .take_while(|c| !c.is_whitespace() && *c != ':' && *c != ',')
        .count()
        .max(1)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {severity}: ", self.file.display(), self.location.line, self.location.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file.
#[derive(Debug)]
pub struct Diagnostics {
    file: PathBuf,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &Path) -> Self {
        Diagnostics { file: file.to_path_buf(), items: Vec::new() }
    }

    pub fn push(
        &mut self,
        severity: Severity,
        location: Location,
        path: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            location,
            path: path.to_string(),
            message: message.into(),
            help,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Errors first, then in file order.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.location.cmp(&b.location)));
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_the_token() {
        let d = Diagnostic {
            severity: Severity::Error,
            file: "inv.yaml".into(),
            location: Location { line: 2, column: 5 },
            path: "hosts[0]".into(),
            message: "unknown key `adress`".into(),
            help: Some("did you mean `address`?".into()),
        };
        let text = d.render("hosts:\n  - adress: 10.0.0.1\n");
        assert!(text.contains("--> inv.yaml:2:5"), "{text}");
        assert!(text.contains("2 |   - adress: 10.0.0.1"), "{text}");
        assert!(text.contains("  |     ^^^^^^\n"), "{text}");
        assert!(text.contains("help: did you mean `address`?"), "{text}");
    }

    #[test]
    fn secrets_written_inline_are_not_echoed() {
        let d = Diagnostic {
            severity: Severity::Error,
            file: "inv.yaml".into(),
            location: Location { line: 2, column: 17 },
            path: "ssh.sudoPassword".into(),
            message: "secrets are never written in the inventory".into(),
            help: None,
        };
        let text = d.render("ssh:\n  sudoPassword: S3cret-pass # note\n");
        assert!(!text.contains("S3cret"), "{text}");
        assert!(text.contains("2 |   sudoPassword: ***********"), "{text}");
    }
}
