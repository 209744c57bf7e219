# The page-cache data path: mmap, splice, truncate zeroing, O_DIRECT open,
# times across writeback, ENOSPC at write(2); then fsck and remount, with
# bytes written past a file's end in its block on the device meanwhile.
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail pc-mount; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/pagecache.py" "$MNT" before
check pc-umount umount "$MNT"
check pc-fsck fsck.ferrofs -n "$DEV1"
# Bytes past the end of "eoftail" in its block, put there behind the
# filesystem's back: reads must still show zeros past EOF.
check pc-eoftail-poke python3 -c 'import os, sys
at = int(open("/tmp/eoftail.phys").read())
fd = os.open(sys.argv[1], os.O_WRONLY)
assert at > 0 and os.pwrite(fd, b"\x5a" * (4096 - at % 4096), at) > 0
os.fsync(fd)' "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail pc-remount; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/pagecache.py" "$MNT" after
umount "$MNT"

# A small filesystem for ENOSPC.
dd if=/dev/zero of="$DEV2" bs=1M count=64 status=none
mkfs.ferrofs -q -f "$DEV2" 64M
mount -t ferrofs "$DEV2" "$MNT" || { fail pc-small-mount; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/pagecache.py" "$MNT" fill
check pc-small-umount umount "$MNT"
check pc-small-fsck fsck.ferrofs -n "$DEV2"
