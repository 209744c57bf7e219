# O_DIRECT: the alignment rule, aligned and sub-block transfers, holes,
# unwritten ranges, writes past EOF, coherency with the page cache and
# mmap (odirect.py); async direct I/O through io_uring and Linux AIO
# (aio_direct.py), queued async reads completing after the device
# (dio_queued.py), async overwrites in place (dio_overwrite.py); xfs_io -d; O_DIRECT|O_SYNC and write+fsync durability
# across a power failure (dm-flakey), fsck clean after each part.
. "$(dirname "$0")/lib.sh"
FLAKEY=/dev/mapper/ferrofs-flakey

mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail odirect-mount; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/odirect.py" "$MNT" basic

# Async: Linux AIO (what libaio wraps) and io_uring complete batches of
# direct reads and writes with the right results.
python3 "$FERROFS_ROOT/tests/vm/aio_direct.py" "$MNT"
if command -v xfs_io >/dev/null; then
  xfs_io -f -d -c "pwrite -q -S 0x5a 512 8192" -c "fsync" "$MNT/xfs_io" 2>/tmp/xfs_io.err
  { head -c 512 /dev/zero; head -c 8192 /dev/zero | tr '\0' Z; } > /tmp/xfs_io.expect
  check xfs_io-direct-pwrite cmp /tmp/xfs_io.expect "$MNT/xfs_io"
  check xfs_io-direct-misaligned-einval sh -c "xfs_io -d -c 'pread -q 1 512' $MNT/xfs_io 2>&1 | grep -q 'Invalid argument'"
fi
check odirect-umount umount "$MNT"
check odirect-fsck fsck.ferrofs -n "$DEV1"

# Power failure: what O_DIRECT|O_SYNC and O_DIRECT + fsync wrote survives
# losing every later write; a day-long commit interval keeps a background
# commit from making it durable instead.
dmsetup create ferrofs-flakey --table "$(flakey_table up)" || { fail flakey-create; exit 0; }
mkfs.ferrofs -q -f "$FLAKEY"
mount -t ferrofs -o commit=86400 "$FLAKEY" "$MNT" || { fail odirect-flakey-mount; dmsetup remove ferrofs-flakey; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/odirect.py" "$MNT" crash-write
# Queued async direct reads: io_submit returns while the device holds
# their bios, they complete after; the fsynced writes before them survive
# the power cut.
python3 "$FERROFS_ROOT/tests/vm/dio_queued.py" "$MNT" ferrofs-flakey write
# Async overwrites of committed blocks the file alone holds go in place;
# the rest copy-on-write (dio_overwrite.py); fsynced, they survive too.
python3 "$FERROFS_ROOT/tests/vm/dio_overwrite.py" "$MNT" write
# fsync after a direct write takes the usual tiers: a small append is one
# fast-commit record (the directory is named by the super_block's s_id).
stats=/sys/fs/ferrofs/dm-$(dmsetup info -c --noheadings -o minor ferrofs-flakey | tr -d ' ')/fsync_stats
fc0=$(awk '$1 == "fsync_fast_commit" { print $2 }' "$stats")
python3 "$FERROFS_ROOT/tests/vm/odirect.py" "$MNT" fc-append
check odirect-append-fsync-was-fast-commit test "$(awk '$1 == "fsync_fast_commit" { print $2 }' "$stats")" = $((fc0 + 1))
python3 -c 'import os, mmap, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
buf = mmap.mmap(-1, 4096)
os.pwritev(fd, [buf], 0)' "$MNT/unsynced"
flakey drop
umount "$MNT"
flakey up
check odirect-powerfail-fsck-clean fsck.ferrofs -n "$FLAKEY"
mount -t ferrofs "$FLAKEY" "$MNT" || { fail odirect-powerfail-remount; dmsetup remove ferrofs-flakey; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/odirect.py" "$MNT" crash-check
python3 "$FERROFS_ROOT/tests/vm/dio_queued.py" "$MNT" ferrofs-flakey check
python3 "$FERROFS_ROOT/tests/vm/dio_overwrite.py" "$MNT" check
# Nothing made the unsynced file durable: the drop really lost writes.
check odirect-unsynced-lost sh -c "! test -e $MNT/unsynced"
umount "$MNT"
check odirect-powerfail-fsck-clean-after-remount fsck.ferrofs -n "$FLAKEY"
dmsetup remove ferrofs-flakey
