# `ferrofs receive` against Linux's btrfs send, the compatibility proof:
# a btrfs tree with data, holes, a reflinked copy, xattrs, symlinks, hard
# links, a FIFO, device nodes, modes, owners and times is snapshotted, sent
# full and then incrementally after renames, deletes, new files, a
# directory moved under its sibling, an overwrite, a punched hole, a shrink
# and a name swap; each stream is received onto ext4 (and tmpfs and
# ferrofs) and the result compared with the btrfs snapshot
# (tests/vm/treecmp.py), in protocol versions 1 and 2, as one
# concatenated input and as btrfs send -e writes two subvolumes.
# Streams from ferrofs send are received and compared the same way, also
# after an interrupted transfer resumed with send --resume.
# `ferrofs receive --dump` must print what `btrfs receive --dump` prints for
# the same stream.
. "$(dirname "$0")/lib.sh"
EXT=/tmp/t70-ext4
S=$EXT/streams
compare() { # tree tree: no differences (printed if any); atimes too
  python3 "$FERROFS_ROOT/tests/vm/treecmp.py" --atime --all-dirs "$1" "$2"
}
compare_both() { # dir: DIR/snap1 and DIR/snap2 are the two btrfs snapshots
  compare "$MNT/snap1" "$1/snap1" && compare "$MNT/snap2" "$1/snap2"
}
dump_same() { # stream: both tools print the same lines
  local want got
  want=$(btrfs receive --dump -f "$1" 2>&1) || return 1
  got=$(ferrofs receive --dump --dump-format "$dump_format" -f "$1" 2>&1) || return 1
  [ "$want" = "$got" ] || { diff <(echo "$want") <(echo "$got") | head -20; return 1; }
}

command -v btrfs >/dev/null && command -v mkfs.btrfs >/dev/null || { fail receive-btrfs-progs "btrfs-progs missing in the guest"; exit 0; }
# btrfs-progs 6.10 changed how --dump prints xattrs and clone sources.
v=$(btrfs --version | sed -n 's/^btrfs-progs v\([0-9.]*\).*/\1/p')
if [ "$(printf '%s\n6.10\n' "$v" | sort -V | head -1)" = 6.10 ]; then dump_format=current; else dump_format=progs-6.2; fi

mkfs.btrfs -q -f "$DEV1" >/dev/null && mount -o noatime "$DEV1" "$MNT" || { fail receive-btrfs-mount; exit 0; }
mkdir -p "$EXT"
mkfs.ext4 -q -F "$DEV2" && mount -o noatime "$DEV2" "$EXT" || { fail receive-ext4-mount; umount "$MNT"; exit 0; }
mkdir -p "$S" "$EXT"/r1 "$EXT"/r2 "$EXT"/r3 "$EXT"/r5 "$EXT"/r6
cd / || exit 0

# The first tree.
btrfs -q subvolume create "$MNT/vol" >/dev/null
(
  set -e
  cd "$MNT/vol"
  printf 'hello\n' > small
  head -c 200000 /dev/urandom > big                 # several WRITEs
  : > empty
  truncate -s 1M sparse                             # holes around data
  printf A | dd of=sparse bs=1 seek=4096 conv=notrunc status=none
  printf B | dd of=sparse bs=1 seek=700000 conv=notrunc status=none
  cp --reflink=always big big.clone                 # CLONE commands
  mkdir -p dir/sub deep/a/b/c
  printf x > 'dir/name with spaces'
  printf u > dir/ünïcode
  ln -s ../small dir/rel-link
  ln -s /etc/passwd abs-link
  ln -s nowhere dangling
  ln small dir/hard1
  ln small deep/a/hard2
  mkfifo fifo
  mknod chardev c 1 3
  mknod blockdev b 7 200
  setfattr -n user.text -v hello small
  setfattr -n user.bin -v 0x00ff10 big
  setfattr -n user.dir -v d dir
  chmod 4755 big; chmod 1777 dir/sub; chmod 0444 empty; chmod 0600 fifo
  chown 1234:5678 small; chown -h 42:43 dir/rel-link; chown 7:8 dir
  touch -d '2020-02-02 02:02:02.123456789' empty
  touch -h -d '2019-01-01 00:00:01' dir/rel-link
  touch -d '2001-01-01' deep/a/b/c dir/sub
)
check receive-populate test -f "$MNT/vol/big.clone"
btrfs -q subvolume snapshot -r "$MNT/vol" "$MNT/snap1" >/dev/null

