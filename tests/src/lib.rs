//! Helpers for tests that run against the built-in container lab. The lab is real: systemd
//! containers with sshd behind a bastion, brought up by `tests/lab/lab up` (`tests/run` does it).
//! These helpers look at it from outside with independent tools (docker, OpenSSH), so that a
//! test of groundwork never has to trust groundwork to tell it what the lab is.

pub mod digit;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use groundwork::inventory::{self, Inventory};

/// The bastion's apt proxy (apt-cacher-ng) as the lab's nodes reach it: tests/lab/lab's
/// BASTION_INT_IP and PROXY_PORT. groundwork does not use it (the lab is air-gapped: every package
/// comes from the bundle); the lab's own checks do.
pub const LAB_APT_PROXY: &str = "http://10.78.0.2:3142";

/// What a background process wrote on one of its pipes, once it has closed it.
pub type Drained = std::thread::JoinHandle<Vec<u8>>;

pub struct Lab {
    pub root: PathBuf,
    pub state: PathBuf,
    pub inventory_path: PathBuf,
    pub inventory: Inventory,
}

impl Lab {
    /// The running lab, or a failed test that says how to bring it up.
    pub fn require() -> Lab {
        Lab::open(
            ".lab",
            "known_hosts",
            "inventory/lab.yaml",
            "the lab is not up: run `tests/lab/lab up` first (`tests/run` brings it up and runs every test)",
        )
    }

    /// The running Vagrant lab of `inventory` (relative to the repository root), or a failed
    /// test that says how to bring it up. Its hosts are VMs: `ssh` and `sudo_script` reach them,
    /// the docker helpers do not.
    pub fn require_vm(inventory: &str) -> Lab {
        Lab::open(
            ".vagrant-lab",
            "ssh_config",
            inventory,
            &format!(
                "the Vagrant lab is not up: run `vagrant/lab up -i {inventory}` first (`tests/run` does it for tests/vagrant/inventory.yaml)"
            ),
        )
    }

    /// A lab whose state directory `state` (relative to the repository root) holds `marker`
    /// once it is up, with the inventory at `inventory`.
    fn open(state: &str, marker: &str, inventory: &str, not_up: &str) -> Lab {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root");
        let state = root.join(state);
        let inventory_path = root.join(inventory);
        assert!(state.join(marker).is_file(), "{not_up}");
        let loaded = inventory::load(&inventory_path)
            .unwrap_or_else(|e| panic!("the inventory {} does not load: {e}", inventory_path.display()));
        Lab { root, state, inventory_path, inventory: loaded.inventory }
    }

    /// Runs `script` with `sudo sh -eu` on `host` through the bastion (OpenSSH); the script goes
    /// over stdin, so nothing in it shows on a command line.
    pub fn sudo_script(&self, host: &str, script: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("ssh")
            .arg("-F")
            .arg(self.state.join("ssh_config"))
            .args(["-o", "BatchMode=yes", host, "sudo sh -eu"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ssh runs");
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write the script");
        child.wait_with_output().expect("ssh finishes")
    }

    pub fn container(&self, host: &str) -> String {
        format!("gwlab-{host}")
    }

    /// Runs `cmd` on `host` through the bastion with OpenSSH and the lab's own client config.
    pub fn ssh(&self, host: &str, cmd: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.state.join("ssh_config"))
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, cmd])
            .output()
            .expect("ssh runs")
    }

    /// Runs the lab script with `args`.
    pub fn script(&self, args: &[&str]) -> Output {
        Command::new(self.root.join("tests/lab/lab")).args(args).output().expect("tests/lab/lab runs")
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker").args(args).output().expect("docker runs")
    }

    /// `sh -c SCRIPT` inside `host`'s container (not through groundwork, nor SSH).
    pub fn sh_in(&self, host: &str, script: &str) -> Output {
        self.docker(&["exec", &self.container(host), "sh", "-c", script])
    }

    /// `docker ARGS` with `input` on stdin (secrets stay off command lines).
    pub fn docker_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("docker")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("docker runs");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("docker finishes")
    }

    /// Waits until `host`'s container (after a `docker start`) has sshd running again.
    pub fn wait_for_ssh(&self, host: &str) {
        for _ in 0..120 {
            let out = self.docker(&["exec", &self.container(host), "systemctl", "is-active", "ssh"]);
            if text(&out.stdout).trim() == "active" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("{host} did not come back");
    }
}

