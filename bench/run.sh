#!/usr/bin/env bash
# The benchmark suite (issue 6), one command: sudo bench/run.sh
#
# Builds xdpguard-bench if needed, then runs, in throwaway network namespaces:
#   control  compile+load of the default policy, reload, RSS
#   cost     BPF_PROG_TEST_RUN per packet class: bare XDP_DROP, xdp-filter, xdpguard
#   scale    peer sets of 10/1,000/100,000 CIDRs (IPv4, IPv6), 10/1,000/10,000 ports,
#            and nftables sets of the same sizes (load time)
#   veth     drop rate on a veth pair driven by the live-frames generator, and per
#            packet against nftables sets of 10/1,000/100,000 prefixes
#   agent    the real daemon (`xdpguard run`) on that veth: RSS idle and under a
#            drop-event flood, reload by SIGHUP and `xdpguard reload`, `xdpguard attach`
# and writes bench/results/results.json, bench/results/cost_vs_size.png and a
# summary table. Everything it creates lives in its namespaces (and private
# bpffs mounts, and the agent's pins, detached on exit) and goes away with them.
#
# Options: --quick (fewer repeats, for a smoke run), --skip-veth (also skips the
#          agent, which runs on the veth rig), --skip-scale, --out DIR (default
#          bench/results), --build DIR (default build-bench), --ignore-load (run
#          although the machine is busy: the figures are then not worth much).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=$ROOT/bench/results
QUICK=0 SKIP_VETH=0 SKIP_SCALE=0 IGNORE_LOAD=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --skip-veth) SKIP_VETH=1 ;;
    --skip-scale) SKIP_SCALE=1 ;;
    --ignore-load) IGNORE_LOAD=1 ;;
    --out) OUT=$2; shift ;;
    --build) BUILD=$2; shift ;;
    *) echo "usage: $0 [--quick] [--skip-veth] [--skip-scale] [--out DIR] [--build DIR] [--ignore-load]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
for tool in xdp-filter nft iptables ethtool taskset chrt cmake; do
  command -v $tool >/dev/null || { echo "missing $tool (Debian: apt-get install xdp-tools nftables iptables ethtool util-linux cmake)" >&2; exit 1; }
done

REPEAT=1000000 RUNS=9 VETH_RUNS=5 VETH_SECONDS=2 SET_RUNS=3 AGENT_RUNS=7 FLOOD_SECONDS=5
[ $QUICK = 1 ] && { REPEAT=200000 RUNS=5 VETH_RUNS=1 VETH_SECONDS=1 SET_RUNS=1 AGENT_RUNS=5 FLOOD_SECONDS=2; }
SET_SIZES="10 1000 100000"
NCPU=$(nproc)
GEN_CPU=0 RX_CPU=$(( NCPU > 1 ? 1 : 0 ))

# The VM is shared: with other work running, absolute figures move by 2x and
# even the ratios drift. Refuse a busy machine (1-minute load above the CPU
# count) unless told otherwise; warn above half of it.
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD1" -v n="$NCPU" 'BEGIN { exit !(l > n) }'; then
  echo "!!!! load average $LOAD1 on $NCPU CPUs: the machine is busy; the figures would mostly measure the other work." >&2
  if [ $IGNORE_LOAD = 0 ]; then
    echo "!!!! refusing to run; wait for a quieter moment or pass --ignore-load." >&2
    exit 1
  fi
  echo "!!!! --ignore-load: running anyway; the load average is recorded in the results." >&2
elif awk -v l="$LOAD1" -v n="$NCPU" 'BEGIN { exit !(l > n / 2) }'; then
  echo "warning: load average $LOAD1 on $NCPU CPUs: the machine is not idle; compare ratios, not absolute figures." >&2
fi

