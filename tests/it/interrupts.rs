//! Interrupts and the lock, on the lab's cluster (built by the apply test, which runs first):
//! SIGINT in the middle of an apply (exit 130, the report and the journal written, both locks
//! free at once, the re-run resumes), SIGTERM with a short grace period (the slow step given up
//! in time), a SIGKILL and a second SIGINT (the next apply is not refused), and two applies at
//! once from two state directories (the lease on the masters refuses the second, naming the first)
//! and from one (the lock file refuses it). Locks are checked from outside with util-linux
//! `flock`, on this machine and inside the masters' containers, not by asking groundwork.
//!
//! An apply is held "in the middle" by a slow `ctr` on one worker (as tests/it/resilience.rs
//! does). Every drill runs from its own checkout: the lab inventory and a copy of the lab's state
//! directory without its journal, so that what the journal and `done_before` say comes from the
//! drill alone and not from whatever ran before. Whatever happens, the slow `ctr` is removed and
//! no apply a drill started outlives it (see `Shim` and `Apply`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use groundwork::state::LockHolder;
use groundwork_lab_tests::{Lab, text};

/// One drill at a time: they share the cluster and its lease.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MASTERS: [&str; 3] = ["master-1", "master-2", "master-3"];
/// The worker whose container-runtime step is made slow.
const SLOW_HOST: &str = "worker-1";
const SLOW_PHASE: &str = "container-runtime";
/// How long the slow step takes.
const SLOW: Duration = Duration::from_secs(20);
/// Written by the slow `ctr` when the step it slows down has started.
const SLOW_MARK: &str = "/run/groundwork-interrupts-drill-slow";
const SHIM: &str = "/usr/local/bin/ctr";
const LEASE_FILE: &str = "/var/lib/groundwork/cluster.lock";
/// How long a killed controller's lease may outlive it (the masters' sshd must see it go).
const LEASE_GONE_WITHIN: Duration = Duration::from_secs(30);

/// The slow `ctr` on SLOW_HOST, removed when this is dropped (also when the drill panics).
struct Shim<'a> {
    lab: &'a Lab,
}

impl<'a> Shim<'a> {
    fn install(lab: &'a Lab) -> Shim<'a> {
        let shim = Shim { lab };
        shim.remove();
        let program = format!("#!/bin/sh\ntouch {SLOW_MARK}\nsleep {}\nexec /usr/bin/ctr \"$@\"\n", SLOW.as_secs());
        let out = lab.docker_with_stdin(
            &["exec", "-i", &lab.container(SLOW_HOST), "sh", "-c", &format!("cat > {SHIM} && chmod 0755 {SHIM}")],
            &program,
        );
        assert!(out.status.success(), "{SLOW_HOST}: writing {SHIM}: {}", text(&out.stderr));
        shim
    }

    fn remove(&self) {
        let out = self.lab.sh_in(SLOW_HOST, &format!("rm -f {SHIM} {SLOW_MARK}"));
        assert!(out.status.success(), "{SLOW_HOST}: removing {SHIM}: {}", text(&out.stderr));
    }
}

impl Drop for Shim<'_> {
    fn drop(&mut self) {
        let _ = self.lab.sh_in(SLOW_HOST, &format!("rm -f {SHIM} {SLOW_MARK}"));
    }
}

/// A checkout of its own: the lab inventory (its handoff written into the checkout) and a copy
/// of the lab's state directory, journal left out. The same PKI: the cluster's identity passes.
struct Checkout {
    dir: PathBuf,
    inventory: String,
    state: PathBuf,
}