impl Lab {
    /// `kubectl apply -f -` on master-1 (its own admin.conf, through docker, not groundwork) with
    /// `manifests` on stdin.
    pub fn kubectl_apply(&self, manifests: &str) -> Output {
        self.docker_with_stdin(
            &[
                "exec",
                "-i",
                &self.container("master-1"),
                "kubectl",
                "--kubeconfig",
                "/etc/kubernetes/admin.conf",
                "apply",
                "-f",
                "-",
            ],
            manifests,
        )
    }

    /// `kubectl ARGS` on master-1 with its own admin.conf (through docker, not groundwork).
    pub fn kubectl(&self, args: &str) -> Output {
        self.sh_in("master-1", &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf {args}"))
    }

    /// The groundwork state directory of the lab's cluster.
    pub fn cluster_state(&self) -> PathBuf {
        self.root.join("inventory/.groundwork/gwlab")
    }

    /// The `groundwork` binary cargo built beside this test.
    pub fn groundwork_bin(&self) -> PathBuf {
        let exe = std::env::current_exe().expect("test executable path");
        // target/debug/deps/<test> -> target/debug/groundwork
        let bin = exe.parent().and_then(Path::parent).map(|d| d.join("groundwork")).expect("target dir");
        assert!(bin.is_file(), "{} is missing: run the tests through cargo (tests/run)", bin.display());
        bin
    }

    /// Starts `groundwork ARGS` in the background; its stdout and stderr are read as they come (a
    /// pipe nobody reads would stall it), each into the buffer its thread returns.
    pub fn spawn_groundwork(&self, args: &[&str]) -> (std::process::Child, Drained, Drained) {
        use std::io::Read;
        let mut child = Command::new(self.groundwork_bin())
            .args(args)
            .current_dir(&self.root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("groundwork runs");
        let drain = |mut from: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut all = Vec::new();
                let _ = from.read_to_end(&mut all);
                all
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        (child, stdout, stderr)
    }

    /// Runs `groundwork ARGS`.
    pub fn groundwork(&self, args: &[&str]) -> Output {
        Command::new(self.groundwork_bin()).args(args).current_dir(&self.root).output().expect("groundwork runs")
    }

    /// A scratch directory for one test, emptied first.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.state.join("test-scratch").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// A copy of the lab inventory in `dir`, with its own copy of known_hosts, after `edit`.
    /// Paths are made absolute so that the copy works from anywhere.
    pub fn inventory_copy(&self, dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(&self.inventory_path).expect("lab inventory");
        let lab = self.state.display().to_string();
        let shared = self.root.join("../shared").canonicalize().unwrap_or_else(|_| self.root.join("../shared"));
        let text = text
            .replace("../.lab/known_hosts", &dir.join("known_hosts").display().to_string())
            .replace("../.lab/", &format!("{lab}/"))
            .replace("../../shared/", &format!("{}/", shared.display()));
        std::fs::copy(self.state.join("known_hosts"), dir.join("known_hosts")).expect("copy known_hosts");
        let path = dir.join("inventory.yaml");
        std::fs::write(&path, edit(text)).expect("write inventory copy");
        path
    }

    /// groundwork's `-o json` output, checked against the report schema.
    pub fn json(&self, out: &Output) -> serde_json::Value {
        report_json(&out.stdout, &text(&out.stderr))
    }
}

/// A groundwork `-o json` report, parsed and checked against the committed report schema
/// (`groundwork schema --report`): every report a lab test reads is also a proof of the schema.
pub fn report_json(stdout: &[u8], stderr: &str) -> serde_json::Value {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let report: serde_json::Value =
        serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {stderr}", text(stdout)));
    let validator = VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(&groundwork::ops::output::schema_json()).expect("the report schema is JSON");
        jsonschema::validator_for(&schema).expect("the report schema compiles")
    });
    let errors: Vec<String> = validator.iter_errors(&report).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "the report does not match its schema:\n{}\n{report}", errors.join("\n"));
    report
}

