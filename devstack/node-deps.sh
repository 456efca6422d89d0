#!/usr/bin/env bash
# The host packages a real node needs (docs/real-node.md), installed with apt when missing and we are root.
# Idempotent: when everything is there it only checks, in milliseconds. `--check`: exit 1 when something is missing.
# Prints nothing on stdout; on stderr, what it installs or exactly what is missing (exit 1).
set -euo pipefail

# command -> Debian package
declare -A NEED=(
  [containerd]=containerd           # 1.6 on Debian 12: its CRI runs the pods
  [runc]=runc                       # not crun: crun fails on this kernel's hybrid cgroup layout
  [/usr/lib/cni/bridge]=containernetworking-plugins # bridge, host-local, loopback
  [iptables]=iptables               # the kubelet's and kube-router's rules
  [ipset]=ipset                     # kube-router's NetworkPolicy sets
  [/bin/busybox]=busybox-static     # the root filesystem of the local images
)
missing=()
for cmd in "${!NEED[@]}"; do
  if [[ "$cmd" == /* ]]; then [[ -x "$cmd" ]] || missing+=("${NEED[$cmd]}"); else command -v "$cmd" >/dev/null || missing+=("${NEED[$cmd]}"); fi
done
((${#missing[@]} == 0)) && exit 0
# --check: only say whether anything is missing (exit 1), install nothing.
[[ "${1:-}" == --check ]] && exit 1

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "[node-deps] installing with apt: ${missing[*]}" >&2
  exec 9>/tmp/pod-responder-apt.lock
  flock 9
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}") >&2
  # Debian's containerd package starts its own service where systemd runs; the devstack runs its own instance.
  exit 0
fi
echo "[node-deps] missing for a real node: ${missing[*]} (Debian: apt-get install ${missing[*]}; needs root)" >&2
exit 1
