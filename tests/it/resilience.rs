//! Drills for an apply on a live cluster over links that drop, against nodes that lie: the
//! bastion stopped, then paused, while a step is in flight; a node whose agent prints a 1 GiB
//! line and one whose agent prints garbage. Needs the cluster the apply test builds, and disturbs
//! the lab: tests/run runs this binary alone, after the apply and VIP tests. Whatever happens,
//! every drill leaves the lab as it found it (see `Restore`).

use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use groundwork_lab_tests::{Lab, text};

/// One drill at a time: they share the bastion and the cluster lock.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The worker whose container-runtime step is made slow, so that a drill can act while it runs.
const SLOW_HOST: &str = "worker-1";
/// Written by the slow `ctr` when the step it slows down has started.
const SLOW_MARK: &str = "/run/groundwork-drill-slow-step";

/// Commands that put the lab back, run when the drill ends however it ends (also on a panic).
struct Restore<'a> {
    lab: &'a Lab,
    docker: Vec<Vec<String>>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        for args in &self.docker {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = self.lab.docker(&args);
        }
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// An apply running in the background, its output collected as it comes.
struct Running {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
    started: Instant,
}

struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    took: Duration,
    /// The controller's peak resident memory (VmHWM), in KiB, as last seen before it exited.
    peak_rss_kib: u64,
}

fn spawn_apply(lab: &Lab, extra: &[&str]) -> Running {
    let args: Vec<&str> =
        ["apply", "-i", "inventory/lab.yaml", "-o", "json"].into_iter().chain(extra.iter().copied()).collect();
    let (child, stdout, stderr) = lab.spawn_groundwork(&args);
    Running { child, stdout, stderr, started: Instant::now() }
}

