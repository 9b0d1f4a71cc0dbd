# Harness self-test: a scenario that fails must fail the run with its status.
echo "selftest: failing on purpose"
exit 3
