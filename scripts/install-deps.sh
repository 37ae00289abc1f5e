#!/usr/bin/env bash
# Installs everything xdpguard needs to build, test and run its lab, from
# Debian's packages, and mounts bpffs. Idempotent; needs root.
set -euo pipefail

packages=(
  # build
  cmake g++ clang llvm pkg-config make
  libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes for clang (tests/fuzz)
  # the -dev packages also ship the static archives the agent is linked from
  # (libbpf.a, libelf.a, libz.a, libyaml-cpp.a: cmake/Dependencies.cmake)
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  libyaml-cpp-dev libcxxopts-dev libspdlog-dev libfmt-dev libgtest-dev nlohmann-json3-dev
  # the policy's JSON Schema checked against the parser (tests/schema), with
  # Debian's /usr/bin/python3: a validator and a YAML 1.2 reader
  python3-jsonschema python3-ruamel.yaml
  # lab and tests: real clients and servers
  iproute2 nftables tcpdump curl openssl socat netcat-openbsd
  snmp snmpd snmptrapd sip-tester python3-scapy xdp-tools procps util-linux
  iputils-ping
  nmap  # scans from a hostile peer (tests/e2e/test_scan.sh)
  # peers the server itself talks to (tests/e2e/test_directions.sh): LDAP,
  # SMTP, NTP; each is started in a test namespace, never as a system service
  slapd ldap-utils python3-aiosmtpd swaks chrony
  # packaging (tests/e2e/test_package.sh): dpkg-shlibdeps computes Depends,
  # systemd-analyze verifies the unit (systemd need not be PID 1), groff
  # checks the man page, rpm (rpmbuild) builds the RPM and rpmlint checks it;
  # debootstrap builds the bullseye root of tests/e2e/test_bullseye.sh (and
  # deploy/test-fresh-debian.sh's bookworm one)
  dpkg-dev systemd groff-base rpm rpmlint debootstrap
  # promtool (package prometheus): `promtool check metrics` on the agent's
  # output (tests/e2e/test_telemetry.sh), `promtool check/test rules` on
  # deploy/prometheus
  prometheus
  # the fleet (tests/fleet, deploy/ansible): hosts booted with systemd-nspawn,
  # reached over SSH by ansible-playbook; ansible-lint checks the role
  systemd-container openssh-client ansible ansible-lint
  # the kernel matrix (tests/vm/): Debian's kernels booted under qemu (TCG),
  # a busybox initramfs, kmod for modprobe inside, xz for trixie's modules
  qemu-system-x86 busybox-static kmod cpio xz-utils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