impl Running {
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the apply to end, at most `bound` after it started (then it is killed and the
    /// drill fails), sampling its peak memory meanwhile.
    fn finish(mut self, bound: Duration) -> Finished {
        let status_file = format!("/proc/{}/status", self.child.id());
        let mut peak = 0;
        let status = loop {
            if let Ok(s) = std::fs::read_to_string(&status_file)
                && let Some(kib) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if self.started.elapsed() > bound {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = text(&self.stderr.join().unwrap_or_default());
                panic!("the apply did not end within {bound:?}:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Finished {
            status,
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: text(&self.stderr.join().unwrap_or_default()),
            took: self.started.elapsed(),
            peak_rss_kib: peak,
        }
    }
}

fn report(out: &Finished) -> serde_json::Value {
    groundwork_lab_tests::report_json(&out.stdout, &out.stderr)
}

/// (phase, host, kind, error) of every failure in a report.
fn failures(report: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    report["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["hosts"].as_array().into_iter().flatten().map(move |h| (p, h)))
        .filter(|(_, h)| h["outcome"] == "failed")
        .map(|(p, h)| (s(&p["name"]), s(&h["host"]), s(&h["kind"]), s(&h["error"])))
        .collect()
}

/// Writes an executable `path` on `host` with `content` (through docker, not groundwork).
fn put_program(lab: &Lab, host: &str, path: &str, content: &str) {
    let out = lab.docker_with_stdin(
        &["exec", "-i", &lab.container(host), "sh", "-c", &format!("cat > {path} && chmod 0755 {path}")],
        content,
    );
    assert!(out.status.success(), "{host}: writing {path}: {}", text(&out.stderr));
}

/// Makes SLOW_HOST's container-runtime step take `seconds` (its `ctr` sleeps first, every time).
fn slow_step(lab: &Lab, seconds: u32) {
    assert!(lab.sh_in(SLOW_HOST, &format!("rm -f {SLOW_MARK}")).status.success());
    let shim = format!("#!/bin/sh\ntouch {SLOW_MARK}\nsleep {seconds}\nexec /usr/bin/ctr \"$@\"\n");
    put_program(lab, SLOW_HOST, "/usr/local/bin/ctr", &shim);
}

fn slow_step_removed(lab: &Lab) -> Vec<String> {
    owned(&["exec", &lab.container(SLOW_HOST), "rm", "-f", "/usr/local/bin/ctr", SLOW_MARK])
}

/// Waits until the slow step is running on SLOW_HOST (the apply is then in the middle).
fn wait_for_slow_step(lab: &Lab, apply: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !lab.sh_in(SLOW_HOST, &format!("test -e {SLOW_MARK}")).status.success() {
        assert!(!apply.exited(), "the apply ended before its slow step started");
        assert!(Instant::now() < deadline, "the slow step did not start within 300 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The bastion disturbed by `disturb` while a step runs, and put back by `heal` after `outage`:
/// the apply must end within `bound` of the disturbance, the lock must be free, and a re-run
/// must finish with no failures.
fn bastion_drill(disturb: &str, heal: &str, outage: Duration, bound: Duration) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::require();
    let bastion = lab.container("bastion");
    let _restore = Restore {
        lab: &lab,
        docker: vec![owned(&["unpause", &bastion]), owned(&["start", &bastion]), slow_step_removed(&lab)],
    };
    slow_step(&lab, 20);
    let mut apply = spawn_apply(&lab, &[]);
    wait_for_slow_step(&lab, &mut apply);

    let disturbed = Instant::now();
    assert!(lab.docker(&[disturb, &bastion]).status.success(), "docker {disturb} {bastion}");
    std::thread::sleep(outage);
    assert!(lab.docker(&[heal, &bastion]).status.success(), "docker {heal} {bastion}");
    lab.wait_for_ssh("bastion");
    let out = apply.finish(bound + Duration::from_secs(300));
    let after = disturbed.elapsed();
    eprintln!("docker {disturb}: the apply ended {} s after it ({} s in all)", after.as_secs(), out.took.as_secs());
    assert!(
        after < bound,
        "the apply took {after:?} after the bastion's {disturb}, more than {bound:?}:\n{}",
        out.stderr
    );

    // It reconnected and finished, or said clearly that (and why) hosts were lost.
    let first = report(&out);
    let failed = failures(&first);
    if out.status.success() {
        assert!(out.stderr.contains("bastion reconnected"), "the bastion was {disturb}d, yet:\n{}", out.stderr);
        // The step in flight on SLOW_HOST when the bastion went was run again.
        assert!(
            out.stderr.lines().any(|l| l.contains(SLOW_HOST) && l.contains("running the step again")),
            "{}",
            out.stderr
        );
    } else {
        assert!(!failed.is_empty() || !first["stopped"].is_null(), "a failed run says why:\n{}", out.stderr);
        for (phase, host, kind, error) in &failed {
            assert!(["transport", "timeout"].contains(&kind.as_str()), "{phase} {host}: {kind}: {error}");
            assert!(error.contains(host) || error.contains("bastion"), "{phase} {host}: {error}");
        }
    }
    eprintln!("first run after docker {disturb}: success={} failures={failed:?}", out.status.success());

    // The lock is free and the cluster finishes: a re-run (without the slow step) has no failure.
    let removed = slow_step_removed(&lab);
    let removed: Vec<&str> = removed.iter().map(String::as_str).collect();
    assert!(lab.docker(&removed).status.success());
    let again = spawn_apply(&lab, &[]).finish(Duration::from_secs(600));
    assert!(again.status.success(), "the re-run failed:\n{}", again.stderr);
    let failed = failures(&report(&again));
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn a_bastion_stopped_in_the_middle_of_an_apply_is_reconnected() {
    bastion_drill("stop", "start", Duration::from_secs(8), Duration::from_secs(180));
}

#[test]
fn a_bastion_paused_in_the_middle_of_an_apply_is_reconnected() {
    // Longer than the keepalives' patience (about 20 s): the connection must be given up and
    // made again, not merely resumed.
    bastion_drill("pause", "unpause", Duration::from_secs(35), Duration::from_secs(240));
}

#[test]
fn nodes_that_send_a_huge_line_or_garbage_fail_alone_and_the_controller_stays_small() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::require();
    let agent = lab
        .groundwork_bin()
        .parent()
        .and_then(|d| d.parent())
        .map(|t| t.join("x86_64-unknown-linux-musl/release-agent/groundwork-agent"))
        .expect("target dir");
    let sum = Command::new("sha256sum").arg(&agent).output().expect("sha256sum runs");
    let sum = text(&sum.stdout).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(sum.len(), 64, "no agent at {}", agent.display());

    let hostile = [
        // One line of 1 GiB.
        ("worker-2", "#!/bin/sh\nhead -c 1073741824 /dev/zero | tr '\\000' x\necho\n"),
        // Random bytes, escape sequences and all.
        ("worker-3", "#!/bin/sh\nhead -c 65536 /dev/urandom\necho\nsleep 2\n"),
    ];
    // Restored afterwards: no shim, no fake agent (the next apply uploads the real one).
    let _restore = Restore {
        lab: &lab,
        docker: hostile
            .iter()
            .map(|(h, _)| {
                owned(&[
                    "exec",
                    &lab.container(h),
                    "rm",
                    "-f",
                    "/usr/local/bin/sha256sum",
                    "/var/lib/groundwork/bin/groundwork-agent",
                ])
            })
            .collect(),
    };
    for (host, program) in hostile {
        put_program(&lab, host, "/var/lib/groundwork/bin/groundwork-agent", program);
        // A compromised node lies: its sha256sum says it has the controller's agent.
        put_program(&lab, host, "/usr/local/bin/sha256sum", &format!("#!/bin/sh\necho \"{sum}  -\"\n"));
    }

    // The baseline check would stop the run at the two lost hosts; the drill wants the others to go on.
    let out = spawn_apply(&lab, &["--skip-phases", "check"]).finish(Duration::from_secs(300));
    let peak_mb = out.peak_rss_kib / 1024;
    eprintln!(
        "controller peak RSS with a 1 GiB line and garbage from two nodes: {peak_mb} MB ({} s)",
        out.took.as_secs()
    );
    let report = report(&out);
    let failed = failures(&report);
    let of =
        |host: &str| failed.iter().find(|f| f.1 == host).unwrap_or_else(|| panic!("{host} did not fail: {failed:?}"));
    let (phase, _, kind, error) = of("worker-2");
    assert_eq!((phase.as_str(), kind.as_str()), ("connect", "refused"), "{error}");
    assert_eq!(error, "worker-2: the agent sent a line longer than 16 MiB; its channel was closed");
    let (phase, _, kind, error) = of("worker-3");
    assert_eq!((phase.as_str(), kind.as_str()), ("connect", "refused"), "{error}");
    assert!(error.starts_with("worker-3: the agent sent an unreadable greeting"), "{error}");
    assert!(!error.chars().any(char::is_control), "control characters reached the report: {error:?}");
    let others: Vec<_> = failed.iter().filter(|f| f.1 != "worker-2" && f.1 != "worker-3").collect();
    assert!(others.is_empty(), "the other hosts must succeed: {others:?}");
    assert!(report["stopped"].is_null(), "{}", report["stopped"]);
    assert!(peak_mb < 100, "the controller's peak RSS was {peak_mb} MB");

    // Put back: the real agent is uploaded again and the whole apply passes.
    drop(_restore);
    let again = spawn_apply(&lab, &[]).finish(Duration::from_secs(600));
    assert!(again.status.success(), "{}", again.stderr);
}
