#!/usr/bin/env bash
# Fan-out benchmark: `groundwork facts` against `ansible -m setup` on the container lab, with N
# hosts behind one bastion, for N in 10 50 100 (or the sizes given as arguments).
#
#   bootstrap/benches/facts_vs_ansible.sh [N...]
#
# For each N it resizes the lab (3 masters, storage, database and N-5 workers), then times:
#   groundwork cold  - release build, first run (the agent is uploaded to the new hosts)
#   groundwork warm  - second run (agent already there)
#   ansible          - ansible-core from PyPI in a venv, `ansible all -m setup -f N`, ProxyJump through
#                      the same bastion via the lab's ssh_config, Ansible's defaults otherwise
# Both reach the bastion too (N+1 machines). Peak RSS of the controller is from GNU time.
# Afterwards the lab goes back to its default 4 workers. Prints one table; nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
STATE=$ROOT/.lab
SIZES=("${@:-10 50 100}")
read -r -a SIZES <<<"${SIZES[*]}"

for tool in /usr/bin/time:time bc:bc; do command -v "${tool%%:*}" >/dev/null || apt-get install -y -qq "${tool#*:}" >/dev/null; done
VENV=$STATE/bench-venv
if [[ ! -x $VENV/bin/ansible ]]; then
    echo "installing ansible-core into $VENV (PyPI)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q ansible-core
fi
echo "building groundwork and the agent (release)"
cargo build -q --release --locked -p groundwork
cargo build -q --locked -p groundwork-agent --profile release-agent --target x86_64-unknown-linux-musl
GW=$ROOT/target/release/groundwork

# seconds with millisecond precision, peak RSS in MiB, and successes of one command
measure() { # label cmd...
    local out=$STATE/bench-$1.out tm=$STATE/bench-$1.time start end
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$tm" "${@:2}" >"$out" 2>"$out.err" || true
    end=$(date +%s.%N)
    WALL=$(echo "$end - $start" | bc)
    RSS=$(awk -F: '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$tm")
}

rows=()
for n in "${SIZES[@]}"; do
    workers=$((n - 5))
    echo "== N=$n: resizing the lab to $workers workers"
    tests/lab/lab up --workers "$workers" >"$STATE/bench-lab-up.log" 2>&1 || { cat "$STATE/bench-lab-up.log"; exit 1; }
    tail -1 "$STATE/bench-lab-up.log"
    inv=$STATE/inventory.yaml
    [[ $workers == 4 ]] && inv=$ROOT/inventory/lab.yaml
    # The agent is removed first so that the cold run really uploads it everywhere.
    for c in $(docker ps --filter label=io.groundwork.lab=gwlab --format '{{.Names}}'); do
        docker exec "$c" rm -f /var/lib/groundwork/bin/groundwork-agent
    done

    measure gw-cold "$GW" facts -i "$inv" -o json
    cold=$WALL cold_rss=$RSS
    cold_ok=$(python3 -c 'import json,sys; print(sum(1 for h in json.load(open(sys.argv[1]))["hosts"] if "facts" in h))' "$STATE/bench-gw-cold.out")
    measure gw-warm "$GW" facts -i "$inv" -o json
    warm=$WALL warm_rss=$RSS
    warm_ok=$(python3 -c 'import json,sys; print(sum(1 for h in json.load(open(sys.argv[1]))["hosts"] if "facts" in h))' "$STATE/bench-gw-warm.out")

    {
        echo "[lab]"
        awk '/^Host / && $2 != "*" {print $2}' "$STATE/ssh_config"
    } >"$STATE/bench-ansible-hosts"
    measure ansible env ANSIBLE_SSH_ARGS="-F $STATE/ssh_config -o ControlMaster=auto -o ControlPersist=60s" \
        ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 \
        "$VENV/bin/ansible" all -i "$STATE/bench-ansible-hosts" -m setup -f "$((n + 1))" -u root
    ans=$WALL ans_rss=$RSS
    ans_ok=$(grep -c '| SUCCESS' "$STATE/bench-ansible.out" || true)
    ratio=$(echo "scale=1; $ans / $warm" | bc)
    rows+=("$(printf '%4s  %9.2fs %6s  %9.2fs %6s  %8s MiB  %9.2fs %6s  %6sx' "$n" "$cold" "$cold_ok" "$warm" "$warm_ok" "$(printf '%s/%s' "$cold_rss" "$warm_rss")" "$ans" "$ans_ok" "$ratio")")
done

echo "== back to the default lab"
tests/lab/lab up | tail -1

echo
echo "facts from N hosts + the bastion, $(date -u +%F), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME")"
printf '%4s  %10s %6s  %10s %6s  %12s  %10s %6s  %7s\n' N "gw cold" ok "gw warm" ok "gw peak RSS" ansible ok "ratio"
for r in "${rows[@]}"; do echo "$r"; done
echo "(ok = machines that answered, of N+1; ratio = ansible / groundwork warm; RSS cold/warm)"
