#!/usr/bin/env bash
# The static xdpguard on an older userland: every xdpguard command of this
# test runs chrooted into a Debian 11 (bullseye, glibc 2.31) minbase root
# (tests/e2e/bullseye_root.sh builds and caches it), on this host's kernel.
# - the root really is the older userland: its libc is 2.31, and a program
#   built on this host against the dynamic glibc (needing GLIBC_2.34) does
#   not even start there;
# - the binary has no program interpreter and no shared libraries;
# - in the root: --help, `check` (embedded and packaged policy), `explain`;
# - `replay` in the root of a tcpdump capture of the real connections below
#   equals the live counters rule by rule, and --datapath agrees;
# - `attach` from the root natively on the server veth, with real clients:
#   HTTPS 443 passes over IPv4 and IPv6, TCP 8080 and UDP 9999 are blocked,
#   and the counters read from the root (`stats`) say so; `detach` from the
#   root removes the pins;
# - `run` from the root adopts the attachment, serves /metrics on loopback
#   and exits on SIGTERM leaving the programs attached.
# Each command runs in a mount namespace of its own in which the cached root
# is mounted read-only with /proc, /sys, bpffs, /dev, /tmp and an empty /run
# over it: nothing stays mounted after the command, whatever happens, and the
# cache is never written to.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATIC_BIN=$XDPGUARD
phase "bullseye root"
ROOT=$(bash "$E2E_SRC/tests/e2e/bullseye_root.sh") || fail "no bullseye root"
log "root: $ROOT ($(cat "$ROOT/etc/debian_version"))"

e2e_setup

# in-bullseye CMD...: CMD chrooted into the root. Host /tmp is mounted on
# the root's /tmp, so this run's work directory has the same path in both.
IN_ROOT=$E2E_WORK/in-bullseye
cat >"$IN_ROOT" <<'EOF'
#!/bin/sh
root=$1
shift
exec unshare --mount --propagation private /bin/sh -euc '
  root=$1
  shift
  mount --bind "$root" "$root"
  mount -o remount,bind,ro "$root"
  mount -t proc proc "$root/proc"
  mount --bind /sys "$root/sys"
  mount --bind /sys/fs/bpf "$root/sys/fs/bpf"
  mount --bind /dev "$root/dev"
  mount --bind /tmp "$root/tmp"
  mount -t tmpfs -o mode=0755 tmpfs "$root/run"
  exec chroot "$root" "$@"' sh "$root" "$@"
EOF
chmod 755 "$IN_ROOT"
in_root() { "$IN_ROOT" "$ROOT" "$@"; }

# From here on XDPGUARD is the static binary run in the root: lib.sh's xg,
# xg_attach, stats_snapshot, rule_for and the cleanup's detach all go there.
cp "$STATIC_BIN" "$E2E_WORK/xdpguard"
printf '#!/bin/sh\nexec %q %q %q "$@"\n' "$IN_ROOT" "$ROOT" "$E2E_WORK/xdpguard" >"$E2E_WORK/xdpguard-in-bullseye"
chmod 755 "$E2E_WORK/xdpguard-in-bullseye"
XDPGUARD=$E2E_WORK/xdpguard-in-bullseye

phase "the root is the older userland"
libc=$(in_root /lib/x86_64-linux-gnu/libc.so.6) || fail "the root's libc does not run"
libc=${libc%%$'\n'*}
[[ $libc == *"release version 2.31"* ]] || fail "the root's libc is not 2.31: $libc"
log "root libc: $libc"
# A control: this host's dynamically linked true(1) needs its newer glibc.
cp /bin/true "$E2E_WORK/host-true"
if in_root "$E2E_WORK/host-true" 2>"$E2E_WORK/host-true.err"; then
  fail "a program linked against this host's glibc runs in the root: it is not older"
fi
grep -q 'GLIBC_2\.3[4-9]' "$E2E_WORK/host-true.err" ||
  fail "the control failed for another reason: $(cat "$E2E_WORK/host-true.err")"
log "ok: the host's dynamic /bin/true fails there ($(head -c 120 "$E2E_WORK/host-true.err"))"

phase "the binary is static"
readelf -lW "$STATIC_BIN" >"$E2E_WORK/phdrs" || fail "readelf failed on $STATIC_BIN"
! grep -q 'INTERP' "$E2E_WORK/phdrs" || fail "$STATIC_BIN has a program interpreter"
! readelf -dW "$STATIC_BIN" | grep -q NEEDED || fail "$STATIC_BIN needs shared libraries"

phase "check and explain in the root"
xg --help >"$E2E_WORK/help.out" || fail "xdpguard --help failed in the root"
grep -q '^usage: xdpguard' "$E2E_WORK/help.out" || fail "--help printed no usage"
xg check >"$E2E_WORK/check.out" 2>"$E2E_WORK/check.err" ||
  fail "check of the embedded policy failed: $(cat "$E2E_WORK/check.err")"
