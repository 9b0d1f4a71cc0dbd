# vm: --cpus 3 --timeout 600
# A status word is published before its message, and readers only ever get
# whole words (its seqlock), with the class's race windows widened
# (tests/vm/bin/ghost_status_words.cc).
set -u
ghost_status_words