/// (phase, host, change) for every change in an apply report.
pub fn changes(report: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for p in report["phases"].as_array().into_iter().flatten() {
        for h in p["hosts"].as_array().into_iter().flatten() {
            for c in h["changes"].as_array().into_iter().flatten() {
                all.push((
                    p["name"].as_str().unwrap_or_default().to_string(),
                    h["host"].as_str().unwrap_or_default().to_string(),
                    c["summary"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    all
}

/// The facts report's entry for `host`.
pub fn host<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["hosts"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn file_digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Samples every process's command line (`/proc/*/cmdline`) inside lab containers, continuously:
/// a loop in each container (perl, which every Debian has), started with `docker exec`, reading
/// every process's command line every `every` (20 ms by default) and keeping each distinct one
/// once. A secret on any command line during the sampled time shows up in `stop`'s text. A
/// process that lives less than the interval can be missed; `start_every` samples faster.
pub struct CmdlineSampler<'a> {
    lab: &'a Lab,
    hosts: Vec<String>,
}

const SAMPLE_OUT: &str = "/tmp/gw-cmdline-sample";
const SAMPLE_STOP: &str = "/tmp/gw-cmdline-sample.stop";
const SAMPLER: &str = r#"$| = 1; my ($stop, $every) = @ARGV; my %seen;
until (-e $stop) {
    opendir(my $d, "/proc") or die "/proc: $!";
    for my $p (grep { /^\d+$/ } readdir $d) {
        open(my $f, "<", "/proc/$p/cmdline") or next;
        my $c = do { local $/; <$f> }; close $f;
        next unless defined $c && length $c;
        my $line = join(" ", split(/\0/, $c));
        print "$line\n" unless $seen{$line}++;
    }
    closedir $d;
    select(undef, undef, undef, $every);
}"#;

impl<'a> CmdlineSampler<'a> {
    pub fn start(lab: &'a Lab, hosts: &[&str]) -> CmdlineSampler<'a> {
        CmdlineSampler::start_every(lab, hosts, std::time::Duration::from_millis(20))
    }

    pub fn start_every(lab: &'a Lab, hosts: &[&str], every: std::time::Duration) -> CmdlineSampler<'a> {
        let script = format!(
            "rm -f {SAMPLE_STOP}; echo $$ > {SAMPLE_OUT}.pid; exec perl -e \"$0\" {SAMPLE_STOP} {} > {SAMPLE_OUT}",
            every.as_secs_f64()
        );
        for h in hosts {
            let out = lab.docker(&["exec", "-d", &lab.container(h), "sh", "-c", &script, SAMPLER]);
            assert!(out.status.success(), "starting the sampler on {h}: {}", text(&out.stderr));
        }
        CmdlineSampler { lab, hosts: hosts.iter().map(|h| h.to_string()).collect() }
    }

    /// Stops sampling; every distinct command line seen, per host (`host: command line` lines).
    pub fn stop(self) -> String {
        let mut all = String::new();
        for h in &self.hosts {
            let c = self.lab.container(h);
            // Wait until the loop has seen the stop file and ended (at most ~2 s).
            let script = format!(
                "touch {SAMPLE_STOP}; p=$(cat {SAMPLE_OUT}.pid 2>/dev/null); \
                 for i in $(seq 100); do kill -0 \"$p\" 2>/dev/null || break; sleep 0.02; done; \
                 cat {SAMPLE_OUT} 2>/dev/null; rm -f {SAMPLE_OUT} {SAMPLE_OUT}.pid {SAMPLE_STOP}"
            );
            let out = self.lab.docker(&["exec", &c, "sh", "-c", &script]);
            for line in text(&out.stdout).lines() {
                all.push_str(&format!("{h}: {line}\n"));
            }
        }
        all
    }
}

/// Every secret of the lab's inventory and cluster state, by name: the bootstrap token's secret,
/// the CHAP and sudo passwords, the database passwords, and each body line of every private key.
pub fn lab_secrets(lab: &Lab) -> Vec<(String, String)> {
    let mut secrets = vec![];
    let state = lab.root.join("inventory/.groundwork/gwlab");
    let token: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("pki/bootstrap-token")).unwrap_or_default())
            .unwrap_or_default();
    if let Some(secret) = token["token"].as_str().and_then(|t| t.split('.').nth(1)) {
        secrets.push(("the bootstrap token's secret".to_string(), secret.to_string()));
    }
    for dir in [lab.state.join("secrets"), state.join("secrets")] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let value = std::fs::read_to_string(entry.path()).unwrap_or_default().trim().to_string();
            if value.len() >= 8 {
                secrets.push((entry.path().display().to_string(), value));
            }
        }
    }
    fn keys(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                keys(&path, out);
            } else if path.extension().is_some_and(|e| e == "key") {
                let pem = std::fs::read_to_string(&path).unwrap_or_default();
                for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16) {
                    out.push((path.display().to_string(), line.to_string()));
                }
            }
        }
    }
    keys(&state.join("pki"), &mut secrets);
    secrets
}

/// The secrets of `secrets` that occur in `sampled`, by name (what leaked, never the value).
pub fn leaked(sampled: &str, secrets: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> =
        secrets.iter().filter(|(_, value)| sampled.contains(value.as_str())).map(|(name, _)| name.clone()).collect();
    names.dedup();
    names
}

/// DIGIT's own deployment (the lab inventory's `handoff.digit.source`) rendered with real Helm by
/// `tests/digit/render.py`, from the environment files the lab's handoff wrote for one DIGIT
/// environment: what `helmfile -e env template` would give the operator.
pub struct DigitRender {
    /// render.py's JSON report (releases, their objects and claims, errors).
    pub report: serde_json::Value,
    /// EMIT_DIR: each release's rendered objects in `<release>.yaml` (0700: DIGIT's Secrets).
    pub emit: PathBuf,
    python: PathBuf,
}

/// Reads a YAML stream as Helm does (no timestamps) and prints its objects as one JSON array.
const YAML_TO_JSON: &str = r#"import json, sys, yaml
class L(yaml.SafeLoader): pass
L.yaml_implicit_resolvers = {k: [(t, r) for t, r in v if t != "tag:yaml.org,2002:timestamp"]
                             for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
with open(sys.argv[1]) as f:
    print(json.dumps([d for d in yaml.load_all(f, Loader=L) if isinstance(d, dict)]))
"#;

impl Lab {
    /// The first DIGIT environment of the lab inventory (`handoff.digit.environments`).
    pub fn digit_environment(&self) -> String {
        let digit = self.inventory.handoff.digit.as_ref().expect("the lab inventory has handoff.digit");
        digit.environments.first().map(|e| e.name.clone()).expect("handoff.digit names an environment")
    }

    /// Renders DIGIT's deployment with the handoff's env files of `env`
    /// (`<handoff>/gwlab/digit/helmfile/<env>/env.yaml`, `env-secrets.yaml`).
    pub fn render_digit(&self, env: &str) -> DigitRender {
        let setup = Command::new(self.root.join("tests/digit/setup")).output().expect("tests/digit/setup runs");
        assert!(setup.status.success(), "tests/digit/setup: {}", text(&setup.stderr));
        let python = PathBuf::from(text(&setup.stdout).trim());
        let digit = self.inventory.handoff.digit.as_ref().expect("the lab inventory has handoff.digit");
        let source = self.inventory_path.parent().expect("inventory directory").join(&digit.source);
        let envs = self.state.join("handoff/gwlab/digit/helmfile").join(env);
        let emit = self.scratch(&format!("digit-render-{env}"));
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&emit, std::fs::Permissions::from_mode(0o700)).expect("chmod 0700");
        }
        let out = Command::new(&python)
            .arg(self.root.join("tests/digit/render.py"))
            .arg(&source)
            .arg(envs.join("env-secrets.yaml"))
            .arg(envs.join("env.yaml"))
            .arg(&emit)
            .output()
            .expect("render.py runs");
        assert!(out.status.success(), "render.py: {}", text(&out.stderr));
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("render.py's report is not JSON ({e}): {}", text(&out.stderr)));
        DigitRender { report, emit, python }
    }

    /// DIGIT's `db` Secret as its `configmaps` release renders it from the handoff's env files
    /// (what `state adopt` reads the database passwords from), applied to the cluster; the
    /// handoff's database.yaml first (the `egov` namespace). Secrets go over stdin only.
    pub fn deploy_digit_db_secret(&self) {
        let database = self.state.join("handoff/gwlab/manifests/database.yaml");
        let database = std::fs::read_to_string(&database).unwrap_or_else(|e| panic!("{}: {e}", database.display()));
        let out = self.kubectl_apply(&database);
        assert!(out.status.success(), "kubectl apply of database.yaml: {}", text(&out.stderr));
        let render = self.render_digit(&self.digit_environment());
        let out = self.kubectl_apply(&list(vec![render.db_secret()]));
        assert!(out.status.success(), "kubectl apply of DIGIT's db Secret: {}", text(&out.stderr));
    }
}

