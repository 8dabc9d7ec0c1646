//! Helpers shared by the DIGIT handoff tests (`digit_render`, `digit_deployer`): not lab tests, they
//! run `groundwork handoff` on the example inventory and render what it writes with a real Helm
//! engine (helm-python-sdk in the venv `tests/digit/setup` makes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::text;

/// The example inventory's cluster name (the handoff's directory below `handoff/`).
pub const CLUSTER: &str = "digit-sdc";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

/// target/debug, where cargo put this test and the groundwork binary.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// The `groundwork` binary cargo built beside the test (`cargo build -p groundwork` makes it).
pub fn groundwork_bin() -> PathBuf {
    let bin = target_dir().join("groundwork");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests through cargo with the workspace (tests/run), or `cargo build -p groundwork` first",
        bin.display()
    );
    bin
}

/// A scratch directory `target/debug/<test>/<name>` for one test, emptied first (left afterwards, to look at).
pub fn scratch(test: &str, name: &str) -> PathBuf {
    let dir = target_dir().join(test).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The venv's python with helm-python-sdk (made once by tests/digit/setup).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let setup = root().join("tests/digit/setup");
        let out = Command::new(&setup).output().unwrap_or_else(|e| panic!("{}: {e}", setup.display()));
        if !out.status.success() {
            let venv = Command::new("python3").args(["-c", "import venv, ensurepip"]).output();
            let hint = match venv {
                Err(e) => format!("python3 does not run ({e}): install python3 and python3-venv (Debian)"),
                Ok(o) if !o.status.success() => format!(
                    "python3 has no working venv/ensurepip ({}): install python3-venv (Debian)",
                    text(&o.stderr).trim()
                ),
                Ok(_) => "python3 and venv are there: is PyPI reachable (pip install helm-python-sdk)?".to_string(),
            };
            panic!("{} failed: {hint}\n{}", setup.display(), text(&out.stderr));
        }
        let python = PathBuf::from(text(&out.stdout).trim());
        assert!(python.is_file(), "{} printed {}, not a python", setup.display(), python.display());
        python
    })
}

/// Writes `content` to `path`, making its parent directories first.
pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Writes `content` to `path` (parents made first) readable by its owner only (0600).
pub fn secret_file(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, content);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// The example inventory in a directory of its own, with what it references stubbed.
pub struct Site {
    /// The directory the inventory is in (groundwork runs there; its handoff goes below it).
    pub dir: PathBuf,
    /// The inventory file, `<dir>/sdc-example.yaml`.
    pub inventory: PathBuf,
}

impl Site {
    /// `inventory/sdc-example.yaml` in `dir`, its `keyFile` pointed at a stub in `dir` and its
    /// text then changed by `edit`, with what else it references stubbed: an SSH key, the offline
    /// bundle and its public key, the CNI manifest, a database password.
    pub fn example(dir: PathBuf, edit: impl FnOnce(String) -> String) -> Site {
        let example =
            std::fs::read_to_string(root().join("inventory/sdc-example.yaml")).expect("the example inventory");
        let key = "keyFile: ~/.ssh/id_ed25519";
        assert!(example.contains(key), "the example inventory has changed: no {key:?}");
        let example = example.replacen(key, &format!("keyFile: {}", dir.join("id_ed25519").display()), 1);
        let inventory = dir.join("sdc-example.yaml");
        write(&inventory, &edit(example));
        secret_file(&dir.join("id_ed25519"), "not a key: handoff does not connect\n");
        std::fs::create_dir_all(dir.join("bundles/kubernetes-v1.33.3-amd64")).expect("bundle dir");
        write(&dir.join("cni/calico.yaml"), "");
        // A well-formed public key (handoff checks no signature): made once with `minisign -G`.
        write(
            &dir.join("keys/bundle-key.pub"),
            "untrusted comment: minisign public key 77BFB84FE1A4BA29\nRWQpuqThT7i/dyN8GRYa1PAaZZRUmFUCe14zZBvJBrX0/zWovfeoRJN/\n",
        );
        secret_file(&dir.join("secrets/egov_app.password"), "egov-app-test-password-7f3a\n");
        Site { dir, inventory }
    }

