#!/usr/bin/env bash
# Regenerates vmlinux.h from a kernel's BTF.
#   vmlinux/gen.sh SOURCE [OUT]
# SOURCE is a bzImage (vmlinuz, optionally .zst-compressed), an ELF vmlinux, or a
# raw BTF file such as /sys/kernel/btf/vmlinux. The bzImage payload is zstd:
# everything from the zstd magic onwards decompresses to the ELF that holds .BTF
# (trailing bytes are ignored by zstd with a warning, hence 2>/dev/null).
set -euo pipefail
src=${1:?usage: vmlinux/gen.sh SOURCE [OUT]}
out=${2:-$(dirname "$0")/vmlinux.h}
[ -r "$src" ] || { echo "gen.sh: cannot read $src" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

case "$src" in
  *.zst) zstd -dcq "$src" >"$tmp/in" ;;
  *) cp "$src" "$tmp/in" ;;
esac

magic=$(head -c 4 "$tmp/in" | od -An -tx1 | tr -d ' \n')
if [ "$magic" = 7f454c46 ]; then             # ELF vmlinux
  btf="$tmp/in"
elif [ "$magic" = 9feb0100 ]; then           # raw BTF (little endian, v1)
  btf="$tmp/in"
else                                         # bzImage: find the zstd payload
  off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$tmp/in" | head -1 | cut -d: -f1)
  [ -n "$off" ] || { echo "gen.sh: no zstd payload in $src (not a zstd bzImage?)" >&2; exit 2; }
  tail -c +$((off + 1)) "$tmp/in" | zstd -dcq 2>/dev/null >"$tmp/vmlinux" || true
  [ "$(head -c 4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] ||
    { echo "gen.sh: payload of $src is not an ELF vmlinux" >&2; exit 2; }
  btf="$tmp/vmlinux"
fi

bpftool btf dump file "$btf" format c >"$tmp/vmlinux.h"
grep -q 'struct sched_ext_ops {' "$tmp/vmlinux.h" ||
  { echo "gen.sh: $src has no sched_ext (struct sched_ext_ops missing from its BTF)" >&2; exit 2; }
mv "$tmp/vmlinux.h" "$out"
echo "gen.sh: wrote $out ($(wc -c <"$out") bytes) from $src"
