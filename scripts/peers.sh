#!/usr/bin/env bash
# `make peers`: builds the kernel's own example sched_ext schedulers (the
# "peers": scx_simple, scx_central, scx_userland; scx_qmap only with a clang
# that can build it) from Debian's linux-source package of the test kernel's
# series, statically linked for the busybox guest, and prints the directory
# holding them (the last line on stdout; progress goes to stderr):
#
#   tests/vm/vm.sh ... $(for f in "$(bash scripts/peers.sh)"/scx_*; do echo --file "$f"; done) ...
#
# Cached per kernel version in $GHOST_CACHE/peers/<kernel version>/bin (the
# cache kernel.sh uses, default ~/.cache/ghost-scx); a peer already there is
# not rebuilt. A peer that fails to build is reported (its log is kept) and the
# others still build; the exit status is non-zero only if none is there.
#
#   GHOST_PEERS="scx_simple ..."   peers to build (default: the four above)
#   GHOST_PEERS_DEB=FILE           use this linux-source-X.Y_*.deb, download nothing
#   GHOST_PEERS_SUITE=sid          Debian suite the package comes from
#   GHOST_KERNEL, GHOST_CACHE      as for scripts/kernel.sh (the kernel whose BTF
#                                  the peers are built against)
#
# How (see ../shared/TOOLCHAIN.md "Peers"): the package is fetched with apt
# through a private sources list (as scripts/kernel.sh does: the system's apt
# configuration is never touched); only tools/, include/, kernel/bpf/,
# scripts/, arch/x86/include/ and the top Makefile are extracted from its
# tarball. The BPF side needs the kernel's BTF: the vmlinux ELF is taken out of
# the bzImage (its zstd payload). tools/sched_ext/Makefile builds its own
# libbpf and bpftool from the same tree, with a PATH directory that maps
# clang, llc, llvm-strip, ... to the -19 tools (and no llvm-config, so bpftool
# does not link LLVM); each peer is then relinked with -static.
# scx_qmap's BPF passes 7.2's verifier only when built with clang >= 22, which
# needs a newer glibc than Debian 12 has: it is skipped (with that reason)
# unless a clang-22 or newer is installed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${GHOST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ghost-scx}
peers=${GHOST_PEERS:-scx_simple scx_central scx_userland scx_qmap}
suite=${GHOST_PEERS_SUITE:-sid}
t0=$(date +%s)
say() { printf 'peers: [%3ss] %s\n' $(($(date +%s) - t0)) "$*" >&2; }
die() { say "$*"; exit 1; }

# progress LABEL LOG CMD...: runs CMD (its output to LOG), saying every 15 s
# that it still runs.
progress() {
  local label=$1 log=$2; shift 2
  "$@" >"$log" 2>&1 &
  local pid=$! s=0 rc
  while kill -0 $pid 2>/dev/null; do
    sleep 1; s=$((s + 1))
    [ $((s % 15)) = 0 ] && kill -0 $pid 2>/dev/null && say "$label: still running (${s} s)"
  done
  wait $pid && rc=0 || rc=$?
  return $rc
}

for t in clang-19 make gcc zstd xz dpkg-deb apt-get; do
  command -v $t >/dev/null || die "$t not found: run 'make deps' (and apt-get install xz-utils)"
done
for p in $peers; do
  case "$p" in scx_simple | scx_central | scx_userland | scx_qmap) ;;
    *) die "unknown peer '$p' (scx_simple, scx_central, scx_userland, scx_qmap)" ;; esac
done

