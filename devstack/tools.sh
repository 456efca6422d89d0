#!/usr/bin/env bash
# Builds or installs the devstack's binaries into version-keyed folders under
# ${POD_RESPONDER_TOOLS_DIR:-<repo>/.tools}. Idempotent: a tool that is already
# there is skipped, so a warm run takes well under a second.
# Progress goes to stderr; stdout gets one `name=path` line per tool (stack.ts parses it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${POD_RESPONDER_TOOLS_DIR:-$ROOT/.tools}"
TEMPORAL_VERSION=1.5.1
K8S_VERSION=1.34.3 # must match the k8s.io/kubernetes version in devstack/kube-apiserver/go.mod
MOTO_VERSION=5.2.5 # moto's server mode stands in for AWS (IAM, EC2, EKS, Lambda, STS) in tests

TEMPORAL="$TOOLS/temporal-$TEMPORAL_VERSION/temporal"
KUBE_APISERVER="$TOOLS/kube-apiserver-$K8S_VERSION/kube-apiserver"
MOTO_DIR="$TOOLS/moto-$MOTO_VERSION"
MOTO_SERVER="$MOTO_DIR/venv/bin/moto_server"

say() { echo "[tools] $*" >&2; }

mkdir -p "$TOOLS"
# A human's `npm run stack up` and a test run may both get here on a cold machine:
# serialise so the second one waits for the build instead of duplicating it.
exec 9>"$TOOLS/.lock"
flock 9
rm -rf "$TOOLS"/.build.* # leftovers of builds that were killed

# Build into a temp dir and rename, so a killed build never leaves a half-written binary.
if [[ ! -x "$TEMPORAL" ]]; then
  say "building temporal CLI v$TEMPORAL_VERSION (first time only; several minutes)"
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  GOBIN="$tmp" go install -trimpath \
    -ldflags="-s -w -X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_VERSION" \
    "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_VERSION" >&2
  mkdir -p "$(dirname "$TEMPORAL")"
  mv "$tmp/temporal" "$TEMPORAL"
  rm -rf "$tmp"
fi

if [[ ! -x "$KUBE_APISERVER" ]]; then
  say "building kube-apiserver v$K8S_VERSION (first time only; 10-20 minutes)"
  # Stamp the version a plain `go build` leaves as v0.0.0-master, so /version tells the truth.
  ldflags='-s -w'
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*}"
    ldflags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION") -X $pkg.gitTreeState=clean"
  done
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  (cd "$ROOT/devstack/kube-apiserver" &&
    go build -trimpath -ldflags="$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
  mkdir -p "$(dirname "$KUBE_APISERVER")"
  mv "$tmp/kube-apiserver" "$KUBE_APISERVER"
  rm -rf "$tmp"
fi

# etcd: Debian's etcd-server package (3.4.x) is enough for kube-apiserver here.
ETCD="$(command -v etcd || true)"
if [[ -z "$ETCD" ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    say "installing etcd-server with apt"
    # (The package may start its own etcd service on :2379; the stack never uses it.)
    (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server) >&2
    ETCD="$(command -v etcd)"
  else
    say "etcd is missing: install Debian's etcd-server (apt-get install etcd-server) or put etcd on PATH"
    exit 1
  fi
fi

# moto: a venv of its own (moto[server] pulls Flask, boto3, cfn-lint...). A venv cannot be moved after
# it is made, so instead of build-and-rename a marker written last says the install finished; it
# holds the constraints' hash, so changing devstack/moto-constraints.txt rebuilds the venv.
MOTO_CONSTRAINTS="$ROOT/devstack/moto-constraints.txt"
moto_stamp="$MOTO_VERSION $(sha256sum "$MOTO_CONSTRAINTS" | cut -d' ' -f1)"
if [[ ! -x "$MOTO_SERVER" || "$(cat "$MOTO_DIR/.installed" 2>/dev/null)" != "$moto_stamp" ]]; then
  say "installing moto[server] $MOTO_VERSION into $MOTO_DIR/venv (first time only; about a minute)"
  PYTHON="$(command -v python3 || true)"
  if [[ -z "$PYTHON" ]] || ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
      say "installing python3-venv with apt"
      (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv) >&2
      PYTHON="$(command -v python3)"
    else
      say "moto needs python3 with the venv module (Debian: apt-get install python3-venv)"
      exit 1
    fi
  fi
  rm -rf "$MOTO_DIR"
  mkdir -p "$MOTO_DIR"
  "$PYTHON" -m venv "$MOTO_DIR/venv" >&2
  "$MOTO_DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
    -c "$MOTO_CONSTRAINTS" "moto[server]==$MOTO_VERSION" >&2
  echo "$moto_stamp" >"$MOTO_DIR/.installed"
fi

echo "temporal=$TEMPORAL"
echo "kube-apiserver=$KUBE_APISERVER"
echo "etcd=$ETCD"
echo "moto=$MOTO_SERVER"
