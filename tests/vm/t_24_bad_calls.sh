# ioctls and mount options with bad arguments and unprivileged callers
# (tests/vm/bad_calls.py): a clear errno each, nothing changed, no kernel
# report (the harness checks the log at the end of the run).
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV2"
python3 "$FERROFS_ROOT/tests/vm/bad_calls.py" "$DEV2" "$MNT"
