//! `service`: a systemd unit enabled/disabled, running/stopped, restarted on request; systemd
//! reloaded first when a unit file changed (`NeedDaemonReload`). Everything through `systemctl`.

use std::path::Path;

use groundwork_protocol::Report;

use super::cmd::Cmd;

/// What systemd says about a unit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnitState {
    /// LoadState: loaded, not-found, masked, error, ...
    pub load: String,
    pub need_reload: bool,
    /// `systemctl is-enabled`: enabled, disabled, static, masked, alias, ...
    pub enabled: String,
    /// ActiveState: active, inactive, failed, activating, ...
    pub active: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    DaemonReload,
    Enable,
    Disable,
    Start,
    Restart,
    Stop,
}

impl Step {
    fn words(self, dry: bool) -> &'static str {
        match (self, dry) {
            (Step::DaemonReload, false) => "reloaded systemd",
            (Step::DaemonReload, true) => "would reload systemd",
            (Step::Enable, false) => "enabled",
            (Step::Enable, true) => "would enable",
            (Step::Disable, false) => "disabled",
            (Step::Disable, true) => "would disable",
            (Step::Start, false) => "started",
            (Step::Start, true) => "would start",
            (Step::Restart, false) => "restarted",
            (Step::Restart, true) => "would restart",
            (Step::Stop, false) => "stopped",
            (Step::Stop, true) => "would stop",
        }
    }
}

/// States in which the unit needs no `systemctl enable`: enabled already, or not enableable at
/// all (static, generated, transient), or enabled through another unit (alias, indirect), where
/// `enable` would change nothing and the task would report a change on every run.
const ENABLED: [&str; 6] = ["enabled", "static", "alias", "indirect", "generated", "transient"];
const RUNNING: [&str; 3] = ["active", "reloading", "activating"];

/// What to do, in order. `name` only for messages.
pub fn plan(name: &str, s: &UnitState, enabled: bool, running: bool, restart: bool) -> Result<Vec<Step>, String> {
    match s.load.as_str() {
        "masked" => {
            return Err(format!(
                "systemd unit {name} is masked: unmask it (systemctl unmask {name}) to let groundwork manage it"
            ));
        }
        "not-found" if enabled || running => {
            return Err(format!("systemd unit {name} not found: no unit file (is its package installed?)"));
        }
        _ => {}
    }
    let mut steps = Vec::new();
    if s.need_reload {
        steps.push(Step::DaemonReload);
    }
    if enabled && !ENABLED.contains(&s.enabled.as_str()) {
        steps.push(Step::Enable);
    } else if !enabled && matches!(s.enabled.as_str(), "enabled" | "enabled-runtime") {
        steps.push(Step::Disable);
    }
    let active = RUNNING.contains(&s.active.as_str());
    if running && restart {
        steps.push(Step::Restart);
    } else if running && !active {
        steps.push(Step::Start);
    } else if !running && active {
        steps.push(Step::Stop);
    }
    Ok(steps)
}

fn systemctl() -> Cmd {
    Cmd::new("systemctl")
}

/// Where drop-ins for a unit can live (systemd's unit search path).
const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// `tgt` is `tgt.service`; an instance `getty@tty1.service` also reads `getty@.service.d`.
fn unit_names(name: &str) -> Vec<String> {
    const TYPES: [&str; 11] =
        ["service", "socket", "target", "timer", "mount", "automount", "swap", "path", "slice", "scope", "device"];
    let full = match name.rsplit_once('.') {
        Some((_, t)) if TYPES.contains(&t) => name.to_string(),
        _ => format!("{name}.service"),
    };
    let mut names = vec![full.clone()];
    if let Some((prefix, rest)) = full.split_once('@')
        && let Some((_, t)) = rest.rsplit_once('.')
    {
        names.push(format!("{prefix}@.{t}"));
    }
    names
}

