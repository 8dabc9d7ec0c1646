//! The kubeadm bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`), kept with its creation time so
//! re-runs within its lifetime reuse it.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::store::{self, KEY_MODE};
use super::{PkiError, paths};

/// kubeadm's default token TTL (`--token-ttl`, `bootstrapTokens[].ttl`).
pub const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// A saved token younger than this is reused: it then still has at least 4 hours to live.
pub const REUSE_FOR: Duration = Duration::from_secs(20 * 3600);
/// Tolerated clock difference for a token "created" slightly in the future.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A bootstrap token. Display and Debug show only its public id (`abcdef.****`);
/// [`BootstrapToken::expose_secret`] gives the whole token.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    /// `id.secret`, validated.
    token: String,
    created_at: SystemTime,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    token: String,
    created_unix: u64,
}

impl BootstrapToken {
    /// A new token from the system's CSPRNG, created now.
    pub fn generate() -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let mut chars = String::with_capacity(23);
        while chars.len() < 22 {
            let mut buf = [0u8; 32];
            rng.fill(&mut buf).map_err(|_| PkiError::Random)?;
            // 252 = 7 * 36: rejecting larger bytes keeps every character equally likely.
            for b in buf.into_iter().filter(|b| *b < 252) {
                if chars.len() == 22 {
                    break;
                }
                chars.push(ALPHABET[usize::from(b % 36)] as char);
            }
        }
        // Known to the log's redaction before anything can print it.
        crate::redact::register(&chars[6..]);
        chars.insert(6, '.');
        Ok(BootstrapToken { token: chars, created_at: SystemTime::now() })
    }

    /// The public part, `abcdef` (the Secret's name is `bootstrap-token-abcdef`).
    pub fn id(&self) -> &str {
        &self.token[..6]
    }

    /// The whole token, `abcdef.0123456789abcdef`, for kubeadm's `--token` or its config.
    pub fn expose_secret(&self) -> &str {
        &self.token
    }

    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// When kubeadm lets it expire, if it was registered with the default TTL right when made.
    pub fn expires_at(&self) -> SystemTime {
        self.created_at + TOKEN_TTL
    }

    /// Loads `bootstrap-token` from the PKI directory if it holds a token young enough to reuse,
    /// else makes one and saves it (0600). Says whether it made one.
    pub fn load_or_create(dir: &Path) -> Result<(BootstrapToken, bool), PkiError> {
        Self::load_or_create_at(dir, SystemTime::now())
    }

    /// [`BootstrapToken::load_or_create`] as if it were `now`.
    pub fn load_or_create_at(dir: &Path, now: SystemTime) -> Result<(BootstrapToken, bool), PkiError> {
        let path = dir.join(paths::BOOTSTRAP_TOKEN);
        if let Some(bytes) = store::read_opt(&path)? {
            match Self::from_saved(&bytes) {
                Some(t) if t.reusable_at(now) => return Ok((t, false)),
                Some(_) => {}
                None => tracing::warn!("pki: {} is unreadable; making a new token", path.display()),
            }
        }
        store::ensure_dir(dir)?;
        let mut token = Self::generate()?;
        // Whole seconds, as saved, so the token in hand equals the one loaded next time.
        let created_unix = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        token.created_at = UNIX_EPOCH + Duration::from_secs(created_unix);
        let saved = Saved { token: token.token.clone(), created_unix };
        let text = serde_json::to_vec(&saved).map_err(|e| PkiError::invalid(path.display(), e.to_string()))?;
        store::write_atomic(&path, &text, KEY_MODE)?;
        Ok((token, true))
    }

    /// Keeps `token`, created at `created_unix`, in the PKI directory (0600): a token taken from
    /// a running cluster (`groundwork state adopt`), so the configurations that hold it stay as
    /// they are. The error never contains the token.
    pub fn save(dir: &Path, token: &str, created_unix: u64) -> Result<BootstrapToken, PkiError> {
        let mut t: BootstrapToken = token.parse()?;
        t.created_at = UNIX_EPOCH + Duration::from_secs(created_unix);
        store::ensure_dir(dir)?;
        let path = dir.join(paths::BOOTSTRAP_TOKEN);
        let saved = Saved { token: t.token.clone(), created_unix };
        let text = serde_json::to_vec(&saved).map_err(|e| PkiError::invalid(path.display(), e.to_string()))?;
        store::write_atomic(&path, &text, KEY_MODE)?;
        Ok(t)
    }

    fn from_saved(bytes: &[u8]) -> Option<Self> {
        let saved: Saved = serde_json::from_slice(bytes).ok()?;
        let mut t: BootstrapToken = saved.token.parse().ok()?;
        t.created_at = UNIX_EPOCH + Duration::from_secs(saved.created_unix);
        Some(t)
    }

    fn reusable_at(&self, now: SystemTime) -> bool {
        match now.duration_since(self.created_at) {
            Ok(age) => age < REUSE_FOR,
            // Created "in the future": fine within clock skew, suspicious beyond.
            Err(e) => e.duration() <= CLOCK_SKEW,
        }
    }
}

/// Parses `abcdef.0123456789abcdef` (creation time: now). The error never contains the input.
impl FromStr for BootstrapToken {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, PkiError> {
        let ok = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        match s.split_once('.') {
            Some((id, secret)) if ok(id, 6) && ok(secret, 16) => {
                crate::redact::register(secret);
                Ok(BootstrapToken { token: s.to_string(), created_at: SystemTime::now() })
            }
            _ => Err(PkiError::invalid("bootstrap token", "not of the form [a-z0-9]{6}.[a-z0-9]{16}")),
        }
    }
}

impl fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.****", self.id())
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id())
            .field("secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}
