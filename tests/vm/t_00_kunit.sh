# KUnit suites of ferrofs.ko ran at insmod: every suite reported ok, no case failed.
. "$(dirname "$0")/lib.sh"
log=$(dmesg)
# Every suite the module declares must have reported.
suites=$(grep -ho 'kunit_suite!([a-z_]*, "[a-z_]*"' "$FERROFS_ROOT"/rust/vfs/*.rs | sed 's/.*"\(.*\)"/\1/')
[ -n "$suites" ] || fail kunit-suites-found "no kunit_suite! in rust/vfs"
for suite in $suites; do
  # The suite's result line is "ok N suite", after dmesg's timestamp and
  # any KTAP indent; anchoring it keeps "not ok N suite" from counting.
  if grep -Eq "^(\[[ 0-9.]+\] )? *ok [0-9]+ $suite\$" <<<"$log"; then
    pass "kunit-$suite"
  else
    line=$(grep -E -m1 "ok [0-9]+ $suite\$" <<<"$log")
    fail "kunit-$suite" "no 'ok' line for the suite${line:+, only: $line}"
  fi
done
if grep -q 'not ok' <<<"$log"; then
  fail kunit-no-failures "$(grep -B5 'not ok' <<<"$log" | head -40)"
else
  pass kunit-no-failures
fi
