#!/usr/bin/env bash
# Apply benchmark on the container lab (3 masters, 4 workers behind the bastion):
#
#   bootstrap/benches/apply.sh
#
#   full     - `groundwork apply` from bare hosts (the lab's Kubernetes hosts are recreated first)
#   no-op    - the same apply again: everything verified, nothing changed
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

echo "recreating the lab's hosts behind the bastion (bare) and forgetting the cluster"
for n in master-1 master-2 master-3 worker-1 worker-2 worker-3 worker-4 worker-5 storage-1 database-1; do
    docker rm -f "gwlab-$n" >/dev/null 2>&1 || true
    docker volume rm "gwlab-$n-containerd" "gwlab-$n-srv" >/dev/null 2>&1 || true
done
rm -rf inventory/.groundwork/gwlab
tests/lab/lab up >/dev/null

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

full=$(timed_apply "$INV" /tmp/gw-bench-full.json)
noop=$(timed_apply "$INV" /tmp/gw-bench-noop.json)
noop_changes=$(jq '[.phases[].hosts[] | (.changes // []) | length] | add' /tmp/gw-bench-noop.json)

tests/lab/lab up --workers 5 >/dev/null
sed 's/^  - {name: worker-4, address: 10.78.0.104, roles: \[worker\]}$/&\n  - {name: worker-5, address: 10.78.0.105, roles: [worker]}/' "$INV" >"$ADD"
grep -q worker-5 "$ADD" || { echo "could not add worker-5 to $ADD" >&2; exit 1; }
added=$(timed_apply "$ADD" /tmp/gw-bench-add.json)

echo
echo "groundwork apply on the lab ($(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB)"
printf '  full apply from bare hosts   %6.1f s\n' "$full"
printf '  no-op re-apply               %6.1f s  (%s changes)\n' "$noop" "$noop_changes"
printf '  adding worker-5              %6.1f s\n' "$added"
echo "  hosts each phase changed when worker-5 was added:"
touched /tmp/gw-bench-add.json | sed 's/^/    /'

# Back to the default lab: worker-5 out of the cluster and the lab.
docker exec gwlab-master-1 kubectl --kubeconfig /etc/kubernetes/admin.conf delete node worker-5 --wait=false >/dev/null 2>&1 || true
rm -f "$ADD"
tests/lab/lab up --workers 4 >/dev/null
"$GW" apply -i "$INV" >/dev/null 2>&1 || echo "note: the re-apply after removing worker-5 failed" >&2