/// systemd's `NeedDaemonReload` misses a drop-in directory created after it last loaded units:
/// compare the `*.conf` drop-ins on disk with the `DropInPaths` it knows.
pub fn dropins_differ(name: &str, known: &str, dirs: &[&Path]) -> bool {
    let mut on_disk: Vec<String> = Vec::new();
    for dir in dirs {
        for unit in unit_names(name) {
            let Ok(entries) = std::fs::read_dir(dir.join(format!("{unit}.d"))) else { continue };
            on_disk.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                    .map(|p| p.display().to_string()),
            );
        }
    }
    // Compare real paths: with a merged /usr, /lib/systemd/system is /usr/lib/systemd/system.
    let real = |p: &str| std::fs::canonicalize(p).ok();
    let mut known_real = Vec::new();
    for p in known.split_whitespace() {
        match real(p) {
            Some(r) => known_real.push(r),
            None => return true, // removed since systemd loaded it
        }
    }
    on_disk.iter().filter_map(|p| real(p)).any(|p| !known_real.contains(&p))
}

fn state(name: &str) -> Result<UnitState, String> {
    let show = systemctl()
        .args(["show", "-p", "LoadState", "-p", "NeedDaemonReload", "-p", "ActiveState", "-p", "DropInPaths", name])
        .run()?;
    let get = |key: &str| {
        show.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    // is-enabled exits non-zero for disabled units: its answer is on stdout either way.
    let is_enabled = systemctl().args(["is-enabled", name]).output()?;
    let dirs: Vec<&Path> = UNIT_DIRS.iter().map(Path::new).collect();
    Ok(UnitState {
        load: get("LoadState"),
        need_reload: get("NeedDaemonReload") == "yes" || dropins_differ(name, &get("DropInPaths"), &dirs),
        enabled: is_enabled.stdout.trim().to_string(),
        active: get("ActiveState"),
    })
}

/// The last lines of the unit's journal, to explain a failed start.
fn journal(name: &str) -> String {
    Cmd::new("journalctl")
        .args(["-u", name, "-n", "15", "--no-pager", "-o", "cat"])
        .output()
        .map(|o| o.tail(15))
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| format!("\nlast journal lines of {name}:\n{t}"))
        .unwrap_or_default()
}

fn apply(name: &str, step: Step) -> Result<(), String> {
    let args: &[&str] = match step {
        Step::DaemonReload => &["daemon-reload"],
        Step::Enable => &["enable", name],
        Step::Disable => &["disable", name],
        Step::Start => &["start", name],
        Step::Restart => &["restart", name],
        Step::Stop => &["stop", name],
    };
    systemctl().args(args.iter().copied()).run().map(|_| ()).map_err(|e| match step {
        Step::Start | Step::Restart => format!("{e}{}", journal(name)),
        _ => e,
    })
}

