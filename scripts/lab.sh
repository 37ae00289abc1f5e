#!/usr/bin/env bash
# The xdpguard demo: install dependencies, build, put a server and a client in
# two network namespaces joined by a veth pair, attach the embedded default
# policy (policy/ovoc-single-node.yaml) natively to the server's veth, send a
# short mix of allowed and blocked traffic with real clients against real
# servers, print the per-rule counters, and tear everything down.
#
# Usage (as root): scripts/lab.sh [--no-build]    (--no-build: reuse the build as is)
# BUILD_DIR (default: build) is where it builds and finds build/agent/xdpguard.
# Exit status is non-zero if any connection did not behave as the policy says.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}
build=1
case ${1:-} in
  --no-build) build=0 ;;
  "") ;;
  *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
esac

if ((build)); then
  echo "== installing dependencies"
  scripts/install-deps.sh
  echo "== building (Release)"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
fi

export XDPGUARD="$PWD/$BUILD_DIR/agent/xdpguard"
export XDPGUARD_SOURCE_DIR="$PWD"
# shellcheck source=tests/e2e/lib.sh
source tests/e2e/lib.sh

echo "== lab"
e2e_setup
start_https
start_snmptrapd
start_closed_listeners
echo "server $SRV_NS: $SRV_IF $SRV_IP4 $SRV_IP6"
echo "client $CLI_NS: $CLI_IF $CLI_IP4 $CLI_IP6"
echo "listening in the server namespace: HTTPS 443, SNMP traps 162, SIP 5060 (per call),"
echo "and, not in the policy, TCP 8080, TCP 3306, UDP 9999"

echo
echo "== xdpguard check (embedded default policy)"
"$XDPGUARD" check

echo
echo "== xdpguard attach --iface $SRV_IF --mode native"
xg_attach

mismatches=0
# try EXPECT LABEL CMD...: run a client, print what happened against what the
# policy says should happen.
try() {
  local expect=$1 label=$2 got
  shift 2
  if "$@" >>"$E2E_WORK/clients.log" 2>&1; then got=allowed; else got=blocked; fi
  if [[ $got == "$expect" ]]; then
    printf '  %-36s %-8s (as the policy says)\n' "$label" "$got"
  else
    printf '  %-36s %-8s EXPECTED %s\n' "$label" "$got" "$expect"
    mismatches=$((mismatches + 1))
  fi
}

# Neighbours learnt before attach are forgotten, so ARP and NDP go through
# the filter too.
ip -n "$SRV_NS" neigh flush dev "$SRV_IF"
ip -n "$CLI_NS" neigh flush dev "$CLI_IF"

echo
echo "== traffic from the client namespace"
try allowed "ping IPv4" in_cli ping -c 2 -i 0.2 -W 2 -q "$SRV_IP4"
try allowed "ping IPv6" in_cli ping -c 2 -i 0.2 -W 2 -q "$SRV_IP6"
try allowed "HTTPS 443/tcp IPv4 (curl)" https_get "$SRV_IP4"
try allowed "HTTPS 443/tcp IPv6 (curl)" https_get "[$SRV_IP6]"
try allowed "SNMP trap 162/udp IPv4 (snmptrap)" send_trap "$SRV_IP4" "lab-trap-v4-$$"
try allowed "SNMP trap 162/udp IPv6 (snmptrap)" send_trap "udp6:[$SRV_IP6]:162" "lab-trap-v6-$$"
try allowed "SIP call 5060/udp (sipp)" sip_call lab
try blocked "HTTP 8080/tcp (curl)" http_get "$SRV_IP4" 8080
try blocked "MySQL 3306/tcp IPv6 (nc)" tcp_banner "$SRV_IP6" 3306 open-3306
try blocked "9999/udp (nc)" udp_delivered "$SRV_IP4" "lab-udp-$$"

echo
echo "== xdpguard stats --iface $SRV_IF"
xg stats --iface "$SRV_IF"

echo
if ((mismatches)); then
  echo "== $mismatches connection(s) did not behave as the policy says"
  exit 1
fi
echo "== all traffic behaved as the policy says; tearing down"
