# The metadata node cache: sized from RAM, a directory of 20,000 files
# stays cached, so creating and unlinking that many more names reads
# nothing from the device; drop_caches (which runs every shrinker) takes
# the cached nodes back, so the next lookups read again; reclaim running
# beside a workload that holds the core lock neither blocks nor loses a
# change (fsck clean, lockdep quiet).
. "$(dirname "$0")/lib.sh"
reads() { awk '{print $1}' /sys/block/vdb/stat; }
N=20000

mkfs.ferrofs -q -f "$DEV1" 1G
mount -t ferrofs "$DEV1" "$MNT" || { fail cache-mount; exit 0; }
mkdir "$MNT/d"
# create ... / unlink ...: N names each, made or removed in one process.
names() {
  python3 - "$MNT/d" "$@" <<'PY'
import os, sys
d, op, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for i in range(n):
    p = os.path.join(d, "%s-%08d" % (prefix, i))
    if op == "create":
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    elif op == "unlink":
        os.unlink(p)
    else:
        os.stat(p)
PY
}
names create a "$N"
sync
before=$(reads)
# Every name below is new to the dentry cache, so each create and unlink
# reaches the core's directory tree.
names create b "$N"
names unlink a "$N"
sync
after=$(reads)
check warm-cache-reads-nothing test "$after" = "$before"

# drop_caches runs the shrinkers: dentries and inodes go, and so do the
# clean nodes, so looking the names up again reads the directory back.
echo 2 > /proc/sys/vm/drop_caches
before=$(reads)
names stat b "$N"
after=$(reads)
check dropped-cache-reads-again test "$after" -gt "$before"

# Reclaim while the core is busy: the shrinker only try-locks the core.
( for i in $(seq 30); do echo 2 > /proc/sys/vm/drop_caches; sleep 0.1; done ) &
reclaim=$!
names create c 3000
names unlink b 5000
wait "$reclaim"
left=$((N - 5000 + 3000))
check reclaim-during-work-keeps-names test "$(ls "$MNT/d" | wc -l)" = "$left"
umount "$MNT"
check reclaim-fsck-clean fsck.ferrofs -n "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" && check reclaim-remount-names test "$(ls "$MNT/d" | wc -l)" = "$left"
umount "$MNT"
