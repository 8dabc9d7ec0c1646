//! The registry's htpasswd line (bcrypt, the only scheme the distribution registry reads). A
//! bcrypt hash has a random salt, so a new one on every run would rewrite the file and restart
//! the registry each time: the line is kept in the state (0600) and made anew only when it no
//! longer verifies the password.

use crate::secrets::Secret;
use crate::state::StateDir;

/// bcrypt's work factor: ~50 ms per check on one core, done once per connection by the registry.
const COST: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    #[error("bcrypt: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    #[error("cannot keep the registry's htpasswd line in {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// `user:hash`, the one kept in the state when it still verifies `password`, or a new one, kept
/// now unless `dry_run`.
pub fn line(state: &StateDir, user: &str, password: &Secret, dry_run: bool) -> Result<String, HtpasswdError> {
    let path = state.root().join("secrets").join("registry-htpasswd");
    let io = |source| HtpasswdError::Io { path: path.display().to_string(), source };
    if let Ok(kept) = std::fs::read_to_string(&path) {
        let kept = kept.trim();
        if let Some((u, hash)) = kept.split_once(':')
            && u == user
            && bcrypt::verify(password.expose(), hash).unwrap_or(false)
        {
            return Ok(kept.to_string());
        }
    }
    let made = format!("{user}:{}", bcrypt::hash(password.expose(), COST)?);
    if dry_run {
        return Ok(made);
    }
    let dir = state.root().join("secrets");
    std::fs::create_dir_all(&dir).and_then(|()| crate::state::set_mode(&dir, 0o700)).map_err(io)?;
    crate::state::write_atomic(&path, format!("{made}\n").as_bytes(), 0o600).map_err(io)?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_kept_while_it_verifies_and_made_anew_when_the_password_changes() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::for_cluster(dir.path(), "c1");
        let first = line(&state, "u", &Secret::from_prompt("one".into(), "t"), false).unwrap();
        assert!(first.starts_with("u:$2"), "{first}");
        assert_eq!(line(&state, "u", &Secret::from_prompt("one".into(), "t"), false).unwrap(), first);
        let dry = line(&state, "u", &Secret::from_prompt("two".into(), "t"), true).unwrap();
        assert_ne!(dry, first);
        assert_eq!(
            line(&state, "u", &Secret::from_prompt("one".into(), "t"), true).unwrap(),
            first,
            "a dry run kept nothing"
        );
        let second = line(&state, "u", &Secret::from_prompt("two".into(), "t"), false).unwrap();
        assert!(second != first && bcrypt::verify("two", second.split_once(':').unwrap().1).unwrap());
        let kept = std::fs::read_to_string(state.root().join("secrets/registry-htpasswd")).unwrap();
        assert_eq!(kept.trim(), second);
    }
}
