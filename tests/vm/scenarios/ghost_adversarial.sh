# vm: --cpus 4 --timeout 900
# An adversarial agent (10 000 random/stale transactions) while affinity and
# nice flip: no ejection, no forbidden CPU, every thread finishes. Twice: as
# built, and with the commit's check-to-move window widened (TOOLCHAIN.md).
set -u
ghost_adversarial || exit 1
ghost_adversarial 2000 || exit 1
