#!/usr/bin/env python3
"""Render DIGIT's Helmfile deployment as helmfile would, with a real Helm engine.

Usage: render.py DEPLOY_AS_CODE_DIR ENV_SECRETS_YAML ENV_YAML [EMIT_DIR] > report.json
       render.py --deployer CHART_DIR NAME VALUES_YAML... > documents.json

DEPLOY_AS_CODE_DIR holds `digit-helmfile.yaml`; the two environment files replace
`charts/environments/env-secrets.yaml` and `env.yaml` (the files groundwork writes).

What it does, as helmfile does it:
  1. merges the environment values (env-secrets first, env.yaml over it);
  2. renders every state file (`digit-helmfile.yaml` and each sub-helmfile) as a Go template
     over those values, with Helm's engine (same text/template + sprig functions), and fails on
     a `.Values.a.b` path that does not exist (helmfile renders state files with
     missingkey=error; Helm's engine would print an empty value);
  3. for every release with `installed` not false, merges its values list (files, then inline
     maps) and `set:` entries over the chart's values.yaml and renders the chart with Helm.

With EMIT_DIR, every rendered object of release R goes to EMIT_DIR/R.yaml as well.

It prints a JSON report: per release its namespace, chart, installed flag, the rendered objects
(kind, apiVersion, name, namespace) and the PersistentVolumeClaims its StatefulSets will create
(name, namespace, size, storageClassName), and any error. It exits 0 even when releases fail:
the caller (a Rust test) decides.

With --deployer it renders one chart as DIGIT's Go deployer (digit-lts) does,
`helm template -f <env>.yaml --set name=NAME [-f CHART_DIR/NAME-values.yaml] .`: the values files
merged in order over the chart's values.yaml (the caller passes CHART_DIR/NAME-values.yaml when
there is one), then `name: NAME` over them, release name `release-name`, namespace `default`. It
prints {"documents": [every rendered object], "errors": [...]} and exits 0 on render errors.

Helm is the PyPI package helm-python-sdk (Helm v4 as a shared library, no helm binary)."""

import copy
import json
import os
import re
import shutil
import sys
import tempfile

import yaml
from helm_python import Chart

class Loader(yaml.SafeLoader):
    """YAML as Helm reads it (via JSON): timestamps stay strings."""


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

