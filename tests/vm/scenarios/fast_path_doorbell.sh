# vm: --cpus 4 --numa
# The doorbell: entries pushed for node 1 once its CPUs have gone idle (the
# agent runs on node 0, and waits 20 ms before each push) are taken because the
# agent's doorbell kicks one of them. Prints the push-to-run times
# (docs/FAST_PATH.md has them with and without the kick).
ghost_fast_path doorbell
