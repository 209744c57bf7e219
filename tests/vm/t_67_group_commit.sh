# Group commit of fast-commit fsyncs: parallel appenders, each fsyncing
# its own file, share device flushes (fewer flushes than fsyncs), the
# filesystem's flush count stays equal to the device's, and every append
# an fsync acknowledged survives a shutdown that writes nothing more and
# is replayed at the next mount. A lone fsync still costs one flush.
#
# The filesystem is on a loop device over a file on ext4 (on vdc): there,
# as on a disk with a volatile cache, a write is quick (the page cache)
# and a flush is slow (an fsync of the file: ext4's journal commit and the
# virtio disk's flush). Straight on virtio-blk with the VM's cache=unsafe
# a flush costs less than writing a record, so fsyncs seldom overlap one.
. "$(dirname "$0")/lib.sh"
mkfs.ext4 -q -F "$DEV2"
mkdir -p /tmp/gc-backing
mount -t ext4 "$DEV2" /tmp/gc-backing || { fail gc-backing-mount; exit 0; }
truncate -s 1G /tmp/gc-backing/img
LOOP=$(losetup -f --show /tmp/gc-backing/img) || { fail gc-losetup; umount /tmp/gc-backing; exit 0; }
L=${LOOP#/dev/}
gc_cleanup() { umount "$MNT" 2>/dev/null; losetup -d "$LOOP"; umount /tmp/gc-backing; }
echo "loop device $LOOP, write cache: $(cat /sys/block/$L/queue/write_cache)"
S=/sys/fs/ferrofs/$L/fsync_stats
val() { awk -v k="$1" '$1 == k { print $2 }' "$S"; }
dev_flushes() { awk '{ print $16 }' /sys/block/$L/stat; }
WRITERS=8 EACH=60

mkfs.ferrofs -q -f "$LOOP"
# No background commit: only the fsyncs make anything durable.
mount -t ferrofs -o commit=86400 "$LOOP" "$MNT" || { fail gc-mount; gc_cleanup; exit 0; }
for i in $(seq $WRITERS); do : > "$MNT/f$i"; done
sync
fc0=$(val fsync_fast_commit) fl0=$(val flushes) c0=$(val commits) dfl0=$(dev_flushes)
# Each writer appends 4 KiB of its own pattern and fsyncs, EACH times; the
# writers start together. Every acknowledged append is copied to /tmp.
python3 - "$MNT" $WRITERS $EACH <<'PY'
import os, sys, multiprocessing as mp
mnt, writers, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def run(i, barrier):
    fd = os.open(f"{mnt}/f{i}", os.O_WRONLY | os.O_APPEND)
    want = open(f"/tmp/gc-want{i}", "wb")
    barrier.wait()
    for k in range(each):
        block = bytes([(i * 31 + k) % 251 + 1]) * 4096
        os.write(fd, block)
        os.fsync(fd)
        want.write(block)
    want.close()
b = mp.Barrier(writers)
ps = [mp.Process(target=run, args=(i, b)) for i in range(1, writers + 1)]
for p in ps: p.start()
for p in ps: p.join()
sys.exit(max(p.exitcode for p in ps))
PY
check gc-writers-done test $? = 0
fsyncs=$((WRITERS * EACH))
fc=$(( $(val fsync_fast_commit) - fc0 )) fl=$(( $(val flushes) - fl0 )) dfl=$(( $(dev_flushes) - dfl0 ))
echo "group commit: $fsyncs fsyncs, $fc fast commits, $fl flushes (device $dfl), $(( $(val commits) - c0 )) commits"
check gc-all-fast-commits test "$fc" = "$fsyncs"
check gc-no-commit test "$(val commits)" = "$c0"
check gc-flushes-counted-exactly test "$fl" = "$dfl"
# One flush per fsync would be $fsyncs; sharing must save at least a tenth.
check gc-flushes-shared test $((fl * 10)) -lt $((fsyncs * 9))
check gc-at-least-one-flush test "$fl" -ge 1

# A lone fsync is still one record and one flush.
fl0=$(val flushes) dfl0=$(dev_flushes)
head -c 4096 /dev/urandom >> "$MNT/f1"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/f1"
check gc-lone-fsync-one-flush test "$(( $(val flushes) - fl0 ))" = 1
check gc-lone-fsync-device-one-flush test "$(( $(dev_flushes) - dfl0 ))" = 1
tail -c 4096 "$MNT/f1" >> /tmp/gc-want1

# Shutdown without a log flush: what the fsyncs acknowledged is on the
# disk only as records, and replay brings all of it back.
check gc-shutdown xfs_io -x -c shutdown "$MNT"
umount "$MNT"
mark_dmesg
mount -t ferrofs "$LOOP" "$MNT" || { fail gc-remount; gc_cleanup; exit 0; }
check gc-replayed-every-record test "$(val replayed_records)" = $((fsyncs + 1))
bad=0
for i in $(seq $WRITERS); do cmp -s "$MNT/f$i" "/tmp/gc-want$i" || { bad=$((bad + 1)); echo "f$i differs"; }; done
check gc-acknowledged-appends-survive test "$bad" = 0
umount "$MNT"
check gc-fsck-clean fsck.ferrofs -n "$LOOP"
gc_cleanup
