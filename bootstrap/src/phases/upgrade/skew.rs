//! Kubernetes' version skew policy, as it bears on an upgrade
//! (https://kubernetes.io/releases/version-skew-policy/): the control plane moves one minor
//! version at a time and never back; the API servers may differ by one minor version between
//! themselves (during an upgrade); a kubelet may be up to three minor versions older than the API
//! server, never newer.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// `v1.33.3` (a leading `v` optional; a pre-release or build suffix after the patch ignored).
    pub fn parse(s: &str) -> Option<Version> {
        let core = s.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let v = Version { major: parts.next()??, minor: parts.next()??, patch: parts.next()?? };
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The most a kubelet may lag the API server, in minor versions.
pub const KUBELET_MAX_LAG: u32 = 3;

/// What runs now: the API servers' versions (one per master, from their images) and every
/// kubelet's (by node).
#[derive(Debug, Clone)]
pub struct Running {
    pub api_servers: Vec<(String, Version)>,
    pub kubelets: Vec<(String, Version)>,
}

/// What an upgrade to `target` has to do, or why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePlan {
    pub from: Version,
    pub to: Version,
    /// Nodes whose kubelet is not yet at `to`.
    pub kubelets_behind: Vec<String>,
    /// Masters whose API server is not yet at `to`.
    pub api_servers_behind: Vec<String>,
}

impl UpgradePlan {
    pub fn nothing_to_do(&self) -> bool {
        self.kubelets_behind.is_empty() && self.api_servers_behind.is_empty()
    }
}