kernel=$(bash "$top/scripts/kernel.sh") || die "no test kernel (scripts/kernel.sh failed)"
kver=$(basename "$kernel"); kver=${kver#vmlinuz-}
series=$(echo "$kver" | sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p')
[ -n "$series" ] || die "cannot tell the kernel series from '$kver'"
dir=$cache/peers/$kver
bin=$dir/bin
mkdir -p "$bin" "$dir/logs"
say "kernel $kver; peers go to $bin"

# The newest clang installed; scx_qmap needs >= 22.
clang_ver=19
for c in $(compgen -c clang- | grep -E '^clang-[0-9]+$' | sort -t- -k2 -n -u); do clang_ver=${c#clang-}; done
todo="" skipped=""
for p in $peers; do
  if [ "$p" = scx_qmap ] && [ "$clang_ver" -lt 22 ]; then
    skipped="$skipped $p"
    say "$p: skipped: its BPF passes 7.2's verifier only when built with clang >= 22 (newest here: clang-$clang_ver; sid's clang-22 needs glibc >= 2.38, Debian 12 has 2.36)"
    continue
  fi
  if [ -x "$bin/$p" ]; then say "$p: cached"; else todo="$todo $p"; fi
done

built=""
if [ -n "$todo" ]; then
  # --- the source -------------------------------------------------------------
  src=$dir/src/linux-source-$series
  if [ ! -f "$src/.extracted" ]; then
    rm -rf "$dir/src"; mkdir -p "$dir/src"
    deb=${GHOST_PEERS_DEB:-}
    if [ -z "$deb" ]; then
      mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
      [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
      state=$cache/apt-$suite
      mkdir -p "$state/lists/partial"
      echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$state/sources.list"
      apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$state/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
                -o APT::Sandbox::User=root)
      say "apt: updating Debian $suite's package lists (private sources list)"
      apt-get "${apt_opts[@]}" update -qq >&2
      pver=$(apt-cache "${apt_opts[@]}" policy "linux-source-$series" | awk '/Candidate:/ {print $2}')
      [ -n "$pver" ] && [ "$pver" != "(none)" ] ||
        die "Debian $suite has no linux-source-$series (the kernel is $kver); set GHOST_PEERS_DEB to a linux-source-${series}_*.deb"
      [ "${pver%%-*}" = "${kver%%[+-]*}" ] ||
        say "note: $suite's linux-source-$series is $pver, the kernel is $kver: the examples come from $pver"
      say "apt: downloading linux-source-$series $pver (about 165 MB)"
      (cd "$dir/src" && apt-get "${apt_opts[@]}" download "linux-source-$series=$pver" >&2) ||
        die "apt-get download linux-source-$series failed"
      deb=$(ls "$dir/src/linux-source-${series}"_*.deb | head -1)
    fi
    [ -r "$deb" ] || die "no such package: $deb"
    say "extracting tools/, include/, kernel/bpf/, scripts/, arch/x86/include/ from $(basename "$deb") (15 s here)"
    extract() {
      dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./usr/src/linux-source-$series.tar.xz" | xz -dc |
        tar -xf - -C "$dir/src" "linux-source-$series/Makefile" "linux-source-$series/tools" \
          "linux-source-$series/include" "linux-source-$series/kernel/bpf" \
          "linux-source-$series/scripts" "linux-source-$series/arch/x86/include"
    }
    progress extract "$dir/logs/extract.log" extract ||
      { cat "$dir/logs/extract.log" >&2; die "extracting the source from $deb failed"; }
    [ -z "${GHOST_PEERS_DEB:-}" ] && rm -f "$dir/src"/*.deb
    [ -f "$src/tools/sched_ext/Makefile" ] || die "no tools/sched_ext in $(basename "$deb")"
    touch "$src/.extracted"
  fi

  # --- the kernel's BTF: the vmlinux ELF inside the bzImage --------------------------
  vmlinux=$dir/vmlinux
  if [ ! -s "$vmlinux" ]; then
    say "extracting the vmlinux ELF (BTF) from $kernel"
    off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$kernel" | head -1 | cut -d: -f1)
    [ -n "$off" ] || die "no zstd payload in $kernel (not a zstd bzImage?)"
    tail -c +$((off + 1)) "$kernel" | zstd -dcq 2>/dev/null >"$vmlinux.tmp" || true
    [ "$(head -c 4 "$vmlinux.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] ||
      { rm -f "$vmlinux.tmp"; die "the payload of $kernel is not an ELF vmlinux"; }
    mv "$vmlinux.tmp" "$vmlinux"
  fi

  # --- the build -----------------------------------------------------------------
  tools=$dir/llvm-bin
  rm -rf "$tools"; mkdir -p "$tools"
  for t in /usr/lib/llvm-"$clang_ver"/bin/*; do
    case "${t##*/}" in llvm-config) continue ;; esac
    ln -s "$t" "$tools/${t##*/}"
  done
  [ -x "$tools/clang" ] || die "no /usr/lib/llvm-$clang_ver/bin/clang: run 'make deps'"
  out=$dir/build
  mkdir -p "$out"
  for p in $todo; do
    log=$dir/logs/$p.log
    say "$p: building with clang-$clang_ver (the first one also builds libbpf and bpftool: about 30 s on 2 cores; log: $log)"
    ok=0
    if progress "$p" "$log" env PATH="$tools:$PATH" make -C "$src/tools/sched_ext" -j"$(nproc)" O="$out" \
         VMLINUX_BTF="$vmlinux" "$p"; then
      # Relinked statically: the guest has no shared libraries.
      if gcc -static -s -o "$bin/$p.tmp" "$out/build/obj/sched_ext/$p.o" "$out/build/obj/libbpf/libbpf.a" \
           -lelf -lz -lzstd -lpthread >>"$log" 2>&1 &&
         ! readelf -l "$bin/$p.tmp" | grep -q 'program interpreter'; then
        mv "$bin/$p.tmp" "$bin/$p"
        ok=1
      else
        echo "static link failed" >>"$log"
      fi
    fi
    rm -f "$bin/$p.tmp"
    if [ $ok = 1 ]; then
      built="$built $p"
      say "$p: built ($(du -k "$bin/$p" | cut -f1) KB, static)"
    else
      say "$p: FAILED to build; the end of $log:"
      tail -n 15 "$log" | sed 's/^/    /' >&2
    fi
  done
fi

have=""
for p in $peers; do [ -x "$bin/$p" ] && have="$have $p"; done
failed=""
for p in $todo; do case " $built " in *" $p "*) ;; *) failed="$failed $p" ;; esac; done
say "done: available:${have:- none}${skipped:+; skipped:$skipped}${failed:+; failed:$failed}"
[ -n "$have" ] || die "no peer could be built"
echo "$bin"
