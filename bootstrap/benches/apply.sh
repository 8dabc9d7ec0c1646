#!/usr/bin/env bash
# Apply benchmark on the container lab (3 masters, 4 workers behind the bastion):
#
#   bootstrap/benches/apply.sh          all three figures below (about 10 minutes)
#   bootstrap/benches/apply.sh noop     only the no-op figure, on the cluster the lab already has
#
#   full     - `groundwork apply` from bare hosts (the lab's Kubernetes hosts are recreated first)
#   no-op    - the same apply again: everything verified, nothing changed (5 runs: min and median)
#   +worker  - worker-5 added to the lab and to a copy of the inventory (same state directory),
#              then apply: which hosts each phase changed is printed, to show what adding a worker
#              touches
# Release build. Prints the figures; nothing is asserted. Afterwards worker-5 is removed again
# (from the lab and from the cluster). Takes about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
INV=inventory/lab.yaml
ADD=inventory/.bench-add-worker.yaml

for tool in /usr/bin/time:time jq:jq bc:bc; do command -v "${tool%%:*}" >/dev/null || apt-get install -y -qq "${tool#*:}" >/dev/null; done
echo "building groundwork and the agent (release)"
cargo build -q --release --locked -p groundwork
cargo build -q --locked -p groundwork-agent --profile release-agent --target x86_64-unknown-linux-musl
GW=$ROOT/target/release/groundwork

# wall seconds of `groundwork apply` with inventory $1; the JSON report in $2
timed_apply() {
    local start end
    start=$(date +%s.%N)
    "$GW" apply -i "$1" -o json >"$2" 2>/dev/null || { echo "apply failed; see $2" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
# phase: hosts it changed
touched() {
    jq -r '.phases[] | select(.name != "connect") | "\(.name): \([.hosts[] | select((.changes // []) | length > 0) | .host] | join(", "))"' "$1" \
        | sed 's/: $/: -/'
}

# The no-op figure: 5 re-applies of the built cluster, wall seconds each; prints min and median.
noop_runs() {
    local runs=() i t
    for i in 1 2 3 4 5; do runs+=("$(timed_apply "$INV" /tmp/gw-bench-noop.json)"); done
    mapfile -t runs < <(printf '%s\n' "${runs[@]}" | sort -n)
    noop_min=${runs[0]} noop=${runs[2]}
    noop_changes=$(jq '[.phases[].hosts[] | (.changes // []) | length] | add' /tmp/gw-bench-noop.json)
}

if [[ ${1:-} == noop ]]; then
    "$GW" apply -i "$INV" >/dev/null 2>&1 || { echo "the lab's cluster is not built: run tests/lab/lab run first" >&2; exit 1; }
    noop_runs
    echo
    echo "groundwork no-op re-apply on the lab ($(date -u +%Y-%m-%d), $(nproc) cores, 9 hosts behind the bastion)"
    printf '  no-op re-apply   min %5.2f s   median %5.2f s  (%s changes)\n' "$noop_min" "$noop" "$noop_changes"
    exit 0
fi

echo "making the lab's hosts bare again and forgetting the cluster (tests/lab/lab reset)"
tests/lab/lab reset >/dev/null

full=$(timed_apply "$INV" /tmp/gw-bench-full.json)
noop_runs

tests/lab/lab up --workers 5 >/dev/null
sed 's/^  - {name: worker-4, address: 10.78.0.104, roles: \[worker\]}$/&\n  - {name: worker-5, address: 10.78.0.105, roles: [worker]}/' "$INV" >"$ADD"
grep -q worker-5 "$ADD" || { echo "could not add worker-5 to $ADD" >&2; exit 1; }
added=$(timed_apply "$ADD" /tmp/gw-bench-add.json)

echo
echo "groundwork apply on the lab ($(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB)"
printf '  full apply from bare hosts   %6.1f s\n' "$full"
printf '  no-op re-apply               %6.2f s  (median of 5; min %.2f s; %s changes)\n' "$noop" "$noop_min" "$noop_changes"
printf '  adding worker-5              %6.1f s\n' "$added"
echo "  hosts each phase changed when worker-5 was added:"
touched /tmp/gw-bench-add.json | sed 's/^/    /'

# Back to the default lab: worker-5 out of the cluster and the lab.
docker exec gwlab-master-1 kubectl --kubeconfig /etc/kubernetes/admin.conf delete node worker-5 --wait=false >/dev/null 2>&1 || true
rm -f "$ADD"
tests/lab/lab up --workers 4 >/dev/null
"$GW" apply -i "$INV" >/dev/null 2>&1 || echo "note: the re-apply after removing worker-5 failed" >&2
