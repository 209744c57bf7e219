# fsync guarantees at every crash point, with dm-log-writes: a workload of
# fsync-family operations (create, append, overwrite + fdatasync, shrink,
# link, rename across directories and over a file, set/remove xattr,
# unlink + directory fsync, a new directory's file, fallocate KEEP_SIZE,
# punch, symlink + directory fsync, one file fsynced of three) runs on
# ferrofs over a log-writes target, marking the log after each step. The
# log is then replayed onto a blank device and checked after every flush,
# FUA write and mark (tests/vm/logwrites.py): at a mark, the tree is
# exactly as it was then; between two marks, as at the first or as at the
# second; fsck is clean at every point.
. "$(dirname "$0")/lib.sh"
LW=/dev/mapper/ferrofs-lw
REPLAY=/dev/mapper/ferrofs-replay
EXPECT=/tmp/t41-expect.json
PY="$FERROFS_ROOT/tests/vm/logwrites.py"
# 256 MiB of DEV1 is the filesystem; the blank 256 MiB at 1 GiB takes the
# replay. The whole of DEV2 is the log.
size=524288
cleanup() { umount "$MNT" 2>/dev/null; dmsetup remove ferrofs-lw 2>/dev/null; dmsetup remove ferrofs-replay 2>/dev/null; }

dd if=/dev/zero of="$DEV2" bs=1M count=1 status=none
dmsetup create ferrofs-lw --table "0 $size log-writes $DEV1 $DEV2" || { fail logwrites-create; exit 0; }
mkfs.ferrofs -q -f "$LW" && python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$LW" ||
  { fail logwrites-mkfs; cleanup; exit 0; }
dmsetup message ferrofs-lw 0 mark mkfs
# No background commit: only the workload's fsyncs make anything durable.
mount -t ferrofs -o commit=86400 "$LW" "$MNT" || { fail logwrites-mount; cleanup; exit 0; }
check logwrites-workload python3 "$PY" workload "$MNT" ferrofs-lw "$EXPECT"
umount "$MNT"
dmsetup remove ferrofs-lw || { fail logwrites-remove; cleanup; exit 0; }

dmsetup create ferrofs-replay --table "0 $size linear $DEV1 2097152" || { fail logwrites-replay-create; exit 0; }
python3 "$PY" verify "$DEV2" "$REPLAY" "$EXPECT" "$MNT" mkfs
# The checker can fail: a tree that lost the last step is not the last mark's.
check logwrites-check-can-fail env PYTHONPATH="$FERROFS_ROOT/tests/vm" python3 - "$EXPECT" "$REPLAY" "$MNT" <<'PYEOF'
import json, sys
import logwrites
e = json.load(open(sys.argv[1]))
# The replay device holds the final state; the second-last mark's tree differs.
why = logwrites.mount_and_compare(sys.argv[2], sys.argv[3], [e["marks"][-2]["tree"]], e["maybe"])
sys.exit(0 if why and why.startswith("tree differs") else 1)
PYEOF
dmsetup remove ferrofs-replay