# The changes for the incremental stream.
(
  set -e
  cd "$MNT/vol"
  mv dir deep/dir                                   # under its sibling
  mv deep/dir/sub moved-sub
  rm deep/a/hard2 fifo
  rmdir deep/a/b/c
  echo new > newfile
  mkdir newdir; echo n > newdir/inner
  dd if=/dev/urandom of=big bs=4096 seek=10 count=3 conv=notrunc status=none
  fallocate -p -o 8192 -l 8192 big                  # v2: FALLOCATE punch
  truncate -s 1000 sparse
  printf appended >> small
  mv small renamed-small
  setfattr -n user.text -v changed renamed-small
  setfattr -x user.bin big
  chmod 0640 empty; chown 99:98 empty
  rm abs-link; mkdir abs-link                       # a name reused
  mv renamed-small swap; mv empty renamed-small; mv swap empty
  ln deep/dir/hard1 newdir/hard3
  touch -d '2022-03-03 03:03:03' newdir/inner
)
check receive-changes test -d "$MNT/vol/moved-sub"
btrfs -q subvolume snapshot -r "$MNT/vol" "$MNT/snap2" >/dev/null

# Version 1: full, then incremental on top of what was received.
btrfs send -q -f "$S/full.v1" "$MNT/snap1" && btrfs send -q -p "$MNT/snap1" -f "$S/incr.v1" "$MNT/snap2"
check receive-v1-send test -s "$S/incr.v1"
check receive-v1-has-clones sh -c "btrfs receive --dump -f $S/full.v1 | grep -q '^clone '"
check receive-v1-full ferrofs receive -f "$S/full.v1" "$EXT/r1"
check receive-v1-full-tree compare "$MNT/snap1" "$EXT/r1/snap1"
check receive-v1-incremental sh -c "ferrofs receive $EXT/r1 < $S/incr.v1"
check receive-v1-incremental-tree compare "$MNT/snap2" "$EXT/r1/snap2"
check receive-v1-parent-untouched compare "$MNT/snap1" "$EXT/r1/snap1"
# The comparer sees differences where there are some.
check receive-compare-can-fail sh -c "! python3 $FERROFS_ROOT/tests/vm/treecmp.py --atime --all-dirs $MNT/snap1 $EXT/r1/snap2 >/dev/null"
check receive-dump-is-not-empty test "$(btrfs receive --dump -f "$S/full.v1" | wc -l)" -gt 40
uuid1=$(btrfs subvolume show "$MNT/snap1" | sed -n 's/^[[:space:]]*UUID:[[:space:]]*//p')
uuid2=$(btrfs subvolume show "$MNT/snap2" | sed -n 's/^[[:space:]]*UUID:[[:space:]]*//p')
check receive-map-records-both sh -c "grep -q '^$uuid1 [0-9]* snap1\$' $EXT/r1/.ferrofs-received && grep -q '^$uuid2 [0-9]* snap2\$' $EXT/r1/.ferrofs-received"
# Onto btrfs itself (a plain directory: not ferrofs): CLONE takes
# FICLONERANGE, so the received copy shares its extents; on ext4 it was
# copied, and shares nothing (the check can fail).
shared() { filefrag -v "$1" 2>/dev/null | grep -q shared; }
mkdir -p "$MNT/onbtrfs"
check receive-onto-btrfs ferrofs receive -f "$S/full.v1" "$MNT/onbtrfs"
check receive-onto-btrfs-tree compare "$MNT/snap1" "$MNT/onbtrfs/snap1"
sync
check receive-clone-shares-extents shared "$MNT/onbtrfs/snap1/big.clone"
check receive-clone-copied-on-ext4 sh -c "! filefrag -v $EXT/r1/snap1/big.clone | grep -q shared"
check receive-snapshot-onto-btrfs ferrofs receive -f "$S/incr.v1" "$MNT/onbtrfs"
check receive-snapshot-onto-btrfs-tree compare "$MNT/snap2" "$MNT/onbtrfs/snap2"
sync
check receive-snapshot-copy-shares-extents shared "$MNT/onbtrfs/snap2/big.clone"
check receive-dump-full-v1 dump_same "$S/full.v1"
check receive-dump-incremental-v1 dump_same "$S/incr.v1"

