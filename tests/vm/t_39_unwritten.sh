# Unwritten extents end to end: fallocate writes no data (device write
# counters), reads zeros, FIEMAP (filefrag) flags the extents unwritten; a
# write into them converts only what it covers; after a power failure
# (dm-flakey dropping writes) an fsynced write is there, an unsynced one is
# gone, and no byte of what the device held before ever shows; fsck clean.
. "$(dirname "$0")/lib.sh"
FS_MB=128
FLAKEY=/dev/mapper/ferrofs-flakey
FLAKEY_SECTORS=$(( FS_MB * 2048 ))
written_sectors() { awk '{print $7}' /sys/block/vdb/stat; }
# Bytes of the file that are neither zero nor 0x5a (the only data written).
foreign_bytes() { tr -d '\000\132' < "$1" | wc -c; }

# Stale content everywhere first: were a preallocated block read from the
# device, 0xa5 bytes would show.
tr '\000' '\245' < /dev/zero | dd of="$DEV1" bs=1M count=$FS_MB oflag=direct status=none
dmsetup create ferrofs-flakey --table "$(flakey_table up)" || { fail unwritten-flakey-create; exit 0; }
mkfs.ferrofs -q -f "$FLAKEY"
# INCOMPAT_UNWRITTEN (0x10) among mkfs's feature bits.
incompat=$(ferrofs show-super "$FLAKEY" | awk '$1 == "features" {print $3}')
check unwritten-feature-bit test $((incompat & 0x10)) = 16
mount -t ferrofs -o commit=86400 "$FLAKEY" "$MNT" || { fail unwritten-mount; dmsetup remove ferrofs-flakey; exit 0; }

# 48 MiB preallocated and committed: a few tree blocks written, no data.
sync
before=$(written_sectors)
check unwritten-fallocate fallocate -l 48M "$MNT/f"
sync
wrote=$(( ($(written_sectors) - before) * 512 ))
if [ "$wrote" -lt $(( 2 << 20 )) ]; then pass unwritten-fallocate-writes-no-data; else fail unwritten-fallocate-writes-no-data "$wrote bytes written"; fi
check unwritten-size test "$(stat -c %s "$MNT/f")" = $(( 48 << 20 ))
check unwritten-blocks test "$(stat -c %b "$MNT/f")" = $(( 48 << 11 ))
check unwritten-reads-zeros cmp -n $(( 48 << 20 )) "$MNT/f" /dev/zero
check unwritten-filefrag sh -c "filefrag -v $MNT/f | grep -q unwritten"

# A written megabyte in the middle: written there, unwritten around it.
head -c $(( 1 << 20 )) /dev/zero | tr '\000' '\132' > /tmp/pattern
check unwritten-write dd if=/tmp/pattern of="$MNT/f" bs=1M seek=10 conv=notrunc,fsync status=none
filefrag -v "$MNT/f" > /tmp/filefrag.out
check unwritten-filefrag-mixed sh -c "grep -q unwritten /tmp/filefrag.out && grep -v unwritten /tmp/filefrag.out | grep -Eq '^ +[0-9]+: +2560\.\.'"
check unwritten-seek-data python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.lseek(fd, 0, os.SEEK_DATA) == 10 << 20, os.lseek(fd, 0, os.SEEK_DATA)
assert os.lseek(fd, 10 << 20, os.SEEK_HOLE) == 11 << 20
" "$MNT/f"

# An unsynced write, then the power fails: it must read back as zeros,
# never as the stale 0xa5.
flakey drop
dd if=/tmp/pattern of="$MNT/f" bs=1M seek=20 conv=notrunc status=none
umount "$MNT"
flakey up
check unwritten-crash-fsck fsck.ferrofs -n "$FLAKEY"
check unwritten-crash-mount mount -t ferrofs "$FLAKEY" "$MNT"
check unwritten-fsynced-survives cmp -i 0:$(( 10 << 20 )) -n $(( 1 << 20 )) /tmp/pattern "$MNT/f"
check unwritten-unsynced-zeros cmp -i $(( 20 << 20 )):0 -n $(( 1 << 20 )) "$MNT/f" /dev/zero
check unwritten-no-stale-bytes test "$(foreign_bytes "$MNT/f")" = 0
check unwritten-zeros-elsewhere sh -c "cmp -n $(( 10 << 20 )) $MNT/f /dev/zero && cmp -i $(( 11 << 20 )):0 -n $(( 37 << 20 )) $MNT/f /dev/zero"
check unwritten-filefrag-after-crash sh -c "filefrag -v $MNT/f | grep -q unwritten"
# A write after remount lands, KEEP_SIZE preallocation past the end stays.
check unwritten-keep-size fallocate -n -o 48M -l 4M "$MNT/f"
check unwritten-size-kept test "$(stat -c %s "$MNT/f")" = $(( 48 << 20 ))
umount "$MNT"
check unwritten-fsck fsck.ferrofs -n "$FLAKEY"
dmsetup remove ferrofs-flakey
