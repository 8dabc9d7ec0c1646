//! Secrets read from where the inventory says (an environment variable or a file), held in a type
//! that never prints its value: Debug and Display show where it came from, not what it is.

use std::fmt;
use std::path::Path;

use crate::inventory::resolve_path;
use crate::inventory::values::SecretRef;

#[derive(Clone)]
pub struct Secret {
    value: String,
    origin: String,
}

impl Secret {
    /// Wraps a value typed at a prompt.
    pub fn from_prompt(value: String, what: &str) -> Self {
        Secret::new(value, format!("prompt for {what}"))
    }
    /// Wraps the value of environment variable `name`, if it is set.
    pub fn from_env(name: &str) -> Option<Self> {
        std::env::var(name).ok().map(|value| Secret::new(value, format!("environment variable {name}")))
    }
    /// Every secret is known to the log's redaction from the moment it exists.
    fn new(value: String, origin: String) -> Self {
        crate::redact::register(&value);
        Secret { value, origin }
    }
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(from {})", self.origin)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret from {}>", self.origin)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{what}: environment variable {name} is not set; export it before running groundwork")]
    EnvMissing { what: String, name: String },
    #[error("{what}: cannot read secret file {path}: {source}")]
    File { what: String, path: String, source: std::io::Error },
    #[error("{what}: {origin} is empty")]
    Empty { what: String, origin: String },
}

/// Reads the secret `r` refers to; `what` names it in errors ("sudo password for master-1").
pub fn resolve(r: &SecretRef, base_dir: &Path, what: &str) -> Result<Secret, SecretError> {
    let (value, origin) = match r {
        SecretRef::Env(name) => {
            let v =
                std::env::var(name).map_err(|_| SecretError::EnvMissing { what: what.into(), name: name.clone() })?;
            (v, format!("environment variable {name}"))
        }
        SecretRef::File(p) => {
            let full = resolve_path(base_dir, p);
            let v = std::fs::read_to_string(&full).map_err(|source| SecretError::File {
                what: what.into(),
                path: full.display().to_string(),
                source,
            })?;
            (v.trim_end_matches(['\n', '\r']).to_string(), format!("file {}", full.display()))
        }
    };
    if value.is_empty() {
        return Err(SecretError::Empty { what: what.into(), origin });
    }
    Ok(Secret::new(value, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let dir = std::env::temp_dir().join(format!("gw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "correct horse\n").unwrap();
        let s = resolve(&SecretRef::File("pw".into()), &dir, "test").unwrap();
        assert_eq!(s.expose(), "correct horse");
        assert!(!format!("{s:?} {s}").contains("horse"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_env_names_the_variable() {
        let e = resolve(&SecretRef::Env("GW_SURELY_UNSET_VAR".into()), Path::new("."), "sudo password").unwrap_err();
        assert!(e.to_string().contains("GW_SURELY_UNSET_VAR"));
    }
}
