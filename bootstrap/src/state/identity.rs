//! One cluster, one identity: the fingerprints of the cluster's CAs and service-account key (and
//! its uid once the API server has told it), recorded in `identity.json`, and the comparison of
//! what the state directory holds with what the masters hold, made before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StateDir;

/// File (relative to the PKI directory) -> `sha256:<hex>`.
pub type Fingerprints = BTreeMap<String, String>;

/// What `identity.json` records of the cluster this state directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    pub fingerprints: Fingerprints,
    /// The `kube-system` namespace's uid, once the API server has answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot use {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not readable: {source}", path.display())]
    Format { path: PathBuf, source: serde_json::Error },
}

impl Identity {
    pub fn file(state: &StateDir) -> PathBuf {
        state.root().join("identity.json")
    }

    pub fn load(state: &StateDir) -> Result<Option<Identity>, IdentityError> {
        let path = Self::file(state);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|source| IdentityError::Format { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IdentityError::Io { path, source }),
        }
    }

    /// Writes it (atomically, 0600) unless the file already says the same; says whether it wrote.
    pub fn save(&self, state: &StateDir) -> Result<bool, IdentityError> {
        if Self::load(state).ok().flatten().as_ref() == Some(self) {
            return Ok(false);
        }
        let path = Self::file(state);
        let text = serde_json::to_vec_pretty(self).expect("serialises");
        super::write_atomic(&path, &text, 0o600).map_err(|source| IdentityError::Io { path, source })?;
        Ok(true)
    }
}

/// The state and the masters agree: go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// No PKI anywhere: a new cluster.
    New,
    /// The masters that hold a PKI hold the state's; `without` hold none yet (they get it).
    Same { without: Vec<String> },
}

/// Why groundwork must not write to these masters with this state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The masters run a cluster this state directory knows nothing of (a fresh checkout, another
    /// operator's machine).
    ClusterWithoutState,
    /// The state holds another cluster's PKI: `differing` names, per master, the files that differ.
    Different { differing: BTreeMap<String, Vec<String>> },
    /// The masters hold different PKIs: `files` differ between them.
    Disagree { files: Vec<String> },
    /// A master's PKI could not be read, so nothing could be compared.
    Unreadable(String),
}

/// Compares the state's fingerprints (None: it holds no PKI) with each master's (empty: no PKI).
pub fn compare(state: Option<&Fingerprints>, masters: &BTreeMap<String, Fingerprints>) -> Result<Agreement, Mismatch> {
    let mut disagreeing = BTreeSet::new();
    let all_files: BTreeSet<&String> = masters.values().flat_map(|f| f.keys()).collect();
    for file in all_files {
        let seen: BTreeSet<&String> = masters.values().filter_map(|f| f.get(file)).collect();
        if seen.len() > 1 {
            disagreeing.insert(file.clone());
        }
    }
    if !disagreeing.is_empty() {
        return Err(Mismatch::Disagree { files: disagreeing.into_iter().collect() });
    }
    let without: Vec<String> = masters.iter().filter(|(_, f)| f.is_empty()).map(|(m, _)| m.clone()).collect();
    let Some(state) = state else {
        return if without.len() == masters.len() { Ok(Agreement::New) } else { Err(Mismatch::ClusterWithoutState) };
    };
    let mut differing = BTreeMap::new();
    for (master, found) in masters {
        let files: Vec<String> =
            found.iter().filter(|(file, fp)| state.get(*file) != Some(*fp)).map(|(file, _)| file.clone()).collect();
        if !files.is_empty() {
            differing.insert(master.clone(), files);
        }
    }
    if differing.is_empty() { Ok(Agreement::Same { without }) } else { Err(Mismatch::Different { differing }) }
}