    /// Runs `groundwork ARGS -i <inventory>` in the site's directory.
    pub fn groundwork(&self, args: &[&str]) -> Output {
        Command::new(groundwork_bin())
            .args(args)
            .arg("-i")
            .arg(&self.inventory)
            .current_dir(&self.dir)
            .env("GW_ISCSI_CHAP_PASSWORD", "chap-test-password-91c2")
            .output()
            .expect("groundwork runs")
    }

    /// `groundwork handoff -o json`, which must succeed; its outcome.
    pub fn handoff_json(&self) -> Json {
        let out = self.groundwork(&["handoff", "-o", "json"]);
        assert!(out.status.success(), "groundwork handoff failed:\n{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("handoff -o json is not JSON ({e}): {}", text(&out.stdout)))
    }

    /// The handoff directory of the cluster, `<dir>/handoff/<CLUSTER>`.
    pub fn handoff(&self) -> PathBuf {
        self.dir.join("handoff").join(CLUSTER)
    }
}

/// Every non-null document of the YAML stream in `path`.
pub fn yaml_docs(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|d: &Yaml| !d.is_null())
        .collect()
}

/// The one YAML document in `path`.
pub fn yaml_file(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The node at the key path `path` below `v`, if there is one.
pub fn yget<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter().try_fold(v, |node, key| node.get(*key))
}

/// The string at the key path `path` below `v`, or "" (missing, or not a string).
pub fn ystr<'a>(v: &'a Yaml, path: &[&str]) -> &'a str {
    yget(v, path).and_then(Yaml::as_str).unwrap_or_default()
}

/// The scalar leaves under `node`, by dotted path below `prefix` (none: from the top; list items as `[i]`).
pub fn leaves(node: &Yaml, prefix: &str, out: &mut impl Extend<(String, String)>) {
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match node {
        Yaml::Mapping(m) => {
            for (k, v) in m {
                let name = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                leaves(v, &key(&name), out);
            }
        }
        Yaml::Sequence(s) => {
            for (i, v) in s.iter().enumerate() {
                leaves(v, &format!("{prefix}[{i}]"), out);
            }
        }
        Yaml::String(s) => out.extend([(prefix.to_string(), s.clone())]),
        Yaml::Number(n) => out.extend([(prefix.to_string(), n.to_string())]),
        Yaml::Bool(b) => out.extend([(prefix.to_string(), b.to_string())]),
        Yaml::Null => out.extend([(prefix.to_string(), String::new())]),
        Yaml::Tagged(t) => leaves(&t.value, prefix, out),
    }
}

/// Whether `text` holds one of DIGIT's placeholders (`<domain_name>`, `<db_host>`).
pub fn is_placeholder(text: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"<[a-z][a-z0-9]*(_[a-z0-9]+)+>").expect("placeholder regex")).is_match(text)
}

/// A Kubernetes quantity (`8Gi`, `500Mi`, `1.5G`, `1024`) in bytes.
pub fn quantity(q: &str) -> Option<u128> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let multiplier: u128 = match suffix {
        "" => 1,
        "k" => 1000,
        "M" => 1000u128.pow(2),
        "G" => 1000u128.pow(3),
        "T" => 1000u128.pow(4),
        "P" => 1000u128.pow(5),
        "E" => 1000u128.pow(6),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut bytes = whole * multiplier;
    if !fraction.is_empty() {
        let scale = 10u128.pow(fraction.len() as u32);
        bytes += (fraction.parse::<u128>().ok()? * multiplier).div_ceil(scale);
    }
    Some(bytes)
}

/// Fails with `what` and every problem, one a line, unless there are none.
pub fn assert_none(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}