/// `objects` as one `v1 List`, for `kubectl apply -f -`.
pub fn list(objects: Vec<serde_json::Value>) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string()
}

impl DigitRender {
    /// The releases render.py rendered (installed or not).
    pub fn releases(&self) -> &[serde_json::Value] {
        self.report["releases"].as_array().map(Vec::as_slice).unwrap_or_default()
    }

    /// Every error of the render: the state files' (`file: error`) and each release's.
    pub fn errors(&self) -> Vec<String> {
        let mut all: Vec<String> = self.report["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e.as_str().unwrap_or("?").to_string())
            .collect();
        for r in self.releases() {
            for e in r["errors"].as_array().into_iter().flatten() {
                all.push(format!("release {}: {}", r["name"].as_str().unwrap_or("?"), e.as_str().unwrap_or("?")));
            }
        }
        all
    }

    /// Release `release`'s rendered objects (EMIT_DIR/<release>.yaml) as JSON, each with the
    /// release's namespace where the chart left it out (or null), as Helm installs them.
    pub fn objects(&self, release: &str) -> Vec<serde_json::Value> {
        let namespace = self
            .releases()
            .iter()
            .find(|r| r["name"] == release)
            .and_then(|r| r["namespace"].as_str())
            .unwrap_or_else(|| panic!("no release {release} in the render"))
            .to_string();
        let file = self.emit.join(format!("{release}.yaml"));
        let out = Command::new(&self.python).args(["-c", YAML_TO_JSON]).arg(&file).output().expect("python runs");
        assert!(out.status.success(), "{}: {}", file.display(), text(&out.stderr));
        let mut objects: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON from python");
        for o in &mut objects {
            if o["metadata"]["namespace"].as_str().is_none_or(str::is_empty) {
                o["metadata"]["namespace"] = namespace.clone().into();
            }
        }
        objects
    }

    /// The `db` Secret of DIGIT's `configmaps` release, exactly as rendered.
    pub fn db_secret(&self) -> serde_json::Value {
        self.objects("configmaps")
            .into_iter()
            .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "db")
            .expect("DIGIT's configmaps release renders the Secret db")
    }

