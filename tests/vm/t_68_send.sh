# ferrofs send, end to end: the streams of a full and of incremental sends
# (versions 1 and 2) are accepted by btrfs receive, and the snapshots it
# rebuilds on btrfs are the ones sent (treecmp.py: names, hard links,
# data, holes, xattrs, owners, modes, times, special files), also with a
# clone source (CLONE commands); an incremental send of many changed
# files from cold caches reads in batches (fewer device reads than changed
# files); the ioctl's
# refusals, EINTR and writers going on during a send (send_calls.py);
# fsck is clean afterwards.
. "$(dirname "$0")/lib.sh"
BTR=/tmp/btr
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail send-mount; exit 0; }
mkfs.btrfs -q -f "$DEV2" >/dev/null && mkdir -p $BTR && mount "$DEV2" $BTR || { fail send-btrfs-mount; exit 0; }

# Every kind of inode and attribute.
cd "$MNT"
mkdir -p a/b/c d e sticky
chmod 1777 sticky
head -c 300000 /dev/urandom >a/big
head -c 5000 /dev/urandom >a/b/small
# Data of several pieces (each read ahead while the last is sent), and a
# file whose hole cuts a piece short (its read ahead is dropped).
head -c 5000000 /dev/urandom >a/large
head -c 4000000 /dev/urandom >a/holed
fallocate -p -o 1040384 -l 1052672 a/holed
: >empty
truncate -s 10M sparse
dd if=/dev/urandom of=sparse bs=4096 seek=100 count=3 conv=notrunc status=none
dd if=/dev/urandom of=sparse bs=1000 seek=7000 count=1 conv=notrunc status=none
ln a/big d/big-link
ln a/big e/big-link2
ln -s ../a/big d/sym
ln -s /nowhere/at/all dangling
mkfifo d/fifo
mknod d/null c 1 3
mknod d/blk b 7 200
python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind("d/sock")'
chown 1234:5678 a/b/small d/fifo
chown -h 42:43 d/sym
chmod 4755 a/big
chmod 0600 a/b/small
python3 -c '
import os
os.setxattr("a/big", "user.one", b"1")
os.setxattr("a/b", "user.dir", os.urandom(3000))
os.setxattr("empty", "user.empty", b"")'
touch -h -d "2001-02-03 04:05:06.123456789" d/sym
touch -d "1999-12-31 23:59:59.5" a/b/small a/b
cd /
ferrofs subvolume snapshot -r "$MNT" "$MNT/s1" >/dev/null
check send-full-cli ferrofs send -q -f /tmp/s1.stream "$MNT/s1"
check send-full-btrfs-dump sh -c 'btrfs receive --dump -f /tmp/s1.stream >/tmp/s1.dump'
check send-full-btrfs-receive sh -c "btrfs receive -f /tmp/s1.stream $BTR >/tmp/recv.out 2>&1"
check send-full-same-tree python3 "$FERROFS_ROOT/tests/vm/treecmp.py" "$MNT/s1" "$BTR/s1"

# The changes incremental send must get right.
cd "$MNT"
mv a/b/c c-top                     # a directory up
mv d a/b/c-child                    # a directory down, under a moved one's sibling
mv a/big x && mv e/big-link2 a/big && mv x e/renamed   # names swapped among links
rm a/b/c-child/big-link             # one link less
ln e/renamed new-link               # one more
rm -r sticky                        # a deleted directory
mkdir sticky && echo reused >sticky/file   # its name reused
echo changed | dd of=a/b/small bs=1 seek=100 conv=notrunc status=none
truncate -s 1000 a/b/small
fallocate -p -o 400000 -l 16384 sparse
truncate -s 20M sparse
head -c 100000 /dev/urandom >new-file
python3 -c '
import os
os.setxattr("e/renamed", "user.one", b"changed")
os.removexattr("a/b", "user.dir")
os.setxattr("new-file", "user.new", b"x" * 100)'
chmod 0640 e/renamed
chown 7:8 c-top
touch -d "2010-01-01 00:00:00" c-top
cd /
ferrofs subvolume snapshot -r "$MNT" "$MNT/s2" >/dev/null
check send-incremental-btrfs-receive sh -c "ferrofs send -q -p $MNT/s1 $MNT/s2 | btrfs receive $BTR >>/tmp/recv.out 2>&1"
check send-incremental-same-tree python3 "$FERROFS_ROOT/tests/vm/treecmp.py" "$MNT/s2" "$BTR/s2"

