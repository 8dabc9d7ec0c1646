//! Every secret value groundwork holds, so that what it writes to a log can be scrubbed of them:
//! a last line of defence behind secrets never being put into messages in the first place.
//! Values are registered where they come into being (`secrets::Secret`, the bootstrap token);
//! `redact` replaces each with `[REDACTED]`.

use std::borrow::Cow;
use std::sync::RwLock;

/// The replacement for a secret value.
pub const MARK: &str = "[REDACTED]";

/// Shorter values are not registered: replacing every `admin` in a log would hide more than it
/// protects, and no secret groundwork makes or accepts is that short.
const SHORTEST: usize = 8;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret for the rest of the run.
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < SHORTEST {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|s| s == value) {
        all.push(value.to_string());
        // Longest first: a secret that contains another is replaced whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`MARK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out = Cow::Borrowed(text);
    for secret in all.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MARK));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_replaced_and_short_ones_ignored() {
        register("s3cr3t-value-for-redact-test");
        register("short");
        let line = "password=s3cr3t-value-for-redact-test user=short";
        assert_eq!(redact(line), format!("password={MARK} user=short"));
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_inside_another_leaves_no_piece_behind() {
        register("inner-secret-abc");
        register("outer-inner-secret-abc-xyz");
        assert_eq!(redact("x outer-inner-secret-abc-xyz y inner-secret-abc"), format!("x {MARK} y {MARK}"));
    }
}