    /// A PersistentVolumeClaim for every claim of every rendered release: for a StatefulSet's
    /// claim, what the StatefulSet controller would create (name, namespace, access modes,
    /// storage request, the class only when the template sets one); a PersistentVolumeClaim the
    /// chart renders itself, as rendered.
    pub fn claims(&self) -> Vec<serde_json::Value> {
        let mut all = vec![];
        for r in self.releases() {
            let claims = r["claims"].as_array().map(Vec::as_slice).unwrap_or_default();
            if claims.is_empty() {
                continue;
            }
            let release = r["name"].as_str().expect("release name");
            let rendered = self.objects(release);
            for c in claims {
                if c["statefulSet"].is_null() {
                    let pvc = rendered
                        .iter()
                        .find(|o| {
                            o["kind"] == "PersistentVolumeClaim"
                                && o["metadata"]["name"] == c["name"]
                                && o["metadata"]["namespace"] == c["namespace"]
                        })
                        .unwrap_or_else(|| panic!("release {release} renders the claim {c}"));
                    all.push(pvc.clone());
                } else {
                    let mut spec = serde_json::json!({
                        "accessModes": c["accessModes"],
                        "resources": {"requests": {"storage": c["size"]}},
                    });
                    if let Some(class) = c["storageClassName"].as_str() {
                        spec["storageClassName"] = class.into();
                    }
                    all.push(serde_json::json!({
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": {"name": c["name"], "namespace": c["namespace"]},
                        "spec": spec,
                    }));
                }
            }
        }
        all
    }
}

