# vm: --cpus 4 --timeout 600
# An adversarial agent (10 000 random/stale transactions) while affinity and
# nice flip: no ejection, no forbidden CPU, every thread finishes.
ghost_adversarial
