#!/usr/bin/env bash
# Installs every build, test and VM dependency from Debian: bookworm for the
# toolchain, bookworm-backports for libbpf 1.4.6 and bpftool 7.5. Backports are
# reached through a private sources list, so the system's apt configuration is
# never edited. Then the Kubernetes manifest validator from npm
# (tests/k8s/package-lock.json, into $GHOST_NPM_DIR). Idempotent and
# non-interactive; run as root.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "deps: must run as root (apt-get install)" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
state=/var/cache/ghost-scx/apt
mkdir -p "$state/lists/partial"

# The system's own Debian mirror and keyring (falls back to deb.debian.org).
mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

main_pkgs=(make g++ clang-19 llvm-19 libelf-dev zlib1g-dev libzstd-dev
  libabsl-dev pkg-config libgtest-dev libgmock-dev libbenchmark-dev
  qemu-system-x86 busybox-static cpio zstd xz-utils binutils rt-tests stress-ng
  systemd procps)
bp_pkgs=(libbpf-dev libbpf1 bpftool)

have_all() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

# bookworm-backports' libbpf is 1:1.4.x; bookworm's own is 1:1.1.
have_backports() {
  have_all "${bp_pkgs[@]}" || return 1
  v=$(dpkg-query -W -f='${Version}' libbpf-dev)
  dpkg --compare-versions "$v" ge 1:1.4 || return 1
}

if ! have_all "${main_pkgs[@]}"; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${main_pkgs[@]}"
fi

if ! have_backports; then
  list="$state/backports.list"
  cat >"$list" <<EOL
deb [signed-by=$keyring] $mirror bookworm main
deb [signed-by=$keyring] $mirror bookworm-backports main
EOL
  apt_opts=(-o "Dir::Etc::SourceList=$list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$state/lists")
  apt-get "${apt_opts[@]}" update -qq
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends \
    libbpf-dev/bookworm-backports libbpf1/bookworm-backports bpftool/bookworm-backports
fi

have_backports || { echo "deps: libbpf >= 1.4 from bookworm-backports did not install" >&2; exit 1; }

# tests/install_test.sh validates deploy/k8s/ offline with tests/k8s/validate.js
# and these exact packages. Node may come from elsewhere (with its own npm);
# Debian's is used only when there is none.
npm_dir=${GHOST_NPM_DIR:-/var/cache/ghost-scx/npm}
lock=$(dirname "$0")/../tests/k8s/package-lock.json
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi
if ! cmp -s "$lock" "$npm_dir/package-lock.json" || [ ! -d "$npm_dir/node_modules/kubernetes-models" ]; then
  mkdir -p "$npm_dir"
  cp "$(dirname "$lock")/package.json" "$lock" "$npm_dir/"
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error) ||
    { echo "deps: npm ci of tests/k8s/package-lock.json in $npm_dir failed" >&2; exit 1; }
fi
echo "deps: ok (node $(node --version), k8s validator in $npm_dir, clang-19 $(clang-19 --version | head -1 | grep -o 'version [0-9.]*' | cut -d' ' -f2), libbpf $(dpkg-query -W -f='${Version}' libbpf-dev), $(bpftool version | head -1))"