pub fn plan(running: &Running, target: Version) -> Result<UpgradePlan, String> {
    let Some(oldest) = running.api_servers.iter().map(|(_, v)| *v).min() else {
        return Err("no API server version could be read (is the control plane up?)".into());
    };
    let newest = running.api_servers.iter().map(|(_, v)| *v).max().unwrap_or(oldest);
    if target.major != oldest.major {
        return Err(format!("{oldest} to {target}: a change of major version is not an upgrade Kubernetes supports"));
    }
    if let Some((host, v)) = running.api_servers.iter().find(|(_, v)| *v > target) {
        return Err(format!(
            "{host}'s API server runs {v}, newer than {target}: Kubernetes cannot be downgraded \
             (restore an etcd backup taken before the upgrade onto a cluster rebuilt at {target} instead)"
        ));
    }
    if newest.minor > oldest.minor + 1 {
        return Err(format!("the API servers run {oldest} and {newest}: more than one minor version apart"));
    }
    if target.minor > oldest.minor + 1 {
        return Err(format!(
            "{oldest} to {target} skips minor version{}: upgrade one minor version at a time \
             (first to the newest v{}.{}.x bundle)",
            if target.minor > oldest.minor + 2 { "s" } else { "" },
            oldest.major,
            oldest.minor + 1
        ));
    }
    for (node, v) in &running.kubelets {
        if *v > target {
            return Err(format!(
                "{node}'s kubelet runs {v}, newer than {target}: a kubelet may not be newer than the API server"
            ));
        }
        if v.major != target.major || target.minor > v.minor + KUBELET_MAX_LAG {
            return Err(format!(
                "{node}'s kubelet runs {v}: more than {KUBELET_MAX_LAG} minor versions older than {target} \
                 once the control plane is upgraded; upgrade that node to v{}.{}.x first",
                v.major,
                target.minor - KUBELET_MAX_LAG
            ));
        }
    }
    Ok(UpgradePlan {
        from: oldest,
        to: target,
        kubelets_behind: running.kubelets.iter().filter(|(_, v)| *v != target).map(|(n, _)| n.clone()).collect(),
        api_servers_behind: running.api_servers.iter().filter(|(_, v)| *v != target).map(|(n, _)| n.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn running(api: &[&str], kubelets: &[&str]) -> Running {
        Running {
            api_servers: api.iter().enumerate().map(|(i, s)| (format!("master-{}", i + 1), v(s))).collect(),
            kubelets: kubelets.iter().enumerate().map(|(i, s)| (format!("node-{}", i + 1), v(s))).collect(),
        }
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(v("v1.33.3"), Version { major: 1, minor: 33, patch: 3 });
        assert_eq!(v("1.33.3"), v("v1.33.3"));
        assert_eq!(v("v1.34.0-rc.1"), v("v1.34.0"));
        assert!(v("v1.33.10") > v("v1.33.9"));
        assert!(v("v1.34.0") > v("v1.33.99"));
        for bad in ["", "v1.33", "v1.33.x", "v1.33.3.1", "latest"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert_eq!(v("v1.33.0").to_string(), "v1.33.0");
    }

    #[test]
    fn one_minor_version_at_a_time_and_patches_freely() {
        let p = plan(&running(&["v1.33.0"; 3], &["v1.33.0"; 7]), v("v1.33.3")).unwrap();
        assert_eq!((p.from, p.to), (v("v1.33.0"), v("v1.33.3")));
        assert_eq!(p.kubelets_behind.len(), 7);
        assert_eq!(p.api_servers_behind.len(), 3);
        assert!(plan(&running(&["v1.32.7"; 3], &["v1.32.7"; 7]), v("v1.33.3")).is_ok());
        let err = plan(&running(&["v1.32.7"; 3], &["v1.32.7"; 7]), v("v1.34.0")).unwrap_err();
        assert!(err.contains("skips minor version") && err.contains("first to the newest v1.33.x"), "{err}");
        let err = plan(&running(&["v1.30.0"; 3], &["v1.30.0"; 7]), v("v1.34.0")).unwrap_err();
        assert!(err.contains("skips minor versions"), "{err}");
    }

    #[test]
    fn never_back_and_never_across_a_major_version() {
        let err = plan(&running(&["v1.33.3"; 3], &["v1.33.3"; 7]), v("v1.33.0")).unwrap_err();
        assert!(err.contains("cannot be downgraded"), "{err}");
        let err = plan(&running(&["v1.34.0"; 3], &["v1.33.3"; 7]), v("v1.33.3")).unwrap_err();
        assert!(err.contains("cannot be downgraded"), "{err}");
        assert!(plan(&running(&["v1.33.0"; 3], &["v1.33.0"; 7]), v("v2.0.0")).unwrap_err().contains("major"));
    }

    #[test]
    fn an_interrupted_upgrade_goes_on_from_a_mixed_cluster() {
        // The first master done, the others not: the target stays reachable, what is left is listed.
        let r = running(&["v1.34.1", "v1.33.3", "v1.33.3"], &["v1.34.1", "v1.33.3", "v1.33.3", "v1.33.3"]);
        let p = plan(&r, v("v1.34.1")).unwrap();
        assert_eq!(p.from, v("v1.33.3"));
        assert_eq!(p.api_servers_behind, ["master-2", "master-3"]);
        assert_eq!(p.kubelets_behind, ["node-2", "node-3", "node-4"]);
        // Everything at the target: nothing to do, which is what a re-run finds.
        let done = plan(&running(&["v1.34.1"; 3], &["v1.34.1"; 7]), v("v1.34.1")).unwrap();
        assert!(done.nothing_to_do());
        // API servers two minors apart cannot be (the policy allows one).
        assert!(
            plan(&running(&["v1.33.3", "v1.35.0"], &[]), v("v1.35.0")).unwrap_err().contains("more than one minor")
        );
    }

    #[test]
    fn kubelets_lag_at_most_three_minor_versions_and_never_lead() {
        // v1.31 kubelets under a v1.34 control plane: three behind, allowed.
        assert!(plan(&running(&["v1.33.5"; 3], &["v1.31.0", "v1.33.5"]), v("v1.34.0")).is_ok());
        let err = plan(&running(&["v1.33.5"; 3], &["v1.30.9", "v1.33.5"]), v("v1.34.0")).unwrap_err();
        assert!(err.contains("node-1's kubelet runs v1.30.9") && err.contains("to v1.31.x first"), "{err}");
        let err = plan(&running(&["v1.33.0"; 3], &["v1.33.3"]), v("v1.33.2")).unwrap_err();
        assert!(err.contains("newer than v1.33.2"), "{err}");
        assert!(plan(&running(&[], &["v1.33.0"]), v("v1.33.3")).unwrap_err().contains("no API server"));
    }
}