# Version 2 (FALLOCATE for holes; no compressed data).
if btrfs send -q --proto 2 -f "$S/full.v2" "$MNT/snap1" 2>/dev/null &&
  btrfs send -q --proto 2 -p "$MNT/snap1" -f "$S/incr.v2" "$MNT/snap2"; then
  check receive-v2-is-v2 test "$(head -c 17 "$S/full.v2" | od -An -tu1 -j13 -N1 | tr -d ' ')" = 2
  check receive-v2-has-fallocate sh -c "ferrofs receive --dump -f $S/incr.v2 | grep -q '^fallocate '"
  check receive-v2-full ferrofs receive -f "$S/full.v2" "$EXT/r2"
  check receive-v2-full-tree compare "$MNT/snap1" "$EXT/r2/snap1"
  check receive-v2-incremental ferrofs receive -f "$S/incr.v2" "$EXT/r2"
  check receive-v2-incremental-tree compare "$MNT/snap2" "$EXT/r2/snap2"
  check receive-dump-full-v2 dump_same "$S/full.v2"
  check receive-dump-incremental-v2 dump_same "$S/incr.v2"
else
  echo "SKIP receive-v2 (btrfs send --proto 2 not supported here)"
fi

# Two streams in one input, as `cat full incr` (or `btrfs send A B`) gives.
cat "$S/full.v1" "$S/incr.v1" > "$S/both.v1"
check receive-concatenated ferrofs receive -f "$S/both.v1" "$EXT/r3"
check receive-concatenated-trees compare_both "$EXT/r3"

# btrfs send -e: one stream holding both subvolumes, one END at the end.
btrfs send -q -e -f "$S/multi-e.v1" "$MNT/snap1" "$MNT/snap2" 2>/dev/null
check receive-one-stream-two-subvolumes test "$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().count(b"btrfs-stream\0"))' "$S/multi-e.v1")" = 1
check receive-one-stream-two-subvolumes-apply ferrofs receive -f "$S/multi-e.v1" "$EXT/r6"
check receive-one-stream-two-subvolumes-trees compare_both "$EXT/r6"

# The same streams onto tmpfs and onto ferrofs (an image on the ext4 disk,
# through a loop device): any filesystem with xattrs and device nodes.
TMPFS=/tmp/t70-tmpfs FERRO=/tmp/t70-ferrofs
mkdir -p "$TMPFS" "$FERRO"
if mount -t tmpfs -o size=256M,noatime none "$TMPFS"; then
  mkdir "$TMPFS/r"
  check receive-tmpfs sh -c "ferrofs receive -f $S/full.v1 $TMPFS/r && ferrofs receive -f $S/incr.v2 $TMPFS/r"
  check receive-tmpfs-trees compare_both "$TMPFS/r"
  umount "$TMPFS"
else
  fail receive-tmpfs-mount
