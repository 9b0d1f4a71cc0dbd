#!/usr/bin/env bash
# Prints the path of a vmlinuz with CONFIG_SCHED_CLASS_EXT=y for the test VM,
# fetching one from Debian when none is cached.
#
#   GHOST_KERNEL=/path/to/vmlinuz[.zst]  use this kernel (a .zst is decompressed
#                                        into the cache); nothing is fetched.
#   GHOST_CACHE=DIR                      cache directory (default
#                                        ${XDG_CACHE_HOME:-~/.cache}/ghost-scx).
#   GHOST_KERNEL_SUITE=sid               Debian suite to resolve from.
#
# Resolution: linux-image-amd64 -> linux-image-<ver> -> linux-binary-<ver>
# (vmlinuz) and linux-base-<ver> (config). The config must say
# CONFIG_SCHED_CLASS_EXT=y or the kernel is refused.
set -euo pipefail
cache=${GHOST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ghost-scx}
mkdir -p "$cache/kernel"
say() { echo "kernel.sh: $*" >&2; }

if [ -n "${GHOST_KERNEL:-}" ]; then
  [ -r "$GHOST_KERNEL" ] || { say "GHOST_KERNEL=$GHOST_KERNEL is not readable"; exit 2; }
  case "$GHOST_KERNEL" in
    *.zst)
      out="$cache/kernel/$(basename "${GHOST_KERNEL%.zst}")"
      if [ ! -s "$out" ] || [ "$GHOST_KERNEL" -nt "$out" ]; then
        zstd -dcqf "$GHOST_KERNEL" >"$out.tmp" && mv "$out.tmp" "$out"
      fi
      echo "$out" ;;
    *) echo "$GHOST_KERNEL" ;;
  esac
  exit 0
fi

# A kernel fetched earlier (and checked then) is reused.
cached=$(ls -1 "$cache/kernel"/vmlinuz-*.checked 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$cached" ]; then echo "${cached%.checked}"; exit 0; fi

suite=${GHOST_KERNEL_SUITE:-sid}
mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
state="$cache/apt-$suite"
mkdir -p "$state/lists/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$state/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$state/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
          -o APT::Sandbox::User=root)
say "resolving a sched_ext kernel from Debian $suite"
apt-get "${apt_opts[@]}" update -qq >&2
image=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$image" ] || { say "cannot resolve linux-image-amd64 in $suite"; exit 1; }
ver=${image#linux-image-}
say "found $image"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" download -qq "linux-binary-$ver" "linux-base-$ver" >&2)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
# 7.x packages keep both under usr/lib/modules/<ver>/; older ones under boot/.
cfg=$(find "$work/root" \( -path "*/modules/$ver/config" -o -name "config-$ver" \) | head -1)
vmlinuz=$(find "$work/root" \( -path "*/modules/$ver/vmlinuz" -o -name "vmlinuz-$ver" \) | head -1)
[ -n "$cfg" ] && [ -n "$vmlinuz" ] || { say "no vmlinuz/config in linux-binary-$ver/linux-base-$ver"; exit 1; }
grep -qx 'CONFIG_SCHED_CLASS_EXT=y' "$cfg" ||
  { say "$ver does not enable CONFIG_SCHED_CLASS_EXT; set GHOST_KERNEL to a kernel that does"; exit 1; }
cp "$vmlinuz" "$cache/kernel/vmlinuz-$ver"
cp "$cfg" "$cache/kernel/config-$ver"
touch "$cache/kernel/vmlinuz-$ver.checked"
say "cached $cache/kernel/vmlinuz-$ver"
echo "$cache/kernel/vmlinuz-$ver"
