//! The site registry on the cluster the apply test built (storage-1 has role `registry`): an
//! image built and saved with Docker here, as an operator would bring it, pushed with
//! `groundwork images push`, then pulled by a pod on a worker under its docker.io name. The
//! workers have no way out of the lab network: the pull can only come from the site registry,
//! and an image it lacks is not pulled at all. The registry refuses a push without credentials
//! or with wrong ones, asked with curl from inside a worker's network namespace.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use groundwork_lab_tests::{Lab, ensure_program, text};

const INV: &str = "inventory/lab.yaml";

/// A one-binary image (Debian's static busybox) built FROM scratch and saved with `docker save`.
fn build_probe_image(dir: &Path, name: &str) {
    ensure_program("busybox", &["busybox-static"]);
    let context = dir.join("context");
    std::fs::create_dir_all(&context).expect("context dir");
    let busybox = Command::new("sh").args(["-c", "command -v busybox"]).output().expect("sh runs");
    std::fs::copy(text(&busybox.stdout).trim(), context.join("busybox")).expect("busybox copied");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .expect("Dockerfile");
    let built = Command::new("docker").args(["build", "-q", "-t", name]).arg(&context).output().expect("docker runs");
    assert!(built.status.success(), "docker build: {}", text(&built.stderr));
    let images = dir.join("images");
    std::fs::create_dir_all(&images).expect("images dir");
    let saved =
        Command::new("docker").args(["save", "-o"]).arg(images.join("probe.tar")).arg(name).output().expect("docker");
    assert!(saved.status.success(), "docker save: {}", text(&saved.stderr));
    let _ = Command::new("docker").args(["rmi", name]).output();
}

fn kubectl(lab: &Lab, args: &str) -> String {
    let out = lab.kubectl(args);
    assert!(out.status.success(), "kubectl {args}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A pod on `node` running `image` (always pulled), echoing `marker`.
fn run_pod(lab: &Lab, name: &str, node: &str, image: &str, marker: &str) {
    let _ = lab.kubectl(&format!("delete pod {name} --ignore-not-found --wait=true"));
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  containers:\n  - {{name: probe, image: '{image}', imagePullPolicy: Always, args: [echo, '{marker}']}}\n"
    );
    let out = lab.kubectl_apply(&manifest);
    assert!(out.status.success(), "pod {name}: {}", text(&out.stderr));
}

/// Polls the pod until `done` says it is settled (or 120 s pass); its last JSON.
fn wait_pod(lab: &Lab, name: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let pod: serde_json::Value =
            serde_json::from_str(&kubectl(lab, &format!("get pod {name} -o json"))).expect("pod JSON");
        if done(&pod) || started.elapsed() > Duration::from_secs(120) {
            return pod;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The HTTP status of an upload start (`POST /v2/.../blobs/uploads/`) from inside `host`'s
/// network namespace, with `credentials` (`user:password`, given to curl on stdin) or none.
fn upload_status(lab: &Lab, host: &str, address: &str, credentials: Option<&str>) -> String {
    let pid = text(&lab.docker(&["inspect", "-f", "{{.State.Pid}}", &lab.container(host)]).stdout).trim().to_string();
    let ca = lab.cluster_state().join("pki/ca.crt");
    let mut config = format!(
        "url = \"https://{address}/v2/docker.io/library/refused/blobs/uploads/\"\nrequest = \"POST\"\ncacert = \"{}\"\nsilent\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}}\"\n",
        ca.display()
    );
    if let Some(c) = credentials {
        config.push_str(&format!("user = \"{c}\"\n"));
    }
    let mut child = Command::new("nsenter")
        .args(["-t", &pid, "-n", "curl", "-K", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsenter runs");
    child.stdin.take().expect("stdin").write_all(config.as_bytes()).expect("config written");
    let out: Output = child.wait_with_output().expect("curl ends");
    format!("{}{}", text(&out.stdout).trim(), text(&out.stderr).trim())
}

#[test]
fn an_image_pushed_to_the_site_registry_is_pulled_by_a_worker_under_its_docker_io_name() {
    let lab = Lab::require();
    let dir = lab.scratch("registry");
    let tag = format!("t{}", std::process::id());
    let name = format!("docker.io/library/gw-probe:{tag}");
    build_probe_image(&dir, &name);

    // Pushed, reported with its digest; a second push sends no blob again.
    let pushed =
        lab.groundwork(&["images", "push", "-i", INV, "--from", dir.join("images").to_str().unwrap(), "-o", "json"]);
    assert!(pushed.status.success(), "images push: {}\n{}", text(&pushed.stdout), text(&pushed.stderr));
    let report = lab.json(&pushed);
    let image = &report["images"][0];
    assert_eq!(image["image"], name.as_str(), "{report:#}");
    let digest = image["digest"].as_str().expect("a digest").to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{report:#}");
    assert!(image["blobs_uploaded"].as_u64() >= Some(2), "config and layer sent: {report:#}");
    let address = report["registry"].as_str().expect("the registry's address").to_string();
    let again =
        lab.groundwork(&["images", "push", "-i", INV, "--from", dir.join("images").to_str().unwrap(), "-o", "json"]);
    assert!(again.status.success(), "second push: {}", text(&again.stderr));
    let again = lab.json(&again);
    assert_eq!(again["images"][0]["blobs_uploaded"], 0, "{again:#}");
    assert_eq!(again["images"][0]["digest"], digest.as_str(), "{again:#}");

    // Pulled on a worker by the name it was pushed under, through the site registry.
    let marker = format!("pulled-through-the-site-registry-{tag}");
    run_pod(&lab, "gw-registry-probe", "worker-2", &name, &marker);
    let pod = wait_pod(&lab, "gw-registry-probe", |p| {
        p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed"
    });
    assert_eq!(pod["status"]["phase"], "Succeeded", "{pod:#}");
    let image_id = pod["status"]["containerStatuses"][0]["imageID"].as_str().unwrap_or_default();
    assert!(image_id.ends_with(&digest), "the pod ran {image_id}, not the pushed {digest}");
    let logs = kubectl(&lab, "logs gw-registry-probe");
    assert!(logs.contains(&marker), "{logs}");

    // An image the site registry lacks is not pulled from anywhere: the workers have no way out.
    run_pod(&lab, "gw-registry-absent", "worker-2", &format!("docker.io/library/gw-absent:{tag}"), "never");
    let pod = wait_pod(&lab, "gw-registry-absent", |p| {
        let reason = &p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"];
        reason == "ErrImagePull" || reason == "ImagePullBackOff"
    });
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(waiting["reason"] == "ErrImagePull" || waiting["reason"] == "ImagePullBackOff", "{pod:#}");
    for p in ["gw-registry-probe", "gw-registry-absent"] {
        let _ = lab.kubectl(&format!("delete pod {p} --ignore-not-found --wait=false"));
    }

    // Pushes without credentials, or with wrong ones, are refused; the real ones are taken.
    ensure_program("curl", &["curl"]);
    assert_eq!(upload_status(&lab, "worker-1", &address, None), "401");
    assert_eq!(upload_status(&lab, "worker-1", &address, Some("groundwork:not-the-password")), "401");
    let password = std::fs::read_to_string(lab.cluster_state().join("secrets/registry-password")).expect("generated");
    let good = format!("groundwork:{}", password.trim());
    assert_eq!(upload_status(&lab, "worker-1", &address, Some(&good)), "202");
}