impl Mismatch {
    /// What was found and how to go on, for the operator; `short` shortens fingerprints.
    /// `only`: name just this master's findings (each master's line in a report says its own).
    pub fn explain(
        &self,
        state_dir: &Path,
        inventory: &Path,
        state: Option<&Fingerprints>,
        masters: &BTreeMap<String, Fingerprints>,
        only: Option<&str>,
        short: impl Fn(&str) -> String,
    ) -> String {
        let list = |f: &Fingerprints| {
            if f.is_empty() {
                return "no PKI".to_string();
            }
            f.iter().map(|(file, fp)| format!("{file} {}", short(fp))).collect::<Vec<_>>().join(", ")
        };
        let found = masters
            .iter()
            .filter(|(m, _)| only.is_none_or(|o| o == m.as_str()))
            .map(|(m, f)| format!("{m} holds {}", list(f)))
            .collect::<Vec<_>>()
            .join("; ");
        let inv = inventory.display();
        match self {
            Mismatch::ClusterWithoutState => format!(
                "refused: the masters run a cluster and this state directory ({}) holds no PKI for it; \
                 going on would replace the cluster's CA and service-account keys. Found: {found}. \
                 To manage this cluster from here, take its PKI from the masters with \
                 `groundwork state adopt -i {inv}`, or restore the state that built it with \
                 `groundwork state restore -i {inv} --from BACKUP`",
                state_dir.display()
            ),
            Mismatch::Different { differing } => format!(
                "refused: this state directory ({}) holds another cluster's PKI ({}) than the masters \
                 ({}): going on would replace the cluster's CA and keys. Found: {found}. Check that the \
                 inventory names the right hosts; if it does, this state is not this cluster's: restore \
                 the right one with `groundwork state restore -i {inv} --from BACKUP --force`, or move \
                 this one away and take the cluster's with `groundwork state adopt -i {inv}`",
                state_dir.display(),
                state.map(list).unwrap_or_default(),
                differing.iter().map(|(m, f)| format!("{m}: {}", f.join(", "))).collect::<Vec<_>>().join("; ")
            ),
            Mismatch::Disagree { files } => format!(
                "refused: the masters do not hold the same PKI ({} differ between them); groundwork will \
                 not choose which is the cluster's. Found: {found}. Find out which one the running API \
                 servers use and repair the odd master by hand, then run again",
                files.join(", ")
            ),
            Mismatch::Unreadable(why) => {
                format!("refused: the masters' PKI could not be compared with the state: {why}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fps(pairs: &[(&str, &str)]) -> Fingerprints {
        pairs.iter().map(|(f, p)| (f.to_string(), p.to_string())).collect()
    }

    fn masters(list: &[(&str, Fingerprints)]) -> BTreeMap<String, Fingerprints> {
        list.iter().map(|(m, f)| (m.to_string(), f.clone())).collect()
    }

    #[test]
    fn nothing_anywhere_is_a_new_cluster_and_the_same_everywhere_goes_on() {
        let none = masters(&[("m1", fps(&[])), ("m2", fps(&[]))]);
        assert_eq!(compare(None, &none), Ok(Agreement::New));
        let a = fps(&[("ca.crt", "sha256:aa"), ("sa.pub", "sha256:bb")]);
        let same = masters(&[("m1", a.clone()), ("m2", a.clone()), ("m3", fps(&[]))]);
        assert_eq!(compare(Some(&a), &same), Ok(Agreement::Same { without: vec!["m3".into()] }));
        // A state with a PKI and bare masters: the first apply after the PKI was made.
        assert_eq!(compare(Some(&a), &none), Ok(Agreement::Same { without: vec!["m1".into(), "m2".into()] }));
    }

    #[test]
    fn a_cluster_without_state_a_different_state_and_disagreeing_masters_are_refused() {
        let a = fps(&[("ca.crt", "sha256:aa"), ("sa.pub", "sha256:bb")]);
        let b = fps(&[("ca.crt", "sha256:cc"), ("sa.pub", "sha256:bb")]);
        let running = masters(&[("m1", a.clone()), ("m2", a.clone())]);
        assert_eq!(compare(None, &running), Err(Mismatch::ClusterWithoutState));
        // One master holding a PKI is enough to refuse.
        assert_eq!(compare(None, &masters(&[("m1", fps(&[])), ("m2", a.clone())])), Err(Mismatch::ClusterWithoutState));
        assert_eq!(
            compare(Some(&b), &running),
            Err(Mismatch::Different {
                differing: BTreeMap::from([("m1".into(), vec!["ca.crt".into()]), ("m2".into(), vec!["ca.crt".into()])])
            })
        );
        // A file the state lacks differs too.
        let more = fps(&[("ca.crt", "sha256:aa"), ("sa.pub", "sha256:bb"), ("etcd/ca.crt", "sha256:dd")]);
        assert!(matches!(compare(Some(&a), &masters(&[("m1", more)])), Err(Mismatch::Different { .. })));
        assert_eq!(
            compare(Some(&a), &masters(&[("m1", a.clone()), ("m2", b)])),
            Err(Mismatch::Disagree { files: vec!["ca.crt".into()] })
        );
    }

    #[test]
    fn the_refusal_names_every_master_its_fingerprints_and_the_way_on() {
        let a = fps(&[("ca.crt", "sha256:0123456789abcdef0123")]);
        let found = masters(&[("m1", a.clone()), ("m2", fps(&[]))]);
        let text = Mismatch::ClusterWithoutState.explain(
            Path::new("/x/.groundwork/c"),
            Path::new("inv.yaml"),
            None,
            &found,
            None,
            |f| f[..f.len().min(23)].to_string(),
        );
        assert!(text.contains("m1 holds ca.crt sha256:0123456789abcdef"), "{text}");
        assert!(text.contains("m2 holds no PKI"), "{text}");
        assert!(text.contains("groundwork state adopt -i inv.yaml"), "{text}");
        assert!(text.contains("groundwork state restore -i inv.yaml --from BACKUP"), "{text}");
    }

    #[test]
    fn the_record_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::for_cluster(dir.path(), "c");
        state.create().unwrap();
        assert_eq!(Identity::load(&state).unwrap(), None);
        let id = Identity { fingerprints: fps(&[("ca.crt", "sha256:aa")]), cluster_uid: Some("u-1".into()) };
        assert!(id.save(&state).unwrap());
        assert!(!id.save(&state).unwrap(), "unchanged: not written again");
        assert_eq!(Identity::load(&state).unwrap(), Some(id));
    }
}