impl Checkout {
    fn new(lab: &Lab, name: &str) -> Checkout {
        let dir = lab.scratch(name);
        let shared = format!("directory: {}/handoff", lab.state.display());
        let own = format!("directory: {}", dir.join("handoff").display());
        let inventory = lab.inventory_copy(&dir, |t| {
            assert!(t.contains(&shared), "the copy names the lab's handoff directory");
            t.replace(&shared, &own)
        });
        let state = dir.join(".groundwork/gwlab");
        std::fs::create_dir_all(state.parent().unwrap()).expect("scratch .groundwork");
        let lab_state = lab.root.join("inventory/.groundwork/gwlab");
        assert!(lab_state.join("pki").is_dir(), "the cluster is built (the apply test runs first)");
        let out = Command::new("cp").arg("-a").arg(&lab_state).arg(&state).output().expect("cp runs");
        assert!(out.status.success(), "copying the lab's state: {}", text(&out.stderr));
        let _ = std::fs::remove_file(state.join("journal.json"));
        Checkout { dir, inventory: inventory.display().to_string(), state }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An apply running in the background, its output collected as it comes; killed if it is still
/// running when this is dropped (a failed drill leaves no apply behind).
struct Apply {
    child: Option<Child>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

struct Finished {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    started: Instant,
    ended: Instant,
}

impl Finished {
    fn took(&self) -> Duration {
        self.ended - self.started
    }
}

fn spawn(lab: &Lab, command: &str, inventory: &str, extra: &[&str]) -> (Apply, Instant) {
    let args: Vec<&str> = [command, "-i", inventory, "-o", "json"].into_iter().chain(extra.iter().copied()).collect();
    let (child, stdout, stderr) = lab.spawn_groundwork(&args);
    (Apply { child: Some(child), stdout: Some(stdout), stderr: Some(stderr) }, Instant::now())
}

fn spawn_apply(lab: &Lab, inventory: &str, extra: &[&str]) -> Running {
    let (apply, started) = spawn(lab, "apply", inventory, extra);
    Running { apply, started }
}

/// `groundwork COMMAND -i INVENTORY -o json EXTRA`, to its end (at most `bound`).
fn run(lab: &Lab, command: &str, inventory: &str, extra: &[&str], bound: Duration) -> Finished {
    let (apply, started) = spawn(lab, command, inventory, extra);
    Running { apply, started }.finish(bound)
}

struct Running {
    apply: Apply,
    started: Instant,
}

impl Running {
    fn pid(&self) -> u32 {
        self.apply.child.as_ref().expect("running").id()
    }

    fn exited(&mut self) -> bool {
        matches!(self.apply.child.as_mut().expect("running").try_wait(), Ok(Some(_)))
    }

    /// Sends `signal` (a `kill -s` name) to the apply's process.
    fn signal(&self, signal: &str) {
        let out = Command::new("kill").args(["-s", signal, &self.pid().to_string()]).output().expect("kill runs");
        assert!(out.status.success(), "kill -s {signal}: {}", text(&out.stderr));
    }

    /// Waits for the end, at most `bound` after the start (then it is killed and the drill fails).
    fn finish(mut self, bound: Duration) -> Finished {
        let mut child = self.apply.child.take().expect("running");
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if self.started.elapsed() > bound {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = text(&self.apply.stderr.take().unwrap().join().unwrap_or_default());
                panic!("groundwork did not end within {bound:?}:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ended = Instant::now();
        Finished {
            code: status.code(),
            stdout: self.apply.stdout.take().unwrap().join().unwrap_or_default(),
            stderr: text(&self.apply.stderr.take().unwrap().join().unwrap_or_default()),
            started: self.started,
            ended,
        }
    }
}

impl Drop for Apply {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the slow step runs on SLOW_HOST: the apply is then in the middle.
fn wait_for_slow_step(lab: &Lab, apply: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !lab.sh_in(SLOW_HOST, &format!("test -e {SLOW_MARK}")).status.success() {
        assert!(!apply.exited(), "the apply ended before its slow step started");
        assert!(Instant::now() < deadline, "the slow step did not start within 300 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("the slow step started {} ms after the apply", apply.started.elapsed().as_millis());
}

fn report(out: &Finished) -> serde_json::Value {
    groundwork_lab_tests::report_json(&out.stdout, &out.stderr)
}

/// One host's outcome in one phase of a report.
#[derive(Debug)]
struct Step {
    phase: String,
    host: String,
    outcome: String,
    kind: String,
    /// The error (failed) or the reason (skipped).
    why: String,
    done_before: bool,
}

/// Every host's outcome in every phase the pipeline ran (not connect, nor the controller's handoff).
fn steps(report: &serde_json::Value) -> Vec<Step> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut all = vec![];
    for p in report["phases"].as_array().expect("phases") {
        if p["name"] == "connect" || p["name"] == "handoff" {
            continue;
        }
        for h in p["hosts"].as_array().expect("hosts") {
            all.push(Step {
                phase: s(&p["name"]),
                host: s(&h["host"]),
                outcome: s(&h["outcome"]),
                kind: s(&h["kind"]),
                why: if h["outcome"] == "failed" { s(&h["error"]) } else { s(&h["reason"]) },
                done_before: h["done_before"].as_bool().expect("done_before"),
            });
        }
    }
    all
}

fn step<'a>(steps: &'a [Step], phase: &str, host: &str) -> &'a Step {
    steps.iter().find(|s| s.phase == phase && s.host == host).unwrap_or_else(|| panic!("no {phase} {host}: {steps:?}"))
}

fn failures(steps: &[Step]) -> Vec<&Step> {
    steps.iter().filter(|s| s.outcome == "failed").collect()
}

fn key(s: &Step) -> (String, String) {
    (s.phase.clone(), s.host.clone())
}

/// (phase, host) -> status of every entry in a checkout's journal.
fn journal(state: &Path) -> BTreeMap<(String, String), String> {
    let file = state.join("journal.json");
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let j: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("the journal {} is damaged ({e}): {}", file.display(), text(&bytes)));
    let mut all = BTreeMap::new();
    for (phase, hosts) in j["phases"].as_object().expect("journal phases") {
        for (host, entry) in hosts.as_object().expect("journal hosts") {
            all.insert((phase.clone(), host.clone()), entry["status"].as_str().unwrap_or_default().to_string());
        }
    }
    all
}

/// The controller's lock file is free: util-linux `flock -n` takes it at once.
fn local_lock_free(state: &Path) -> bool {
    let lock = state.join("apply.lock");
    Command::new("flock").arg("-n").arg(&lock).arg("true").status().expect("flock runs").success()
}

/// The lease's flock on `master` is free (checked inside its container, not through groundwork).
fn lease_free(lab: &Lab, master: &str) -> bool {
    lab.sh_in(master, &format!("flock -n {LEASE_FILE} true")).status.success()
}

/// While an apply runs, its lock file and the lease on every master are held (else a drill that
/// finds them free afterwards proves nothing).
fn assert_locks_held(lab: &Lab, co: &Checkout) {
    assert!(!local_lock_free(&co.state), "the running apply does not hold its lock file");
    for m in MASTERS {
        assert!(!lease_free(lab, m), "{m}: the running apply does not hold the lease");
    }
}

/// The pid the lease's holder file on `master` names.
fn lease_holder_pid(lab: &Lab, master: &str) -> u64 {
    let out = lab.sh_in(master, &format!("cat {LEASE_FILE}.holder"));
    let holder: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{master}: the lease holder file ({e}): {}", text(&out.stdout)));
    holder["pid"].as_u64().expect("a pid")
}

/// How a refusal names the apply with process `pid` on this machine.
fn named_holder(pid: u32) -> String {
    let me = LockHolder::me("groundwork apply");
    format!("the cluster is locked by {}@{} (pid {pid}, `groundwork apply`) since ", me.user, me.machine)
}

/// sha256 of every file under /etc/kubernetes/pki, per master (docker, not groundwork).
fn pki_sums(lab: &Lab) -> Vec<String> {
    MASTERS
        .iter()
        .map(|m| {
            let out = lab.sh_in(m, "cd /etc/kubernetes/pki && find . -type f | sort | xargs sha256sum");
            assert!(out.status.success(), "{m}: {}", text(&out.stderr));
            text(&out.stdout)
        })
        .collect()
}

/// After a controller died without releasing anything: its lock file is free at once, its lease
/// on every master within LEASE_GONE_WITHIN (when the masters' sshd see its connection go), and
/// the next apply is not refused and finishes with no failure.
fn next_apply_after_a_death(lab: &Lab, co: &Checkout, died: Instant) {
    assert!(local_lock_free(&co.state), "the lock file is still held after its holder died");
    while !MASTERS.iter().all(|m| lease_free(lab, m)) {
        assert!(died.elapsed() < LEASE_GONE_WITHIN, "the dead controller's lease outlived it by {LEASE_GONE_WITHIN:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("the dead controller's lease was gone on every master {} ms after it died", died.elapsed().as_millis());
    let again = spawn_apply(lab, &co.inventory, &[]).finish(Duration::from_secs(600));
    assert!(!again.stderr.contains("the cluster is locked by"), "refused after its holder died:\n{}", again.stderr);
    assert_eq!(again.code, Some(0), "the next apply failed:\n{}", again.stderr);
    let failed: Vec<_> = failures(&steps(&report(&again))).into_iter().map(key).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn sigint_in_the_middle_of_an_apply_writes_report_and_journal_frees_the_locks_and_the_rerun_resumes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::require();
    let co = Checkout::new(&lab, "interrupts-sigint");
    let shim = Shim::install(&lab);
    let mut apply = spawn_apply(&lab, &co.inventory, &[]);
    wait_for_slow_step(&lab, &mut apply);
    assert_locks_held(&lab, &co);
    let asked = Instant::now();
    apply.signal("INT");
    let out = apply.finish(Duration::from_secs(300));
    // Both locks are free the moment it has exited: looked at before anything else runs.
    assert!(local_lock_free(&co.state), "the lock file is still held after the interrupted apply exited");
    for m in MASTERS {
        assert!(lease_free(&lab, m), "{m}: the lease is still held after the interrupted apply exited");
    }
    eprintln!("SIGINT: the apply exited {} ms after it", (out.ended - asked).as_millis());
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(out.stderr.contains("SIGINT: stopping"), "{}", out.stderr);
    // The running step had the (default, 60 s) grace period to finish: it took what it takes.
    assert!(out.ended - asked < SLOW + Duration::from_secs(10), "{}", out.stderr);

    // The report is complete and says it was interrupted.
    let first = report(&out);
    assert_eq!(first["interrupted"], "SIGINT", "{first}");
    let stopped = first["stopped"].as_str().unwrap_or_default();
    assert!(stopped.starts_with("interrupted (SIGINT)"), "{stopped}");
    let phases: Vec<&str> = first["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut every = vec!["connect"];
    every.extend(groundwork::phases::all().iter().map(|p| p.name));
    assert_eq!(phases, every, "every phase is in the report (and no handoff after an interrupt)");
    let first_steps = steps(&first);
    for s in &first_steps {
        assert!(["ok", "skipped"].contains(&s.outcome.as_str()), "nothing fails within the grace period: {s:?}");
        if s.outcome == "skipped" {
            assert_eq!(s.why, "interrupted (SIGINT) before it started", "{s:?}");
        }
    }
    let slow = step(&first_steps, SLOW_PHASE, SLOW_HOST);
    assert_eq!(slow.outcome, "ok", "the step running at the signal finished within the grace period: {slow:?}");
    let next = step(&first_steps, "endpoint", SLOW_HOST);
    assert_eq!(next.outcome, "skipped", "no step starts after the signal: {next:?}");
    let done: BTreeSet<(String, String)> = first_steps.iter().filter(|s| s.outcome == "ok").map(key).collect();
    let skipped = first_steps.len() - done.len();
    eprintln!("interrupted run: {} step(s) finished, {skipped} not started", done.len());

    // The journal holds exactly the steps that finished (it had no entry before the drill).
    let journaled = journal(&co.state);
    let journaled_done: BTreeSet<(String, String)> =
        journaled.iter().filter(|(_, status)| *status == "done").map(|(k, _)| k.clone()).collect();
    assert_eq!(journaled_done, done, "the journal and the report disagree on what finished: {journaled:?}");
    assert_eq!(journaled.len(), done.len(), "only finished steps are journaled: {journaled:?}");

    // The re-run is not refused, says what was done before, and finishes the cluster.
    shim.remove();
    let again = spawn_apply(&lab, &co.inventory, &[]).finish(Duration::from_secs(600));
    assert_eq!(again.code, Some(0), "the re-run failed:\n{}", again.stderr);
    eprintln!("re-run: {} s", again.took().as_secs());
    let second = report(&again);
    assert!(second["interrupted"].is_null() && second["stopped"].is_null(), "{second}");
    let second_steps = steps(&second);
    assert_eq!(second_steps.len(), first_steps.len());
    for s in &second_steps {
        assert_eq!(s.outcome, "ok", "{s:?}");
        assert_eq!(s.done_before, done.contains(&key(s)), "done_before must say what the interrupted run did: {s:?}");
    }
}

#[test]
fn sigterm_with_a_short_grace_period_gives_up_the_slow_step_in_time_and_the_next_apply_finishes_it() {
    const GRACE: Duration = Duration::from_secs(3);
    // Giving up, releasing the lease and closing the connections after the grace period.
    const AFTER_GRACE: Duration = Duration::from_secs(5);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::require();
    let co = Checkout::new(&lab, "interrupts-grace");
    let shim = Shim::install(&lab);
    let grace = GRACE.as_secs().to_string();
    let mut apply = spawn_apply(&lab, &co.inventory, &["--grace-period", &grace]);
    wait_for_slow_step(&lab, &mut apply);
    assert_locks_held(&lab, &co);
    let asked = Instant::now();
    // SIGTERM (what a service manager or CI sends) is treated as Ctrl-C is.
    apply.signal("TERM");
    let out = apply.finish(Duration::from_secs(300));
    let after = out.ended - asked;
    eprintln!("SIGTERM with a {grace} s grace period: the apply exited {} ms after it", after.as_millis());
    assert!(local_lock_free(&co.state), "the lock file is still held after the apply exited");
    for m in MASTERS {
        assert!(lease_free(&lab, m), "{m}: the lease is still held after the apply exited");
    }
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(after < GRACE + AFTER_GRACE, "the run ended {after:?} after the signal:\n{}", out.stderr);

    let given_up_run = report(&out);
    assert_eq!(given_up_run["interrupted"], "SIGTERM", "{given_up_run}");
    let first = steps(&given_up_run);
    let slow = step(&first, SLOW_PHASE, SLOW_HOST);
    assert_eq!((slow.outcome.as_str(), slow.kind.as_str()), ("failed", "timeout"), "{slow:?}");
    let given_up = format!("interrupted: still running {grace} s after the stop was asked, given up");
    assert!(slow.why.starts_with(&given_up), "{slow:?}");
    // Anything else still running at the end of the grace period was given up the same way.
    for s in failures(&first) {
        assert!(s.kind == "timeout" && s.why.starts_with(&given_up), "{s:?}");
    }
    assert_eq!(
        journal(&co.state).get(&key(slow)).map(String::as_str),
        Some("failed"),
        "the given-up step is journaled as not done"
    );

    shim.remove();
    let again = spawn_apply(&lab, &co.inventory, &[]).finish(Duration::from_secs(600));
    assert_eq!(again.code, Some(0), "the next apply failed:\n{}", again.stderr);
    let second = steps(&report(&again));
    assert!(failures(&second).is_empty(), "{:?}", failures(&second));
    let slow = step(&second, SLOW_PHASE, SLOW_HOST);
    assert_eq!((slow.outcome.as_str(), slow.done_before), ("ok", false), "the next apply finished it: {slow:?}");
}

#[test]
fn after_sigkill_in_the_middle_of_an_apply_the_next_apply_is_not_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::require();
    let co = Checkout::new(&lab, "interrupts-sigkill");
    let shim = Shim::install(&lab);
    let mut apply = spawn_apply(&lab, &co.inventory, &[]);
    wait_for_slow_step(&lab, &mut apply);
    assert_locks_held(&lab, &co);
    apply.signal("KILL");
    let out = apply.finish(Duration::from_secs(300));
    let died = out.ended;
    assert_eq!(out.code, None, "killed by a signal:\n{}", out.stderr);
    // What finished before the kill is journaled, and the journal is whole (written atomically).
    let journaled = journal(&co.state);
    for m in MASTERS {
        assert_eq!(journaled.get(&("identity".into(), m.into())).map(String::as_str), Some("done"), "{journaled:?}");
    }
    shim.remove();
    next_apply_after_a_death(&lab, &co, died);
}

#[test]
fn a_second_sigint_aborts_at_once_and_the_next_apply_is_not_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::require();
    let co = Checkout::new(&lab, "interrupts-twice");
    let shim = Shim::install(&lab);
    let mut apply = spawn_apply(&lab, &co.inventory, &[]);
    wait_for_slow_step(&lab, &mut apply);
    assert_locks_held(&lab, &co);
    apply.signal("INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!apply.exited(), "the first SIGINT lets the running step finish (20 s)");
    let again = Instant::now();
    apply.signal("INT");
    let out = apply.finish(Duration::from_secs(300));
    let after = out.ended - again;
    eprintln!("a second SIGINT: the apply exited {} ms after it", after.as_millis());
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(out.stderr.contains("SIGINT again: aborting now"), "{}", out.stderr);
    assert!(after < Duration::from_secs(2), "a second SIGINT aborts at once, not after {after:?}");
    // The journal is whole (written atomically as each step finished) and holds what finished.
    let journaled = journal(&co.state);
    assert!(journaled.values().any(|s| s == "done"), "{journaled:?}");
    shim.remove();
    next_apply_after_a_death(&lab, &co, out.ended);
}

#[test]
fn two_applies_at_once_the_second_is_refused_naming_the_first_and_changes_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::require();
    let first = Checkout::new(&lab, "interrupts-first");
    let second = Checkout::new(&lab, "interrupts-second");
    let pki_before = pki_sums(&lab);
    let shim = Shim::install(&lab);
    let mut apply = spawn_apply(&lab, &first.inventory, &[]);
    wait_for_slow_step(&lab, &mut apply);
    let holder = named_holder(apply.pid());
    for m in MASTERS {
        assert_eq!(lease_holder_pid(&lab, m), u64::from(apply.pid()), "{m} names the first apply as the lease holder");
        assert!(!lease_free(&lab, m), "{m}: the first apply holds the lease");
    }

    // From another state directory (another operator with the same cluster state): refused by
    // the lease on the masters, before any step, naming the first apply.
    let out = run(&lab, "apply", &second.inventory, &[], Duration::from_secs(120));
    eprintln!("the second controller was refused in {} ms", out.took().as_millis());
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&holder), "the refusal names the first apply ({holder}):\n{}", out.stderr);
    assert!(
        out.stderr.contains("(lease on master-") && out.stderr.contains("another controller is changing it"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "no report: no step ran: {}", text(&out.stdout));
    assert!(!second.state.join("journal.json").exists(), "the refused apply journaled a step");
    for m in MASTERS {
        assert_eq!(lease_holder_pid(&lab, m), u64::from(apply.pid()), "{m}: the refused apply rewrote the holder");
    }

    // From the same state directory: refused at once by the lock file, naming the first apply.
    let out = run(&lab, "apply", &first.inventory, &[], Duration::from_secs(60));
    eprintln!("the second apply in the same state directory was refused in {} ms", out.took().as_millis());
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&holder), "the refusal names the first apply ({holder}):\n{}", out.stderr);
    assert!(out.stderr.contains("another command that changes it is running"), "{}", out.stderr);
    assert!(!out.stderr.contains("lease on"), "refused by the lock file, before connecting: {}", out.stderr);
    assert!(out.took() < Duration::from_secs(3), "refused at once, not after {:?}", out.took());

    // plan takes no lock: it runs beside the apply.
    let out = run(&lab, "plan", &first.inventory, &[], Duration::from_secs(300));
    eprintln!("plan beside the running apply: {} ms", out.took().as_millis());
    assert_eq!(out.code, Some(0), "plan beside a running apply:\n{}", out.stderr);
    assert!(!out.stderr.contains("locked"), "{}", out.stderr);

    // The first apply was not disturbed, and nothing on the masters' PKI changed.
    let out = apply.finish(Duration::from_secs(600));
    assert_eq!(out.code, Some(0), "the first apply:\n{}", out.stderr);
    let failed: Vec<_> = failures(&steps(&report(&out))).into_iter().map(key).collect();
    assert!(failed.is_empty(), "{failed:?}");
    drop(shim);
    assert_eq!(pki_sums(&lab), pki_before, "the masters' /etc/kubernetes/pki changed");
    for m in MASTERS {
        assert!(lease_free(&lab, m), "{m}: the lease is still held after the first apply ended");
    }
}
