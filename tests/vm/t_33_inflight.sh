# Writeback's data writes left in flight (tests/vm/inflight.py): reads
# straight after writeback return the written bytes, blocks freed under a
# write in flight are not handed out again early; then fsck and remount.
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail inflight-mount; exit 0; }
check inflight-run python3 "$FERROFS_ROOT/tests/vm/inflight.py" "$MNT" run
check inflight-umount umount "$MNT"
check inflight-fsck fsck.ferrofs -n "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail inflight-remount; exit 0; }
check inflight-verify python3 "$FERROFS_ROOT/tests/vm/inflight.py" "$MNT" verify
umount "$MNT"
