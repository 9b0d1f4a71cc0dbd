# Harness self-test: a guest kernel panic must fail the run, even though this
# script would "pass".
echo c >/proc/sysrq-trigger
sleep 10
exit 0