grep -q 'ovoc-single-node' "$E2E_WORK/check.out" "$E2E_WORK/check.err" ||
  fail "check does not name the policy: $(head -3 "$E2E_WORK/check.out")"
cp "$E2E_SRC/policy/ovoc-single-node.yaml" "$E2E_WORK/policy.yaml"
xg check --policy "$E2E_WORK/policy.yaml" >/dev/null 2>"$E2E_WORK/check-file.err" ||
  fail "check --policy failed: $(cat "$E2E_WORK/check-file.err")"
{ cat "$E2E_WORK/policy.yaml"; printf 'rules: [\n'; } >"$E2E_WORK/bad.yaml"
if xg check --policy "$E2E_WORK/bad.yaml" >/dev/null 2>"$E2E_WORK/bad.err"; then
  fail "check accepted a broken policy"
fi
grep -q 'bad.yaml:[0-9]' "$E2E_WORK/bad.err" || fail "no file:line for the broken policy: $(cat "$E2E_WORK/bad.err")"
# rule_for runs explain in the root and fails unless it names a rule.
rule_https=$(rule_for "tcp $CLI_IP4:40000 -> $SRV_IP4:443 flags S")
explain=$(xg explain --packet "tcp $CLI_IP4:40000 -> $SRV_IP4:8080 flags S") ||
  fail "explain failed in the root"
grep -qx 'verdict: drop (no_rule)' <<<"$explain" || fail "explain does not drop TCP 8080 no_rule: $explain"
log "ok: explain (443 -> rule $rule_https, 8080 -> no_rule)"

phase "servers"
start_https
start_closed_listeners
expect_ok "HTTP 8080 answers before attach" http_get "$SRV_IP4" 8080

phase "attach from the root"
xg_attach
[[ -d $E2E_PIN_DIR ]] || fail "no pin directory $E2E_PIN_DIR after attach from the root"
mode=$(xdp_mode)
[[ $mode == 1 ]] || fail "expected a native XDP program on $SRV_IF, mode=$mode"

phase "real connections"
wait_quiet
start_capture "$E2E_WORK/bullseye.pcap"
stats_snapshot "$E2E_WORK/s0.json"
expect_ok "HTTPS 443 over IPv4" https_get "$SRV_IP4"
expect_ok "HTTPS 443 over IPv6" https_get "[$SRV_IP6]"
expect_fail "HTTP 8080 over IPv4" http_get "$SRV_IP4" 8080
expect_fail "TCP 8080 over IPv6" tcp_banner "$SRV_IP6" 8080 open-8080
expect_fail "UDP 9999 over IPv4" udp_delivered "$SRV_IP4" bullseye-v4
wait_quiet
stats_snapshot "$E2E_WORK/s1.json"
stop_capture
expect_deltas "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" \
  "rule:$rule_https:pass_packets ge 6" "rule:$rule_https:drop_packets eq 0" \
  "reason:no_rule:packets ge 3"

phase "replay from the root"
xg replay --host-mac "$SRV_MAC" --json "$E2E_WORK/bullseye.pcap" >"$E2E_WORK/replay.json" ||
  fail "replay failed in the root"
expect_replay_matches "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "$E2E_WORK/replay.json" 2
xg replay --host-mac "$SRV_MAC" --datapath "$E2E_WORK/bullseye.pcap" >"$E2E_WORK/datapath.txt" 2>&1 ||
  fail "replay --datapath in the root: $(tail -5 "$E2E_WORK/datapath.txt")"
log "ok: $(grep '^datapath' "$E2E_WORK/datapath.txt")"

phase "the daemon from the root"
# It adopts what attach left, serves metrics on the namespace's loopback
# (a numeric address: no resolver in a static binary) and leaves the
# programs attached when it stops.
start_server daemon "$XDPGUARD" run --iface "$SRV_IF" --metrics 127.0.0.1:9740 --log-format json
DAEMON_PID=${E2E_PIDS[-1]}
scrape() { in_srv curl -sf --max-time 5 http://127.0.0.1:9740/metrics >"$E2E_WORK/metrics"; }
wait_until 10 scrape || fail "no metrics on 127.0.0.1:9740 from the daemon in the root"
grep -q "^xdpguard_rule_packets_total{.*rule=\"$rule_https\".*} [1-9]" "$E2E_WORK/metrics" ||
  fail "no packets counted for $rule_https in the metrics: $(grep -m3 rule_packets "$E2E_WORK/metrics")"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "the daemon exited $? on SIGTERM"
[[ $(xdp_mode) == 1 ]] || fail "the daemon's exit detached the firewall"
log "ok: run adopted the attachment, served metrics, stopped cleanly"

phase "detach from the root"
xg_detach
[[ $(xdp_mode) == 0 ]] || fail "an XDP program is still attached to $SRV_IF after detach"
expect_ok "HTTP 8080 answers after detach" http_get "$SRV_IP4" 8080
phase "done"
grep -q " $ROOT/" /proc/mounts && fail "mounts left under $ROOT: $(grep " $ROOT/" /proc/mounts)"
true
