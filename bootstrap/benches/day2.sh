#!/usr/bin/env bash
# Day-2 benchmark on the container lab (3 masters, 4 workers behind the bastion), release build:
#
#   bootstrap/benches/day2.sh            backup, restore, renew, node remove/add on the lab's cluster, then the upgrade
#   bootstrap/benches/day2.sh etcd       only etcd backup (5 runs) and one restore, on the lab's cluster
#   bootstrap/benches/day2.sh nodes      only `node remove worker-4` and `apply` adding it back (3 runs)
#   bootstrap/benches/day2.sh upgrade    only the upgrade: the lab reset, a cluster built at v1.33.0
#                                        (.lab/bundle-v1.33.0), then `groundwork upgrade` to v1.33.3
#
#   backup   - `groundwork etcd backup` of the lab cluster: min and median of 5, the snapshot's size
#   restore  - `groundwork etcd restore --yes` of the last snapshot (the control plane down, every
#              member restored, every node Ready again)
#   renew    - `groundwork certs renew` (3 masters, one at a time)
#   nodes    - `groundwork node remove worker-4` (drain, the others updated, Node deleted, host reset)
#              and the `apply` that joins it again: min and median of 3 each
#   upgrade  - `groundwork upgrade` v1.33.0 -> v1.33.3 with its phases' times, and the no-op re-run
# Prints the figures; nothing is asserted. The etcd part needs the lab's cluster (tests/lab/lab run);
# the upgrade part rebuilds it from bare hosts (about 15 minutes) and leaves it at v1.33.3 under a
# scratch inventory: `tests/lab/lab run` builds the lab's own again.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
INV=inventory/lab.yaml
OLD=v1.33.0

for tool in jq:jq bc:bc; do command -v "${tool%%:*}" >/dev/null || apt-get install -y -qq "${tool#*:}" >/dev/null; done
echo "building groundwork and the agent (release)"
cargo build -q --release --locked -p groundwork
cargo build -q --locked -p groundwork-agent --profile release-agent --target x86_64-unknown-linux-musl
GW=$ROOT/target/release/groundwork

# wall seconds of `groundwork ARGS...`; its stdout in $OUT
OUT=/tmp/gw-bench-day2.json
timed() {
    local start end
    start=$(date +%s.%N)
    "$GW" "$@" >"$OUT" 2>/dev/null || { echo "groundwork $* failed; see $OUT" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

etcd_part() {
    "$GW" apply -i "$INV" >/dev/null 2>&1 || { echo "the lab's cluster is not built: run tests/lab/lab run first" >&2; exit 1; }
    local dir runs=() i
    dir=$(mktemp -d /tmp/gw-bench-backups.XXXXXX)
    for i in 1 2 3 4 5; do runs+=("$(timed etcd backup -i "$INV" --dir "$dir" --keep 1 -o json)"); done
    mapfile -t runs < <(printf '%s\n' "${runs[@]}" | sort -n)
    local size snapshot
    size=$(jq .info.bytes "$OUT")
    snapshot=$(jq -r .file "$OUT")
    local restore renew
    restore=$(timed etcd restore -i "$INV" --snapshot "$snapshot" --yes -o json)
    renew=$(timed certs renew -i "$INV" -o json)
    rm -rf "$dir"
    echo
    echo "groundwork day 2 on the lab ($(date -u +%Y-%m-%d), $(nproc) cores, 3 masters + 4 workers)"
    printf '  etcd backup       min %5.2f s   median %5.2f s   (snapshot %s bytes)\n' "${runs[0]}" "${runs[2]}" "$size"
    printf '  etcd restore      %6.1f s   (every member restored, every node Ready)\n' "$restore"
    printf '  certs renew       %6.1f s   (3 masters, one at a time)\n' "$renew"
}

nodes_part() {
    "$GW" apply -i "$INV" >/dev/null 2>&1 || { echo "the lab's cluster is not built: run tests/lab/lab run first" >&2; exit 1; }
    local removes=() adds=() i
    for i in 1 2 3; do
        removes+=("$(timed node remove worker-4 -i "$INV" -o json)")
        adds+=("$(timed apply -i "$INV" -o json)")
    done
    mapfile -t removes < <(printf '%s\n' "${removes[@]}" | sort -n)
    mapfile -t adds < <(printf '%s\n' "${adds[@]}" | sort -n)
    echo
    echo "groundwork node remove / add on the lab ($(date -u +%Y-%m-%d), $(nproc) cores, 3 masters + 4 workers)"
    printf '  node remove worker-4   min %5.1f s   median %5.1f s\n' "${removes[0]}" "${removes[1]}"
    printf '  apply adding it back   min %5.1f s   median %5.1f s   (join, pod network, Ready)\n' "${adds[0]}" "${adds[1]}"
}

upgrade_part() {
    [[ -f .lab/bundle-$OLD/manifest.json ]] || GWLAB_K8S_VERSION=$OLD tests/lab/bundle
    echo "making the lab's hosts bare again (tests/lab/lab reset) and building the cluster at $OLD"
    tests/lab/lab reset >/dev/null
    local dir=.lab/bench-upgrade
    rm -rf "$dir" && mkdir -p "$dir"
    cp .lab/known_hosts "$dir/known_hosts"
    sed -e "s#\.\./\.lab/known_hosts#$ROOT/$dir/known_hosts#; s#\.\./\.lab/#$ROOT/.lab/#g; s#\.\./\.\./shared/#$(cd .. && pwd)/shared/#g" \
        "$INV" >"$dir/new.yaml"
    sed -e "s#kubernetesVersion: v1.33.3#kubernetesVersion: $OLD#; s#$ROOT/.lab/bundle\$#$ROOT/.lab/bundle-$OLD#" "$dir/new.yaml" >"$dir/old.yaml"
    timed apply -i "$dir/old.yaml" -o json >/dev/null
    local upgrade again
    upgrade=$(timed upgrade -i "$dir/new.yaml" -o json)
    local phases
    phases=$(jq -r '.phases[] | "\(.name) \(.took_ms / 1000 | floor) s"' "$OUT" | paste -sd, - | sed 's/,/, /g')
    again=$(timed upgrade -i "$dir/new.yaml" -o json)
    echo
    echo "groundwork upgrade on the lab ($(date -u +%Y-%m-%d), $(nproc) cores, 3 masters + 4 workers)"
    printf '  upgrade %s -> v1.33.3   %6.1f s   (%s)\n' "$OLD" "$upgrade" "$phases"
    printf '  upgrade again (no-op)    %6.1f s\n' "$again"
}

case ${1:-all} in
    etcd) etcd_part ;;
    nodes) nodes_part ;;
    upgrade) upgrade_part ;;
    all) etcd_part; nodes_part; upgrade_part ;;
    *) echo "usage: bootstrap/benches/day2.sh [etcd|nodes|upgrade]" >&2; exit 2 ;;
esac
