#!/usr/bin/env sh
# Install Prometheus from Debian's packages when it is missing (make observe, make test and .ci/run call this).
# Elsewhere it only says what to do: pdsim's Prometheus test is skipped without it.
set -eu
command -v prometheus >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing prometheus (apt-get install -y prometheus) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
  # The package may start a system Prometheus on :9090; pdsim runs its own (make observe), so stop that one.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
  fi
  exit 0
fi
echo "prometheus is missing: install it (Debian/Ubuntu: sudo apt-get install -y prometheus; macOS: brew install prometheus)" >&2
exit 1