VALUES_PATH = re.compile(r"(?<![\w$])\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def deep_merge(base, over):
    """Helm/helmfile values merge: maps merge key by key, everything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


ACTION = re.compile(r"{{.*?}}", re.S)
COMMENT = re.compile(r"{{-?\s*/\*.*?\*/\s*-?}}", re.S)


def missing_paths(text, values):
    """The `.Values.a.b` paths a state file's template actions read that the values lack
    (text outside `{{ }}`, comments included, is not evaluated)."""
    missing = []
    actions = " ".join(ACTION.findall(COMMENT.sub("", text)))
    for match in VALUES_PATH.finditer(actions):
        node = values
        for part in match.group(1).strip(".").split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                missing.append(match.group(0))
                break
    return sorted(set(missing))


def render_template(text, values, workdir):
    """Render one state file's text with Helm's template engine over `values`."""
    chart_dir = tempfile.mkdtemp(dir=workdir)
    os.makedirs(os.path.join(chart_dir, "templates"))
    with open(os.path.join(chart_dir, "Chart.yaml"), "w") as f:
        f.write("apiVersion: v2\nname: state\nversion: 0.0.0\n")
    with open(os.path.join(chart_dir, "templates", "state.yaml"), "w") as f:
        f.write(text)
    rendered = Chart.load(chart_dir).render(values=values, name="state", namespace="default")
    return next(iter(rendered.values()))


def load_yaml_docs(text):
    return [d for d in yaml.load_all(text, Loader=Loader) if d is not None]


def environment_values(text, path, env_files):
    """The state file's own `environments.env.values`, in order: files relative to it (DIGIT's
    two environment files are replaced by `env_files`, keyed by base name) and inline maps."""
    first = text.split("\n---", 1)[0]
    try:
        head = yaml.load(first, Loader=Loader) or {}
    except yaml.YAMLError:
        head = {}
    items = (((head.get("environments") or {}).get("env") or {}).get("values")) or []
    if not items:
        items = list(env_files.keys())
    values = {}
    for item in items:
        if isinstance(item, dict):
            values = deep_merge(values, item)
            continue
        source = env_files.get(os.path.basename(item)) or os.path.join(os.path.dirname(path), item)
        with open(source) as f:
            values = deep_merge(values, yaml.load(f, Loader=Loader) or {})
    return values


def state_file(path, env_files, workdir):
    """Render a state file as helmfile does; returns its YAML documents."""
    with open(path) as f:
        text = f.read()
    env_values = environment_values(text, path, env_files)
    missing = missing_paths(text, env_values)
    if missing:
        raise RuntimeError(f"{path}: map has no entry for {', '.join(missing)} (helmfile renders with missingkey=error)")
    return load_yaml_docs(render_template(text, env_values, workdir))


def release_values(release, base_dir, errors):
    merged = {}
    for item in release.get("values") or []:
        if isinstance(item, str):
            path = os.path.join(base_dir, item)
            if not os.path.exists(path):
                errors.append(f"values file {item} not found (missingFileHandler)")
                continue
            with open(path) as f:
                merged = deep_merge(merged, yaml.load(f, Loader=Loader) or {})
        elif isinstance(item, dict):
            merged = deep_merge(merged, item)
    for entry in release.get("set") or []:
        node = merged
        parts = split_set_path(entry["name"])
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = entry.get("value")
    return merged


def split_set_path(name):
    """helm --set paths: dots separate keys, `\\.` is a literal dot."""
    return [p.replace("\0", ".") for p in name.replace("\\.", "\0").split(".")]


def claims_of(obj, release_namespace):
    """The PVCs a StatefulSet's volumeClaimTemplates make: <template>-<statefulset>-<ordinal>."""
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas", 1)
    namespace = (obj.get("metadata") or {}).get("namespace") or release_namespace
    out = []
    for template in spec.get("volumeClaimTemplates") or []:
        tspec = template.get("spec") or {}
        size = ((tspec.get("resources") or {}).get("requests") or {}).get("storage")
        for ordinal in range(int(replicas)):
            out.append({
                "name": f"{template['metadata']['name']}-{obj['metadata']['name']}-{ordinal}",
                "namespace": namespace,
                "size": str(size) if size is not None else None,
                "storageClassName": tspec.get("storageClassName"),
                "accessModes": tspec.get("accessModes") or [],
                "statefulSet": obj["metadata"]["name"],
            })
    return out


def with_local_dependencies(chart_dir, workdir):
    """What helmfile's `helm dependency build` does for `file://` dependencies: a chart whose
    `charts/` lacks one gets a copy with the dependency's directory put there."""
    with open(os.path.join(chart_dir, "Chart.yaml")) as f:
        meta = yaml.load(f, Loader=Loader) or {}
    local = [d for d in meta.get("dependencies") or [] if str(d.get("repository", "")).startswith("file://")]
    vendored = os.listdir(os.path.join(chart_dir, "charts")) if os.path.isdir(os.path.join(chart_dir, "charts")) else []
    needed = [d for d in local if not any(v == d["name"] or v.startswith(d["name"] + "-") for v in vendored)]
    if not needed:
        return chart_dir
    copy_dir = os.path.join(tempfile.mkdtemp(dir=workdir), os.path.basename(chart_dir))
    shutil.copytree(chart_dir, copy_dir)
    os.makedirs(os.path.join(copy_dir, "charts"), exist_ok=True)
    for dep in needed:
        source = os.path.normpath(os.path.join(chart_dir, dep["repository"][len("file://"):]))
        shutil.copytree(source, os.path.join(copy_dir, "charts", dep["name"]))
    return copy_dir