/// The API polled from a worker every 200 ms through its local endpoint, as its kubelet reaches
/// it, in the background until [`stop`](Self::stop).
pub struct ApiPoller<'a> {
    lab: &'a Lab,
    worker: &'a str,
    log: String,
}

impl<'a> ApiPoller<'a> {
    pub fn start(lab: &'a Lab, worker: &'a str, name: &str) -> ApiPoller<'a> {
        let log = format!("/tmp/gw-{name}-polls");
        let script = format!(
            "rm -f {log} {log}.stop; while [ ! -e {log}.stop ]; do \
               if kubectl --kubeconfig /etc/kubernetes/kubelet.conf --request-timeout=2s get --raw /readyz >/dev/null 2>&1; \
               then r=ok; else r=fail; fi; \
               echo \"$(date +%s.%N) $r\" >> {log}; sleep 0.2; done"
        );
        let out = lab.docker(&["exec", "-d", &lab.container(worker), "sh", "-c", &script]);
        assert!(out.status.success(), "starting the poller: {}", text(&out.stderr));
        ApiPoller { lab, worker, log }
    }

    /// (seconds since the epoch, answered) for every poll.
    pub fn stop(self) -> Vec<(f64, bool)> {
        let log = &self.log;
        let script = format!("touch {log}.stop; sleep 2.5; cat {log}; rm -f {log} {log}.stop");
        let out = self.lab.sh_in(self.worker, &script);
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(t, r)| Some((t.parse().ok()?, r == "ok")))
            .collect()
    }
}

/// The longest run of failed polls.
pub fn worst_outage(polls: &[(f64, bool)]) -> usize {
    polls.iter().fold((0, 0), |(run, worst), (_, ok)| if *ok { (0, worst) } else { (run + 1, worst.max(run + 1)) }).1
}

/// What a reset host still has of the cluster, a line per finding (empty when nothing): files,
/// running units, KUBE-/CNI- iptables chains, groundwork's /etc/hosts block, the CNI bridge.
pub fn leftovers(lab: &Lab, host: &str) -> String {
    let out = lab.sh_in(
        host,
        "for f in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/groundwork /etc/cni/net.d/10-groundwork.conflist \
                  /etc/systemd/system/etcd.service; do [ -e $f ] && echo \"file $f\"; done; \
         for u in kubelet etcd; do systemctl is-active -q $u && echo \"running $u\"; done; \
         iptables-save | grep -E '^:(KUBE|CNI)-' | sed 's/^/chain /'; \
         grep -q '^# BEGIN groundwork' /etc/hosts && echo 'hosts block'; \
         ip link show cni0 >/dev/null 2>&1 && echo 'bridge cni0'; true",
    );
    text(&out.stdout)
}

/// A Debian package's program, installed on this machine when missing (a fresh machine may lack it).
pub fn ensure_program(program: &str, packages: &[&str]) {
    if Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success()) {
        return;
    }
    let _ = Command::new("apt-get").args(["update", "-qq"]).output();
    let out = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get runs");
    assert!(out.status.success(), "apt-get install {packages:?}: {}", text(&out.stderr));
}
