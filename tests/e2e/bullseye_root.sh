#!/usr/bin/env bash
# Prints the path of a Debian 11 (bullseye, glibc 2.31) minbase root: the
# older userland the static xdpguard is run in (tests/e2e/test_bullseye.sh; a
# VM runner can boot a bullseye kernel with the same root). Built and cached
# by debian_root.sh (see there: where, the key, the lock).
#
#   ROOT=$(tests/e2e/bullseye_root.sh)
set -euo pipefail

ROOT=$(bash "$(dirname "${BASH_SOURCE[0]}")/debian_root.sh" bullseye)
# What makes it the older userland: bullseye's glibc.
version=$(chroot "$ROOT" /usr/bin/ldd --version)
version=${version%%$'\n'*}
if [[ $version != *" 2.31"* ]]; then
  printf '[bullseye-root] FAIL: the root'"'"'s glibc is not 2.31: %s\n' "$version" >&2
  exit 1
fi
printf '%s\n' "$ROOT"
