# vm: --cpus 3
# Two live enclaves are isolated: messages never cross, commits across the
# border are refused, and an agent that writes the other enclave's queue into
# its own enclave word reaches nothing of it (tests/vm/bin/ghost_enclaves.cc).
set -u
ghost_enclaves
