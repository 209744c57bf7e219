# KUnit suites of ferrofs.ko ran at insmod: every suite reported ok, no case failed.
. "$(dirname "$0")/lib.sh"
log=$(dmesg)
for suite in ferrofs_crc ferrofs_superblock ferrofs_engine ferrofs_xattr; do
  if grep -Eq "^\[[ 0-9.]+\] +(    )?ok [0-9]+ $suite\$" <<<"$log" || grep -Eq "ok [0-9]+ $suite$" <<<"$log"; then
    pass "kunit-$suite"
  else
    fail "kunit-$suite" "no 'ok' line for the suite"
  fi
done
if grep -q 'not ok' <<<"$log"; then
  fail kunit-no-failures "$(grep -B5 'not ok' <<<"$log" | head -40)"
else
  pass kunit-no-failures
fi