NS_COST=xgb-cost NS_SRV=xgb-srv NS_CLI=xgb-cli
WORK=$(mktemp -d /tmp/xgb-bench.XXXXXX)
XDPG=$BUILD/agent/xdpguard
# The agent section attaches through the default pin root; remove it at the
# end if this run is what created it.
MADE_PIN_ROOT=0
[ -e /sys/fs/bpf/xdpguard ] || MADE_PIN_ROOT=1
cleanup() {
  set +e
  [ $MADE_PIN_ROOT = 1 ] && rmdir /sys/fs/bpf/xdpguard 2>/dev/null
  # The agent pins under the host's /sys/fs/bpf: detach before the devices go.
  if [ -e /run/netns/$NS_SRV ] && [ -x "$XDPG" ]; then
    ip netns pids $NS_SRV 2>/dev/null | while read -r p; do kill "$p" 2>/dev/null || true; done
    for dev in xgbv-s xgba0; do
      nsenter --net=/run/netns/$NS_SRV "$XDPG" detach --iface $dev >/dev/null 2>&1
    done
  fi
  for ns in $NS_COST $NS_SRV $NS_CLI; do
    ip netns pids $ns 2>/dev/null | while read -r p; do kill "$p" 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
for ns in $NS_COST $NS_SRV $NS_CLI; do
  if ip netns list | grep -qw "$ns"; then echo "namespace $ns exists (another run?)" >&2; exit 1; fi
done

echo "== build ($BUILD) [t+${SECONDS}s]"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$NCPU" --target xdpguard-bench xdpguard >/dev/null
BENCH=$BUILD/bench/xdpguard-bench

mkdir -p "$OUT"
RAW=$OUT/raw.jsonl
: > "$RAW"
# Machine facts for the report.
python3 - "$RAW" <<'EOF'
import json, os, platform, subprocess, sys, datetime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
ver = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0:1]
rec = {"section": "machine", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "kernel": platform.release(), "cpu": cpu, "vcpus": os.cpu_count(), "mem_mib": int(mem) // 1024,
       "clocksource": open("/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip(),
       "xdp_tools": ver(["dpkg-query", "-W", "-f", "${Version}", "xdp-tools"]),
       "nftables": ver(["nft", "--version"]), "iptables": ver(["iptables", "--version"]),
       "loadavg_start": open("/proc/loadavg").read().split()[:3]}
open(sys.argv[1], "a").write(json.dumps(rec) + "\n")
EOF

# Random prefix sets, IPv4 /24s and IPv6 /48s, of every size in SET_SIZES:
# WORK/set-vF-N.{txt,nft,addrs} (bench/sets.py; addrs: a member and a near
# non-member). The nftables sets and xdpguard's peer sets use the same lists.
make_sets() {
  [ -e "$WORK/sets.done" ] && return
  local fam n
  for fam in 4 6; do
    for n in $SET_SIZES; do
      python3 "$ROOT/bench/sets.py" $fam $n "$WORK" > "$WORK/set-v$fam-$n.addrs"
    done
  done
  touch "$WORK/sets.done"
}

# xdp-filter in deny mode with the default policy's inbound ports, on DEV in
# namespace NS. libxdp wants a bpffs; a private one in this command's mount
# namespace keeps its pins out of the host's /sys/fs/bpf (the program stays
# attached to the device after the pins go).
load_xdp_filter() {  # NS DEV
  "$BENCH" filter-ports > "$WORK/ports"
  ip netns exec "$1" sh -c '
    mount -t bpf bpf /sys/fs/bpf &&
    xdp-filter load -p deny -f tcp,udp "$1" &&
    while read -r proto mode port; do xdp-filter port -p "$proto" -m "$mode" "$port" || exit 1; done < "$2"
  ' sh "$2" "$WORK/ports"
}

# ---- control plane and per-packet cost ------------------------------------
ip netns add $NS_COST
ip -n $NS_COST link set lo up
HOLD=""
for i in 0 1 2 3 4 5 6 7 8; do
  ip -n $NS_COST link add xgbh$i type veth peer name xgbp$i
  ip -n $NS_COST link set xgbh$i up
  ip -n $NS_COST link set xgbp$i up
  HOLD=$HOLD${HOLD:+,}xgbh$i
done
load_xdp_filter $NS_COST xgbp0

# --rt: SCHED_FIFO on one CPU, so the other work on the machine does not land
# inside a timed run.
RT="--rt --cpu $RX_CPU"
echo "== control plane [t+${SECONDS}s]"
ip netns exec $NS_COST "$BENCH" control --runs "$RUNS" --out "$RAW"
echo
echo "== per-packet cost [t+${SECONDS}s]"
ip netns exec $NS_COST "$BENCH" cost --repeat "$REPEAT" --runs "$RUNS" --hold-devs "$HOLD" \
  --xdp-filter-dev xgbp0 --out "$RAW" $RT
echo

if [ $SKIP_SCALE = 0 ]; then
  echo "== scale [t+${SECONDS}s]"
  ip netns exec $NS_COST "$BENCH" scale --repeat "$REPEAT" --runs "$RUNS" --hold-devs xgbh1 \
    --workdir "$WORK" --out "$RAW" $RT
  # nftables sets of the same sizes: time to load one (interval set of /24s or /48s).
  make_sets
  echo "nftables sets of the same sizes (load time of an interval set, nft -f):"
  for fam in 4 6; do
    for n in $SET_SIZES; do
      cat > "$WORK/set.nft" <<EOF
include "$WORK/set-v$fam-$n.nft"
table inet xgbset { set peers { type ipv${fam}_addr; flags interval; elements = \$peers; }; }
EOF
      t0=$(date +%s%N)
      ip netns exec $NS_COST nft -f "$WORK/set.nft"
      t1=$(date +%s%N)
      ip netns exec $NS_COST nft delete table inet xgbset
      ms=$(( (t1 - t0) / 1000000 ))
      printf '  nft set ipv%s %7s prefixes: load %6s ms\n' $fam $n $ms
      echo "{\"section\": \"nft-set\", \"family\": $fam, \"size\": $n, \"load_ms\": $ms}" >> "$RAW"
    done
  done
  echo
fi
ip netns del $NS_COST

# ---- drop rate on veth -------------------------------------------------------
if [ $SKIP_VETH = 0 ]; then
  echo "== drop rate on veth (live-frames generator on CPU $GEN_CPU, receiver NAPI thread on CPU $RX_CPU) [t+${SECONDS}s]"
  ip netns add $NS_SRV
  ip netns add $NS_CLI
  ip link add xgbv-c netns $NS_CLI type veth peer name xgbv-s netns $NS_SRV
  ip -n $NS_CLI addr add 10.77.0.1/24 dev xgbv-c
  ip -n $NS_SRV addr add 10.77.0.2/24 dev xgbv-s
  ip -n $NS_CLI addr add fd77::1/64 dev xgbv-c nodad
  ip -n $NS_SRV addr add fd77::2/64 dev xgbv-s nodad
  # The set cases send from random prefixes with no route back: no reverse
  # path filter in front of the input chain.
  ip netns exec $NS_SRV sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.xgbv-s.rp_filter=0
  ip -n $NS_CLI link set xgbv-c up
  ip -n $NS_SRV link set xgbv-s up
  ip -n $NS_SRV link set lo up
  SMAC=$(ip -n $NS_SRV -br link show xgbv-s | awk '{print $3}')
  CMAC=$(ip -n $NS_CLI -br link show xgbv-c | awk '{print $3}')
  # Undocumented traffic: UDP to a port no rule names, addressed to the server
  # so that the stack's input path (nftables input, iptables INPUT) sees it.
  PACKET="udp 10.77.0.1:40000 -> 10.77.0.2:9999 len 18"

  reset_srv() {
    ip -n $NS_SRV link set xgbv-s xdp off 2>/dev/null || true
    ip netns exec $NS_SRV nft flush ruleset
  }
  napi_pids() { ps -eo pid=,comm= | awk '$2 ~ /^napi\/xgbv-s-/ {print $1}'; }
  srv_stat() {  # xdp_packets xdp_drops netfilter_counter_packets
    local x d n
    x=$(ip netns exec $NS_SRV ethtool -S xgbv-s | awk '/rx_queue_[0-9]+_xdp_packets/ {s+=$2} END {print s+0}')
    d=$(ip netns exec $NS_SRV ethtool -S xgbv-s | awk '/rx_queue_[0-9]+_xdp_drops/ {s+=$2} END {print s+0}')
    n=$(ip netns exec $NS_SRV nft -t list ruleset | grep -o 'packets [0-9]*' | awk '{s+=$2} END {print s+0}')
    echo "$x $d $n"
  }
  ticks() { local s=0 p; for p in $(napi_pids); do s=$(( s + $(awk '{print $14 + $15}' /proc/$p/stat) )); done; echo $s; }

  # Offers $PACKET; $CASE_GROUP (main; set: the per-packet set comparison;
  # progstats) and $CASE_EXTRA (JSON fields) go into the record. With
  # PROG_STATS=1 the generator also reads the receiver program's own run time.
  veth_case() {  # RUN NAME DISPOSAL(xdp|netfilter) SETUP...
    local r=$1 name=$2 disposal=$3; shift 3
    reset_srv
    "$@"
    # veth only takes XDP frames when its peer runs an XDP program: the
    # netfilter cases get a bare XDP_PASS in front.
    ip -n $NS_SRV link show xgbv-s | grep -q 'prog/xdp' ||
      ip netns exec $NS_SRV "$BENCH" attach --dev xgbv-s --prog pass
    ip netns exec $NS_SRV sh -c 'echo 1 > /sys/class/net/xgbv-s/threaded'
    local p
    for p in $(napi_pids); do taskset -p -c $RX_CPU $p >/dev/null; chrt -f -p 10 $p; done
    {
      local before after gen
      local stats=()
      [ "${PROG_STATS:-0}" = 1 ] && stats=(--stats-prog-id \
        "$(ip -n $NS_SRV link show xgbv-s | grep -o 'prog/xdp id [0-9]*' | awk '{print $3}')")
      before="$(srv_stat) $(ticks)"
      gen=$(chrt -f 10 ip netns exec $NS_CLI "$BENCH" gen --dev xgbv-c --dst-mac "$SMAC" \
              --src-mac "$CMAC" --packet "$PACKET" --seconds $VETH_SECONDS --cpu $GEN_CPU "${stats[@]}")
      after="$(srv_stat) $(ticks)"
      python3 - "$name" "$disposal" "$r" "$gen" "$before" "$after" "$(getconf CLK_TCK)" "$RAW" \
        "$(cut -d' ' -f1 /proc/loadavg)" "${CASE_GROUP:-main}" "${CASE_EXTRA:-{\}}" <<'EOF'
import json, sys
name, disposal, run, gen, before, after, hz, raw, load, group, extra = sys.argv[1:]
g = json.loads(gen)
b, a = [list(map(int, s.split())) for s in (before, after)]
xdp_pk, xdp_drop, nf, ticks = (a[i] - b[i] for i in range(4))
disposed = xdp_drop if disposal == "xdp" else nf
cpu_s = ticks / int(hz)
rec = {"section": "veth", "group": group, **json.loads(extra), "case": name, "run": int(run), "offered": g["offered"],
       "seconds": g["seconds"], "received": xdp_pk, "disposed": disposed,
       "rx_cpu_seconds": cpu_s, "disposed_per_s": disposed / g["seconds"],
       "rx_ns_per_packet": cpu_s * 1e9 / disposed if disposed else None, "loadavg": float(load)}
if g.get("prog_run_cnt"):
    rec.update(prog_run_ns=g["prog_run_ns"], prog_run_cnt=g["prog_run_cnt"],
               prog_ns_per_run=g["prog_run_ns"] / g["prog_run_cnt"])
open(raw, "a").write(json.dumps(rec) + "\n")
print(f"  {name:<30} run {run}: offered {g['offered'] / g['seconds'] / 1e6:5.2f} Mpps, "
      f"disposed {rec['disposed_per_s'] / 1e6:5.2f} Mpps, receiver CPU {cpu_s / g['seconds'] * 100:5.1f}%, "
      f"{rec['rx_ns_per_packet'] or 0:6.1f} ns/packet" +
      (f", program itself {rec['prog_ns_per_run']:6.1f} ns/run" if "prog_ns_per_run" in rec else ""))
EOF
    }
  }
  nft_input() {
    ip netns exec $NS_SRV nft -f - <<'EOF'
table inet xgbbench {
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 9999 counter drop
  }
}
EOF
  }
  nft_ingress() {
    ip netns exec $NS_SRV nft -f - <<'EOF'
table netdev xgbbench {
  chain ingress {
    type filter hook ingress device "xgbv-s" priority 0; policy accept;
    udp dport 9999 counter drop
  }
}
EOF
  }
  ipt_input() { ip netns exec $NS_SRV iptables -A INPUT -p udp --dport 9999 -j DROP; }

  # Rounds: every case once per round, so drift on a shared machine lands on
  # all cases alike; the report takes ratios within a round.
  for r in $(seq 1 $VETH_RUNS); do
    veth_case $r "bare XDP_DROP" xdp ip netns exec $NS_SRV "$BENCH" attach --dev xgbv-s --prog drop
    veth_case $r "xdpguard (default policy)" xdp ip netns exec $NS_SRV "$BENCH" attach --dev xgbv-s --prog xdpguard
    veth_case $r "xdp-filter (deny)" xdp load_xdp_filter $NS_SRV xgbv-s
    veth_case $r "nftables netdev ingress drop" netfilter nft_ingress
    veth_case $r "nftables input drop" netfilter nft_input
    veth_case $r "iptables INPUT DROP" netfilter ipt_input
  done
  # The receiver program's own time per packet on this path, from the kernel's
  # BPF run-time statistics (on only while these cases run: they add two clock
  # reads to every program run, so these rounds are kept apart from the others).
  for r in $(seq 1 $SET_RUNS); do
    PROG_STATS=1 CASE_GROUP=progstats veth_case $r "bare XDP_DROP" xdp ip netns exec $NS_SRV "$BENCH" attach --dev xgbv-s --prog drop
    PROG_STATS=1 CASE_GROUP=progstats veth_case $r "xdpguard (default policy)" xdp ip netns exec $NS_SRV "$BENCH" attach --dev xgbv-s --prog xdpguard
  done
  reset_srv
  echo

  # Per packet against sets: UDP to 162 from a random prefix's address.
  # nftables drops by `ip saddr @peers` (interval set; the source is a member),
  # in the input chain and at netdev ingress. xdpguard runs the default policy
  # with `managed-devices` (the peer set of the SNMP trap rule, local port 162)
  # made of the same prefixes; the source is a near non-member (the sibling of
  # a member prefix), dropped peer_not_in_set. Both do one set lookup that
  # walks as deep as a member's, and drop.
  echo "== veth: per packet against sets of ${SET_SIZES// /, } prefixes [t+${SECONDS}s]"
  make_sets
  nft_set() {  # input|ingress FAMILY N
    local table=inet hook=input dev="" match=ip
    [ $1 = ingress ] && { table=netdev hook=ingress dev='device "xgbv-s"'; }
    [ $2 = 6 ] && match=ip6
    ip netns exec $NS_SRV nft -f - <<EOF
include "$WORK/set-v$2-$3.nft"
table $table xgbbench {
  set peers {
    type ipv${2}_addr; flags interval
    elements = \$peers
  }
  chain filter {
    type filter hook $hook $dev priority 0; policy accept;
    udp dport 162 $match saddr @peers counter drop
  }
}
EOF
  }
  set_packet() {  # FAMILY ADDRESS
    if [ $1 = 4 ]; then echo "udp $2:40000 -> 10.77.0.2:162 len 18"
    else echo "udp [$2]:40000 -> [fd77::2]:162 len 18"; fi
  }
  for r in $(seq 1 $SET_RUNS); do
    CASE_GROUP=set veth_case $r "bare XDP_DROP" xdp ip netns exec $NS_SRV "$BENCH" attach --dev xgbv-s --prog drop
    for fam in 4 6; do
      for n in $SET_SIZES; do
        read -r member near < "$WORK/set-v$fam-$n.addrs"
        extra="{\"family\": $fam, \"size\": $n"
        PACKET=$(set_packet $fam "$member") CASE_GROUP=set CASE_EXTRA="$extra, \"impl\": \"nftables input\"}" \
          veth_case $r "set v$fam $n: nftables input" netfilter nft_set input $fam $n
        PACKET=$(set_packet $fam "$member") CASE_GROUP=set CASE_EXTRA="$extra, \"impl\": \"nftables netdev ingress\"}" \
          veth_case $r "set v$fam $n: nftables ingress" netfilter nft_set ingress $fam $n
        PACKET=$(set_packet $fam "$near") CASE_GROUP=set CASE_EXTRA="$extra, \"impl\": \"xdpguard\"}" \
          veth_case $r "set v$fam $n: xdpguard" xdp ip netns exec $NS_SRV "$BENCH" attach --dev xgbv-s \
            --prog xdpguard --peer-set managed-devices --set-file "$WORK/set-v$fam-$n.txt"
      done
    done
  done
  reset_srv
  echo

  # ---- control plane through the agent ---------------------------------------
  echo "== agent: xdpguard attach, the daemon idle and under a drop-event flood, reloads [t+${SECONDS}s]"
  ip -n $NS_SRV link add xgba0 type veth peer name xgba1
  ip -n $NS_SRV link set xgba0 up
  ip -n $NS_SRV link set xgba1 up
  /usr/bin/python3 "$ROOT/bench/agent.py" --xdpguard "$XDPG" --bench "$BENCH" --srv-ns $NS_SRV \
    --cli-ns $NS_CLI --dev xgbv-s --spare-dev xgba0 --smac "$SMAC" --cmac "$CMAC" \
    --gen-cpu $GEN_CPU --rx-cpu $RX_CPU --runs $AGENT_RUNS --flood-seconds $FLOOD_SECONDS --work "$WORK" --out "$RAW"
  echo
fi
echo "{\"section\": \"machine-end\", \"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$RAW"

echo "== summary [t+${SECONDS}s]"
/usr/bin/python3 "$ROOT/bench/report.py" "$RAW" "$OUT"