# Version 2 (holes as fallocate), into a second directory.
mkdir -p $BTR/v2
check send-v2-full sh -c "ferrofs send -q --proto 2 $MNT/s1 | btrfs receive $BTR/v2 >>/tmp/recv.out 2>&1"
check send-v2-incremental sh -c "ferrofs send -q --proto 2 -p $MNT/s1 $MNT/s2 | btrfs receive $BTR/v2 >>/tmp/recv.out 2>&1"
check send-v2-same-tree python3 "$FERROFS_ROOT/tests/vm/treecmp.py" "$MNT/s2" "$BTR/v2/s2"
# A full send naming s1 as a clone source: what s2 shares with s1 goes as
# CLONE, which btrfs receive takes from its copy of s1.
mkdir -p $BTR/c
check send-clone-source-stream sh -c "ferrofs send -q -c $MNT/s1 -f /tmp/c.stream $MNT/s2 && btrfs receive --dump -f /tmp/c.stream | grep -q '^clone'"
check send-clone-source-receive sh -c "btrfs receive -f /tmp/c.stream $BTR/c >>/tmp/recv.out 2>&1"
check send-clone-source-same-tree python3 "$FERROFS_ROOT/tests/vm/treecmp.py" "$MNT/s2" "$BTR/c/s2"
check send-no-data-dump sh -c "ferrofs send -q --no-data $MNT/s1 | btrfs receive --dump | grep -q '^update_extent'"
[ -s /tmp/recv.out ] && sed 's/^/  btrfs receive: /' /tmp/recv.out | head -20

# An incremental send over trees of several levels, from cold caches: the
# diff reads the nodes it enters in batches and the content pass the
# changed files' data, so the device sees fewer reads than changed files
# (one read each, and more for the nodes, without the batches).
ferrofs subvolume create "$MNT/many" >/dev/null
python3 - "$MNT/many" 1 <<'PY'
import os, sys
top, salt = sys.argv[1], int(sys.argv[2])
for i in range(3000):
    d = os.path.join(top, f"d{i // 1000}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05}"), "wb") as f:
        f.write(bytes([salt + i % 7]) * 2000)
PY
ferrofs subvolume snapshot -r "$MNT/many" "$MNT/m1" >/dev/null
python3 - "$MNT/many" <<'PY'
import os, sys
for i in range(0, 3000, 2):
    with open(os.path.join(sys.argv[1], f"d{i // 1000}", f"f{i:05}"), "wb") as f:
        f.write(bytes([200 + i % 7]) * 2000)
PY
ferrofs subvolume snapshot -r "$MNT/many" "$MNT/m2" >/dev/null
mkdir -p $BTR/m
check send-many-full sh -c "ferrofs send -q $MNT/m1 | btrfs receive $BTR/m >>/tmp/recv.out 2>&1"
umount "$MNT" && mount -t ferrofs "$DEV1" "$MNT" || fail send-many-remount
stat_file=/sys/block/$(basename "$DEV1")/stat
reads_before=$(awk '{print $1}' "$stat_file")
check send-many-incremental ferrofs send -q -p "$MNT/m1" -f /tmp/m.stream "$MNT/m2"
reads=$(($(awk '{print $1}' "$stat_file") - reads_before))
echo "  incremental send of 1500 changed files of 3000: $reads device reads"
check send-many-reads-fewer-than-changed-files test "$reads" -lt 1500
check send-many-receive sh -c "btrfs receive -f /tmp/m.stream $BTR/m >>/tmp/recv.out 2>&1"
check send-many-same-tree python3 "$FERROFS_ROOT/tests/vm/treecmp.py" "$MNT/m2" "$BTR/m/m2"

# The CLI's refusals.
check send-cli-refuses-writable sh -c "! ferrofs send -q -f /tmp/x $MNT 2>/tmp/err && grep -q 'not read-only' /tmp/err"
check send-cli-refuses-parent-is-source sh -c "! ferrofs send -q -p $MNT/s1 -f /tmp/x $MNT/s1 2>/tmp/err && grep -q \"Invalid argument\" /tmp/err"

# The ioctl itself.
ferrofs subvolume create "$MNT/rx" >/dev/null
python3 "$FERROFS_ROOT/tests/vm/send_calls.py" "$MNT" "$MNT/s1" "$MNT/s2" "$MNT/rx"
check send-calls-stream-parses sh -c 'btrfs receive --dump -f /tmp/send-calls.stream >/dev/null'
check send-snapshot-deletable-after ferrofs subvolume delete "$MNT/s1"

umount $BTR
umount "$MNT"
check send-fsck-clean fsck.ferrofs -n "$DEV1"