pub fn ensure(name: &str, enabled: bool, running: bool, restart: bool, dry: bool) -> Result<Report, String> {
    if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace) || name.contains('/') {
        return Err(format!("`{name}` is not a systemd unit name"));
    }
    if !Path::new("/run/systemd/system").exists() {
        return Err(format!("cannot manage unit {name}: systemd is not running on this node (PID 1 is not systemd)"));
    }
    let mut s = state(name)?;
    let mut done = Vec::new();
    if s.load == "not-found" && (enabled || running) {
        // A unit file written in this run is unknown until systemd reloads.
        if dry {
            let mut steps = vec![Step::DaemonReload, Step::Enable, Step::Start];
            steps.retain(|st| (*st != Step::Enable || enabled) && (*st != Step::Start || running));
            let words: Vec<&str> = steps.iter().map(|st| st.words(true)).collect();
            return Ok(Report {
                changed: true,
                summary: format!("{name}: not known to systemd yet; {}", words.join(", ")),
                diff: None,
            });
        }
        apply(name, Step::DaemonReload)?;
        done.push(Step::DaemonReload);
        s = state(name)?;
    }
    let steps = plan(name, &s, enabled, running, restart)?;
    for step in steps {
        if !dry {
            apply(name, step)?;
        }
        done.push(step);
    }
    if done.is_empty() {
        let what = match (enabled, running) {
            (true, true) => "enabled and running",
            (true, false) => "enabled and stopped",
            (false, true) => "running (not enabled)",
            (false, false) => "disabled and stopped",
        };
        return Ok(Report { changed: false, summary: format!("{name} is {what}"), diff: None });
    }
    let words: Vec<&str> = done.iter().map(|st| st.words(dry)).collect();
    Ok(Report { changed: true, summary: format!("{name}: {}", words.join(", ")), diff: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(load: &str, reload: bool, enabled: &str, active: &str) -> UnitState {
        UnitState { load: load.into(), need_reload: reload, enabled: enabled.into(), active: active.into() }
    }

    #[test]
    fn plans_only_what_differs() {
        let fresh = unit("loaded", false, "disabled", "inactive");
        assert_eq!(plan("tgt", &fresh, true, true, false), Ok(vec![Step::Enable, Step::Start]));
        let good = unit("loaded", false, "enabled", "active");
        assert_eq!(plan("tgt", &good, true, true, false), Ok(vec![]));
        assert_eq!(plan("tgt", &good, true, true, true), Ok(vec![Step::Restart]));
        assert_eq!(plan("tgt", &good, false, false, false), Ok(vec![Step::Disable, Step::Stop]));
        let edited = unit("loaded", true, "enabled", "failed");
        assert_eq!(plan("tgt", &edited, true, true, false), Ok(vec![Step::DaemonReload, Step::Start]));
        for already in ["static", "alias", "indirect", "generated"] {
            assert_eq!(plan("u", &unit("loaded", false, already, "active"), true, true, false), Ok(vec![]));
        }
        assert_eq!(plan("u", &unit("loaded", false, "static", "active"), false, true, false), Ok(vec![]));
    }

    #[test]
    fn masked_and_missing_units_are_errors_naming_the_unit() {
        let masked = plan("kubelet", &unit("masked", false, "masked", "inactive"), true, true, false).unwrap_err();
        assert!(masked.contains("kubelet is masked") && masked.contains("systemctl unmask kubelet"));
        let missing = plan("kubelet", &unit("not-found", false, "", "inactive"), true, true, false).unwrap_err();
        assert_eq!(missing, "systemd unit kubelet not found: no unit file (is its package installed?)");
        // Wanted stopped and disabled, and there is none: nothing to do.
        assert_eq!(plan("kubelet", &unit("not-found", false, "", "inactive"), false, false, false), Ok(vec![]));
    }

    #[test]
    fn a_new_or_removed_drop_in_needs_a_reload() {
        let t = crate::tasks::testdir::TempDir::new("dropins");
        let (etc, lib) = (t.path("etc"), t.path("lib"));
        let dirs = [etc.as_path(), lib.as_path()];
        assert!(!dropins_differ("tgt", "", &dirs));
        std::fs::create_dir_all(etc.join("tgt.service.d")).unwrap();
        let conf = etc.join("tgt.service.d/10-groundwork.conf");
        std::fs::write(&conf, "[Service]\n").unwrap();
        std::fs::write(etc.join("tgt.service.d/README"), "").unwrap();
        let c = conf.display().to_string();
        assert!(dropins_differ("tgt", "", &dirs));
        assert!(!dropins_differ("tgt", &c, &dirs));
        assert!(!dropins_differ("tgt.service", &c, &dirs));
        assert!(dropins_differ("tgt", &format!("{c} /nonexistent/x.conf"), &dirs));
        std::fs::create_dir_all(lib.join("getty@.service.d")).unwrap();
        std::fs::write(lib.join("getty@.service.d/x.conf"), "").unwrap();
        assert!(dropins_differ("getty@tty1", "", &dirs));
        // The same directory under two names (merged /usr) is one drop-in.
        std::os::unix::fs::symlink(&etc, t.path("etc-link")).unwrap();
        let linked = [etc.as_path(), &t.path("etc-link")];
        assert!(!dropins_differ("tgt", &c, &linked));
        assert_eq!(unit_names("kubelet"), ["kubelet.service"]);
        assert_eq!(unit_names("containerd.socket"), ["containerd.socket"]);
        assert_eq!(unit_names("getty@tty1.service"), ["getty@tty1.service", "getty@.service"]);
    }

    #[test]
    fn words_for_the_report() {
        assert_eq!(Step::Restart.words(false), "restarted");
        assert_eq!(Step::Enable.words(true), "would enable");
    }
}
