# vm: --cpus 4 --numa
# A global agent's CPU takes no ring entry while the agent spins there, even
# when it steps aside for a moment; once the agent sleeps on its queue saying
# so, the CPU takes entries like any other (tests/vm/bin/ghost_fast_path.cc).
ghost_fast_path agent_cpu
