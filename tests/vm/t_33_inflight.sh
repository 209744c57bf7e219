# Writeback's data writes left in flight (tests/vm/inflight.py): reads
# straight after writeback return the written bytes, blocks freed under a
# write in flight are not handed out again early; then fsck and remount.
# Blocks freed while reads are in flight go back to use once the reads
# that might use them have ended, though others are still in flight
# (tests/vm/held_blocks.py).
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail inflight-mount; exit 0; }
check inflight-run python3 "$FERROFS_ROOT/tests/vm/inflight.py" "$MNT" run
check inflight-umount umount "$MNT"
check inflight-fsck fsck.ferrofs -n "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail inflight-remount; exit 0; }
check inflight-verify python3 "$FERROFS_ROOT/tests/vm/inflight.py" "$MNT" verify
umount "$MNT"

# A chain of direct reads, each stopped in the fault on a buffer mapped
# from a suspended dm device, keeps one read in flight at every moment
# while a quarter of an 80 MiB filesystem is rewritten and committed
# eight times.
mkfs.ferrofs -q -f "$DEV1" 80M
dmsetup create ferrofs-stall0 --table "0 16384 linear $DEV2 0" || { fail held-stall-create; exit 0; }
dmsetup create ferrofs-stall1 --table "0 16384 linear $DEV2 16384" || { fail held-stall-create; dmsetup remove ferrofs-stall0; exit 0; }
if mount -t ferrofs -o commit=86400 "$DEV1" "$MNT"; then
  python3 "$FERROFS_ROOT/tests/vm/held_blocks.py" "$MNT" ferrofs-stall0 ferrofs-stall1
  check held-umount umount "$MNT"
  check held-fsck fsck.ferrofs -n "$DEV1"
else
  fail held-mount
fi
dmsetup remove ferrofs-stall0
dmsetup remove ferrofs-stall1
