#!/usr/bin/env bash
# The benchmark suite (issue 6), one command: sudo bench/run.sh
#
# Builds xdpguard-bench if needed, then runs, in throwaway network namespaces:
#   control  compile+load of the default policy, reload, RSS
#   cost     BPF_PROG_TEST_RUN per packet class: bare XDP_DROP, xdp-filter, xdpguard
#   scale    peer sets of 10/1,000/100,000 CIDRs (IPv4, IPv6), 10/1,000/10,000 ports,
#            and nftables sets of the same sizes (load time)
#   veth     drop rate on a veth pair driven by the live-frames generator
# and writes bench/results/results.json, bench/results/cost_vs_size.png and a
# summary table. Everything it creates lives in its namespaces (and private
# bpffs mounts) and goes away with them on exit.
#
# Options: --quick (fewer repeats, for a smoke run), --skip-veth, --skip-scale,
#          --out DIR (default bench/results), --build DIR (default build-bench).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=$ROOT/bench/results
QUICK=0 SKIP_VETH=0 SKIP_SCALE=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --skip-veth) SKIP_VETH=1 ;;
    --skip-scale) SKIP_SCALE=1 ;;
    --out) OUT=$2; shift ;;
    --build) BUILD=$2; shift ;;
    *) echo "usage: $0 [--quick] [--skip-veth] [--skip-scale] [--out DIR] [--build DIR]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
for tool in xdp-filter nft iptables ethtool taskset chrt cmake; do
  command -v $tool >/dev/null || { echo "missing $tool (Debian: apt-get install xdp-tools nftables iptables ethtool util-linux cmake)" >&2; exit 1; }
done

REPEAT=1000000 RUNS=9 VETH_RUNS=5 VETH_SECONDS=2
[ $QUICK = 1 ] && { REPEAT=200000 RUNS=5 VETH_RUNS=1 VETH_SECONDS=1; }
NCPU=$(nproc)
GEN_CPU=0 RX_CPU=$(( NCPU > 1 ? 1 : 0 ))

NS_COST=xgb-cost NS_SRV=xgb-srv NS_CLI=xgb-cli
WORK=$(mktemp -d /tmp/xgb-bench.XXXXXX)
cleanup() {
  set +e
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
cmake --build "$BUILD" -j"$NCPU" --target xdpguard-bench >/dev/null
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
  echo "nftables sets of the same sizes (load time of an interval set, nft -f):"
  for fam in 4 6; do
    for n in 10 1000 100000; do
      python3 - "$fam" "$n" > "$WORK/set.nft" <<'EOF'
import random, sys
fam, n = int(sys.argv[1]), int(sys.argv[2])
rng, seen = random.Random(6), set()
while len(seen) < n:
    if fam == 4:
        seen.add(f"{rng.randrange(11, 192)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24")
    else:
        v = rng.getrandbits(36)
        seen.add(f"{0x2a00 | (v >> 32):x}:{(v >> 16) & 0xffff:x}:{v & 0xffff:x}::/48")
t = "ipv4_addr" if fam == 4 else "ipv6_addr"
print(f"table inet xgbset {{\n  set peers {{\n    type {t}\n    flags interval\n    elements = {{ {', '.join(sorted(seen))} }}\n  }}\n}}")
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
    n=$(ip netns exec $NS_SRV nft list ruleset | grep -o 'packets [0-9]*' | awk '{s+=$2} END {print s+0}')
    echo "$x $d $n"
  }
  ticks() { local s=0 p; for p in $(napi_pids); do s=$(( s + $(awk '{print $14 + $15}' /proc/$p/stat) )); done; echo $s; }

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
      before="$(srv_stat) $(ticks)"
      gen=$(chrt -f 10 ip netns exec $NS_CLI "$BENCH" gen --dev xgbv-c --dst-mac "$SMAC" \
              --src-mac "$CMAC" --packet "$PACKET" --seconds $VETH_SECONDS --cpu $GEN_CPU)
      after="$(srv_stat) $(ticks)"
      python3 - "$name" "$disposal" "$r" "$gen" "$before" "$after" "$(getconf CLK_TCK)" "$RAW" \
        "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import json, sys
name, disposal, run, gen, before, after, hz, raw, load = sys.argv[1:]
g = json.loads(gen)
b, a = [list(map(int, s.split())) for s in (before, after)]
xdp_pk, xdp_drop, nf, ticks = (a[i] - b[i] for i in range(4))
disposed = xdp_drop if disposal == "xdp" else nf
cpu_s = ticks / int(hz)
rec = {"section": "veth", "case": name, "run": int(run), "offered": g["offered"],
       "seconds": g["seconds"], "received": xdp_pk, "disposed": disposed,
       "rx_cpu_seconds": cpu_s, "disposed_per_s": disposed / g["seconds"],
       "rx_ns_per_packet": cpu_s * 1e9 / disposed if disposed else None, "loadavg": float(load)}
open(raw, "a").write(json.dumps(rec) + "\n")
print(f"  {name:<30} run {run}: offered {g['offered'] / g['seconds'] / 1e6:5.2f} Mpps, "
      f"disposed {rec['disposed_per_s'] / 1e6:5.2f} Mpps, receiver CPU {cpu_s / g['seconds'] * 100:5.1f}%, "
      f"{rec['rx_ns_per_packet'] or 0:6.1f} ns/packet")
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
  reset_srv
  echo
fi

echo "== summary [t+${SECONDS}s]"
/usr/bin/python3 "$ROOT/bench/report.py" "$RAW" "$OUT"
