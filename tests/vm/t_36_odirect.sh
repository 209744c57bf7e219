# O_DIRECT: the alignment rule, aligned and sub-block transfers, holes,
# unwritten ranges, writes past EOF, coherency with the page cache and
# mmap (odirect.py); async direct I/O through io_uring and libaio (fio);
# O_DIRECT|O_SYNC and write+fsync durability across a power failure
# (dm-flakey), fsck clean after each part.
. "$(dirname "$0")/lib.sh"
FLAKEY=/dev/mapper/ferrofs-flakey

mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail odirect-mount; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/odirect.py" "$MNT" basic

# Async: io_uring and libaio complete direct reads and writes served
# synchronously; fio verifies every block it wrote (sector-sized blocks
# exercise the read-modify-write of partial blocks).
if command -v fio >/dev/null; then
  for engine in io_uring libaio; do
    for bs in 4k 512; do
      check "fio-$engine-$bs" fio --output=/tmp/fio-$engine-$bs.log --name=odirect --filename="$MNT/fio-$engine-$bs" \
        --ioengine=$engine --direct=1 --iodepth=8 --rw=randwrite --bs=$bs --size=2M \
        --verify=crc32c --do_verify=1 --verify_fatal=1
    done
  done
  # A read-back of a file written buffered, through each engine.
  head -c 1048576 /dev/urandom > "$MNT/fio-buffered"
  for engine in io_uring libaio; do
    check "fio-$engine-read" fio --output=/tmp/fio-$engine-read.log --name=odirect-read \
      --filename="$MNT/fio-buffered" --ioengine=$engine --direct=1 --iodepth=8 --rw=randread --bs=4k --size=1M
  done
else
  echo "SKIP fio: not installed"
fi
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
# Nothing made the unsynced file durable: the drop really lost writes.
check odirect-unsynced-lost sh -c "! test -e $MNT/unsynced"
umount "$MNT"
check odirect-powerfail-fsck-clean-after-remount fsck.ferrofs -n "$FLAKEY"
dmsetup remove ferrofs-flakey