def render_release(release, base_dir, workdir, emit=None):
    name = release["name"]
    namespace = release.get("namespace") or "default"
    chart = str(release.get("chart", "")).replace("{{ .Release.Name }}", name)
    installed = release.get("installed", True)
    report = {"name": name, "namespace": namespace, "chart": chart, "installed": bool(installed),
              "objects": [], "claims": [], "errors": []}
    if not installed:
        return report
    values = release_values(release, base_dir, report["errors"])
    chart_dir = os.path.normpath(os.path.join(base_dir, chart))
    try:
        chart_dir = with_local_dependencies(chart_dir, workdir)
        rendered = Chart.load(chart_dir).render(values=values, name=name, namespace=namespace,
                                                is_install=True)
    except Exception as e:  # HelmRenderError, HelmValuesError, ...
        report["errors"].append(f"{type(e).__name__}: {e}")
        return report
    emitted = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml", ".tpl")) or "NOTES" in path:
            continue
        emitted.append(text)
        try:
            docs = load_yaml_docs(text)
        except yaml.YAMLError as e:
            report["errors"].append(f"{path}: rendered YAML does not parse: {e}")
            continue
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc:
                continue
            meta = doc.get("metadata") or {}
            report["objects"].append({
                "kind": doc["kind"], "apiVersion": doc.get("apiVersion"),
                "name": meta.get("name"), "namespace": meta.get("namespace") or namespace,
                "template": path,
            })
            if doc["kind"] == "StatefulSet":
                report["claims"].extend(claims_of(doc, namespace))
            elif doc["kind"] == "PersistentVolumeClaim":
                spec = doc.get("spec") or {}
                report["claims"].append({
                    "name": meta.get("name"), "namespace": meta.get("namespace") or namespace,
                    "size": str(((spec.get("resources") or {}).get("requests") or {}).get("storage")),
                    "storageClassName": spec.get("storageClassName"),
                    "accessModes": spec.get("accessModes") or [], "statefulSet": None,
                })
    if emit:
        with open(os.path.join(emit, f"{name}.yaml"), "w") as f:
            f.write("\n---\n".join(emitted))
    return report


def deployer_main(chart_dir, name, values_files):
    """`helm template` of one chart as the Go deployer runs it (see the module's docstring)."""
    values = {}
    for path in values_files:
        with open(path) as f:
            values = deep_merge(values, yaml.load(f, Loader=Loader) or {})
    values["name"] = name
    report = {"documents": [], "errors": []}
    try:
        rendered = Chart.load(chart_dir).render(values=values, name="release-name", namespace="default",
                                                is_install=True)
    except Exception as e:  # HelmRenderError, HelmValuesError, ...
        report["errors"].append(f"{type(e).__name__}: {e}")
        rendered = {}
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")) or "NOTES" in path:
            continue
        try:
            docs = load_yaml_docs(text)
        except yaml.YAMLError as e:
            report["errors"].append(f"{path}: rendered YAML does not parse: {e}")
            continue
        report["documents"].extend(d for d in docs if isinstance(d, dict) and "kind" in d)
    print(json.dumps(report, indent=1))


def main():
    if sys.argv[1:2] == ["--deployer"]:
        deployer_main(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    root, secrets_file, env_file = sys.argv[1:4]
    emit = sys.argv[4] if len(sys.argv) > 4 else None
    if emit:
        os.makedirs(emit, exist_ok=True)
    values = {"env-secrets.yaml": secrets_file, "env.yaml": env_file}
    report = {"stateFiles": [], "releases": [], "errors": []}
    with tempfile.TemporaryDirectory() as workdir:
        try:
            top = state_file(os.path.join(root, "digit-helmfile.yaml"), values, workdir)
        except Exception as e:
            report["errors"].append(str(e))
            print(json.dumps(report, indent=1))
            return
        subs = [h["path"] for doc in top for h in (doc.get("helmfiles") or [])]
        for sub in subs:
            path = os.path.normpath(os.path.join(root, sub))
            report["stateFiles"].append(os.path.relpath(path, root))
            try:
                docs = state_file(path, values, workdir)
            except Exception as e:
                report["errors"].append(f"{os.path.relpath(path, root)}: {e}")
                continue
            for doc in docs:
                for release in doc.get("releases") or []:
                    entry = render_release(release, os.path.dirname(path), workdir, emit)
                    entry["stateFile"] = os.path.relpath(path, root)
                    report["releases"].append(entry)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