fi
truncate -s 1G "$EXT/ferrofs.img"
mkfs.ferrofs -q -f "$EXT/ferrofs.img"
loop=$(losetup -f --show "$EXT/ferrofs.img")
if mount -t ferrofs -o noatime "$loop" "$FERRO"; then
  mkdir "$FERRO/r"
  check receive-ferrofs sh -c "ferrofs receive -f $S/full.v1 $FERRO/r && ferrofs receive -f $S/incr.v1 $FERRO/r"
  check receive-ferrofs-trees compare_both "$FERRO/r"
  # On ferrofs the received copies are real subvolumes, read-only, marked
  # with the sender's UUID; the incremental one a snapshot of the first.
  received_subvol() { # path: a read-only subvolume with a received UUID
    ferrofs subvolume show --json "$1" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["readonly"] is True and s["received_uuid"] and s["stransid"] > 0, s'
  }
  check receive-ferrofs-real-subvolumes sh -c "$(declare -f received_subvol); received_subvol $FERRO/r/snap1 && received_subvol $FERRO/r/snap2"
  check receive-ferrofs-incremental-is-snapshot sh -c "test \"\$(ferrofs subvolume show --json $FERRO/r/snap2 | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"parent_uuid\"])')\" = \"\$(ferrofs subvolume show --json $FERRO/r/snap1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"uuid\"])')\""

  # ferrofs send to ferrofs receive: a ferrofs subvolume sent full and
  # incrementally (v1, then v2), received onto ext4.
  (
    set -e
    ferrofs subvolume create "$FERRO/src" >/dev/null
    cd "$FERRO/src"
    mkdir -p a/b
    head -c 150000 /dev/urandom > a/big
    ln a/big a/b/link
    ln -s ../big a/b/sym
    mkfifo fifo
    mknod null c 1 3
    setfattr -n user.k -v v a/big
    chown 5:6 a/b; chmod 0711 a/b
    truncate -s 4M sparse; printf z | dd of=sparse bs=1 seek=3000000 conv=notrunc status=none
    touch -d '2011-11-11 11:11:11.5' a/big
  )
  ferrofs subvolume snapshot -r "$FERRO/src" "$FERRO/f1" >/dev/null
  (
    set -e
    cd "$FERRO/src"
    mv a/b b-up; rm fifo; echo more >> a/big; mkdir a/new; echo n > a/new/f
    setfattr -x user.k a/big; truncate -s 1000 sparse
  )
  ferrofs subvolume snapshot -r "$FERRO/src" "$FERRO/f2" >/dev/null
  mkdir "$EXT/r7"
  check receive-from-ferrofs-send sh -c "ferrofs send -q $FERRO/f1 | ferrofs receive $EXT/r7 && ferrofs send -q --proto 2 -p $FERRO/f1 $FERRO/f2 | ferrofs receive $EXT/r7"
  check receive-from-ferrofs-send-full-tree compare "$FERRO/f1" "$EXT/r7/f1"
  check receive-from-ferrofs-send-incremental-tree compare "$FERRO/f2" "$EXT/r7/f2"
  ferrofs send -q -f "$S/ferrofs.v1" "$FERRO/f1" && ferrofs send -q --proto 2 -p "$FERRO/f1" -f "$S/ferrofs-incr.v2" "$FERRO/f2"
  check receive-dump-ferrofs-send-v1 dump_same "$S/ferrofs.v1"
  check receive-dump-ferrofs-send-v2 dump_same "$S/ferrofs-incr.v2"
  # An interrupted transfer: the stream cut short, the partial kept with
  # its resume token, the rest sent by send --resume.
  mkdir "$EXT/r8"
  head -c "$(($(stat -c %s "$S/ferrofs.v1") / 2))" "$S/ferrofs.v1" > "$S/ferrofs.cut"
  check receive-broken-off-token sh -c "! ferrofs receive --keep-partial -f $S/ferrofs.cut $EXT/r8 2>$EXT/r8.err && grep -q '^resume token: ' $EXT/r8.err && test -d $EXT/r8/f1.partial"
  token=$(sed -n 's/^resume token: //p' "$EXT/r8.err")
  check receive-token-printed-again sh -c "test \"\$(ferrofs receive --token $EXT/r8/f1.partial)\" = '$token'"
  check receive-token-refuses-plain-dir sh -c "! ferrofs receive --token $EXT/r8 2>/dev/null"
  check receive-resumed sh -c "ferrofs send -q --resume '$token' $FERRO/f1 | ferrofs receive $EXT/r8 && test ! -e $EXT/r8/f1.partial"
  check receive-resumed-tree compare "$FERRO/f1" "$EXT/r8/f1"
  umount "$FERRO"
  check receive-ferrofs-fsck fsck.ferrofs -n "$loop"
else
  fail receive-ferrofs-mount
fi
losetup -d "$loop"

# An incremental stream whose parent was never received is refused and
# leaves nothing behind.
check receive-no-parent sh -c "! ferrofs receive -f $S/incr.v1 $EXT/r5 2>$EXT/r5.err && grep -q 'cannot find parent subvolume' $EXT/r5.err && test -z \"\$(ls -A $EXT/r5)\""

cd /
umount "$EXT"
umount "$MNT"
