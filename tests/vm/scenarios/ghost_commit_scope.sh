# vm: --cpus 3
# What a commit checks and touches where no other scenario looks: the agent
# barrier on a per-CPU agent's local commit, and the group commit's CPU mask
# (tests/vm/bin/ghost_commit_scope.cc).
set -u
ghost_commit_scope
