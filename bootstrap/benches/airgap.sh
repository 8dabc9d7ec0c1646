#!/usr/bin/env bash
# Air-gapped benchmark: what the OS packages add to a bundle, and what installing them from the
# bundle costs against installing them through an apt proxy.
#
#   bootstrap/benches/airgap.sh          both figures below (about 10 minutes)
#   bootstrap/benches/airgap.sh size     only the bundle sizes (no lab needed; deb.debian.org)
#
#   size     - `groundwork bundle packages --os R` into a copy of the lab's bundle, for Debian 12
#              and 13: packages, MiB and seconds per OS release (resolved and downloaded from
#              deb.debian.org; seconds include verifying and signing the whole bundle)
#   install  - on the container lab made bare (`tests/lab/lab reset`), the `package-repository`
#              and `packages` phases from the bundle, then (bare again) `packages` through the
#              bastion's apt proxy twice (apt-cacher-ng keeps what the first fetched): the slowest host's
#              seconds per phase. The lab is left bare: run `tests/lab/lab run` or apply after.
# Release build. Prints the figures; nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
INV=inventory/lab.yaml
PROXY_INV=inventory/.bench-airgap-proxy.yaml
SCRATCH=.lab/bench-airgap

for tool in jq:jq bc:bc; do command -v "${tool%%:*}" >/dev/null || apt-get install -y -qq "${tool#*:}" >/dev/null; done
echo "building groundwork and the agent (release)"
cargo build -q --release --locked -p groundwork
cargo build -q --locked -p groundwork-agent --profile release-agent --target x86_64-unknown-linux-musl
GW=$ROOT/target/release/groundwork
[[ -f .lab/bundle/manifest.json && -f .lab/bundle-key ]] || tests/lab/bundle

sizes() {
    echo
    echo "OS packages in the bundle (every role's closure), per OS release:"
    printf '  %-10s %9s %9s %9s\n' release packages MiB seconds
    local os copy start end
    for os in debian-12 debian-13; do
        copy=$SCRATCH/bundle-$os
        rm -rf "$copy" && mkdir -p "$SCRATCH"
        # A hard-linked copy of the lab's bundle (its files are replaced by rename, never written
        # in place): $os's repository is made anew in it, whatever the lab's has.
        cp -al .lab/bundle "$copy"
        start=$(date +%s.%N)
        "$GW" bundle packages --bundle "$copy" --os "$os" --key .lab/bundle-key >"$SCRATCH/$os.log" 2>&1 \
            || { echo "bundle packages --os $os failed: see $SCRATCH/$os.log" >&2; exit 1; }
        end=$(date +%s.%N)
        printf '  %-10s %9d %9d %9.0f\n' "$os" "$(ls "$copy/apt/$os/pool" | wc -l)" \
            "$(( $(du -sb "$copy/apt/$os" | cut -f1) / 1048576 ))" "$(echo "$end - $start" | bc)"
        rm -rf "$copy"
    done
}

# The slowest host's seconds in phase $2 of the JSON report $1.
slowest() { jq -r --arg p "$2" '[.phases[] | select(.name == $p) | .hosts[].took_ms] | max // 0 | . / 1000' "$1"; }

install() {
    mkdir -p "$SCRATCH"
    sed -e 's|^  source: bundle$|  source: proxy\n  proxy: http://10.78.0.2:3142|' \
        -e 's|^# yaml-language-server.*||' "$INV" >"$PROXY_INV"
    grep -q 'source: proxy' "$PROXY_INV" || { echo "could not make $PROXY_INV" >&2; exit 1; }
    echo
    echo "the Kubernetes nodes' packages (containerd, runc, CNI plugins, haproxy, ...) on the 7 bare nodes (slowest node, seconds):"
    tests/lab/lab reset >/dev/null
    "$GW" apply -i "$INV" --only package-repository,packages -o json \
        >"$SCRATCH/bundle.json" 2>/dev/null || true
    printf '  %-28s package-repository %6.1f   packages %6.1f\n' "from the bundle" \
        "$(slowest "$SCRATCH/bundle.json" package-repository)" "$(slowest "$SCRATCH/bundle.json" packages)"
    local run
    for run in "first run" "second run"; do
        tests/lab/lab reset >/dev/null
        "$GW" apply -i "$PROXY_INV" --only packages -o json >"$SCRATCH/proxy.json" 2>/dev/null || true
        printf '  %-28s %25s %6.1f\n' "through the proxy ($run)" "packages" "$(slowest "$SCRATCH/proxy.json" packages)"
    done
    rm -f "$PROXY_INV"
}

case ${1:-all} in
    size) sizes ;;
    install) install ;;
    all) sizes; install ;;
    *) echo "usage: $0 [size|install]" >&2; exit 2 ;;
esac
