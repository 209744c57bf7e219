# SEEK_DATA/SEEK_HOLE, fallocate, FIEMAP (a sequential write is one
# extent), O_TMPFILE, then remount
# read-only (everything written back and committed, nothing written while
# read-only) and back; fsck clean throughout.
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1" 1G
mount -t ferrofs "$DEV1" "$MNT" || { fail ext-mount; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/extents.py" "$MNT"
# fallocate obeys RLIMIT_FSIZE as a write does (EFBIG, SIGXFSZ ignored
# here), growing nothing; within the limit, and with KEEP_SIZE, it works.
# (bash: its ulimit -f counts KiB, where dash counts 512-byte blocks.)
check_efbig() { # name fallocate-args...
  local name=$1; shift
  if bash -c 'trap "" XFSZ; ulimit -f 102400; exec fallocate "$@"' bash "$@" 2>/tmp/falloc.err; then
    fail "$name" "fallocate $* succeeded past the limit"
  elif grep -q "File too large" /tmp/falloc.err; then pass "$name"; else fail "$name" "$(cat /tmp/falloc.err)"; fi
}
check_efbig fallocate-past-rlimit-efbig -l 101M "$MNT/limited"
check fallocate-past-rlimit-grows-nothing test "$(stat -c %s "$MNT/limited")" = 0
check_efbig fallocate-offset-past-rlimit-efbig -o 100M -l 1M "$MNT/limited"
check fallocate-within-rlimit bash -c "ulimit -f 102400; fallocate -l 100M $MNT/limited && test \$(stat -c %s $MNT/limited) = 104857600"
check fallocate-keep-size-past-rlimit bash -c "ulimit -f 102400; fallocate -n -o 100M -l 1M $MNT/limited && test \$(stat -c %s $MNT/limited) = 104857600"
rm -f "$MNT/limited"
# A sequential write is one extent as FIEMAP stores it (no merging of
# adjacent ones here, unlike filefrag's count), even with syncs running
# writeback of it beside the flusher and its own fsync.
( for i in $(seq 20); do sync; sleep 0.2; done ) &
syncer=$!
dd if=/dev/zero of="$MNT/seq" bs=1M count=256 conv=fsync status=none
wait "$syncer"
seq_extents=$(python3 - "$MNT/seq" <<'PY'
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
req = bytearray(struct.pack("=QQIIII", 0, (1 << 64) - 1, 1, 0, 0, 0))
fcntl.ioctl(fd, 0xC020660B, req)
print(struct.unpack_from("=QQIIII", req)[3])
PY
)
check seq-write-one-extent test "$seq_extents" = 1
rm -f "$MNT/seq"
check ext-umount umount "$MNT"
check ext-fsck fsck.ferrofs -n "$DEV1"

mount -t ferrofs "$DEV1" "$MNT"
echo keep > "$MNT/keep"
head -c 3000000 /dev/urandom > /tmp/dirty
cp /tmp/dirty "$MNT/dirty"
check remount-ro mount -o remount,ro "$MNT"
check ro-in-proc-mounts grep -q "^$DEV1 $MNT ferrofs ro" /proc/mounts
writes=$(awk '{print $5}' /sys/block/vdb/stat)
check ro-refuses-create sh -c "! touch $MNT/x 2>/tmp/err && grep -q 'Read-only' /tmp/err"
check ro-reads test "$(cat "$MNT/keep")" = keep
sleep 6
check ro-writes-nothing test "$(awk '{print $5}' /sys/block/vdb/stat)" = "$writes"
check remount-rw mount -o remount,rw "$MNT"
check rw-writes sh -c "echo more >> $MNT/keep && test \"\$(cat $MNT/keep)\" = 'keep
more'"
check rw-umount umount "$MNT"
check rw-fsck fsck.ferrofs -n "$DEV1"
mount -t ferrofs "$DEV1" "$MNT"
check ro-remount-had-committed cmp /tmp/dirty "$MNT/dirty"
umount "$MNT"
