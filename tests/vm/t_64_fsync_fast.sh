# fsync through a fast-commit record in the kernel: one device flush per
# fsync of a file that only gained data or changed attributes since the
# last commit; what it made durable survives a shutdown that writes nothing
# more (xfs_io shutdown, no log flush) and is replayed at the next mount;
# what was written after it is gone; fsync of a new name in a directory
# that lost one (the directory's records logged along) and of a directory
# (tree-log records) work too; fsck is clean after the replay.
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1" 1G
# No background commit during the test: only fsync makes anything durable.
mount -t ferrofs -o commit=86400 "$DEV1" "$MNT" || { fail fc-mount; exit 0; }
head -c 10000 /dev/urandom > "$MNT/log"
mkdir "$MNT/dir"
echo old > "$MNT/dir/old"
echo old2 > "$MNT/dir/old2"
sync
cp "$MNT/log" /tmp/log.want
for i in 1 2 3; do
  head -c 4096 /dev/urandom > /tmp/chunk
  cat /tmp/chunk >> "$MNT/log" && cat /tmp/chunk >> /tmp/log.want
  check_is_flushes=$(fsync_flushes "$MNT/log")
  check "append-fsync-$i-one-flush" test "$check_is_flushes" = 1
done
chmod 600 "$MNT/log"
check chmod-fsync-one-flush test "$(fsync_flushes "$MNT/log")" = 1
# A new file in a directory of the last commit: its name goes in the
# record too, one flush.
head -c 5000 /dev/urandom > "$MNT/dir/made"
cp "$MNT/dir/made" /tmp/made.want
check create-fsync-one-flush test "$(fsync_flushes "$MNT/dir/made")" = 1
# A new file beside a removal no record holds: a record of it alone would
# bring the removed file back beside it after a crash, so the directory's
# records go first, with the same one flush (counted as a related
# directory logged along).
rm "$MNT/dir/old"
echo beside > "$MNT/dir/beside"
along=$(grep '^tree_log_related_dirs ' /sys/fs/ferrofs/"$(basename "$DEV1")"/fsync_stats | cut -d' ' -f2)
check related-fsync-one-flush test "$(fsync_flushes "$MNT/dir/beside")" = 1
check related-dir-logged-along test "$(grep '^tree_log_related_dirs ' /sys/fs/ferrofs/"$(basename "$DEV1")"/fsync_stats | cut -d' ' -f2)" = $((along + 1))
# Once the directory's fsync made a removal durable (a tree-log record, one
# flush), a new file in that directory is a tree-log record of its own
# (one flush).
rm "$MNT/dir/old2"
check dir-fsync-removal-one-flush test "$(fsync_flushes "$MNT/dir")" = 1
echo new > "$MNT/dir/new"
check new-file-fsync-one-flush test "$(fsync_flushes "$MNT/dir/new")" = 1
python3 -c 'import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDONLY))' "$MNT/dir"
# Written after the last fsync and the last commit: not durable, and no
# record holds it. (Before a full commit it could be: the commit takes what
# writeback has handed to the core by then.)
echo unsynced >> "$MNT/log"
check shutdown-without-flush xfs_io -x -c shutdown "$MNT"
umount "$MNT"
mark_dmesg
mount -t ferrofs "$DEV1" "$MNT" || { fail fc-remount; exit 0; }
check replayed-data cmp "$MNT/log" /tmp/log.want
check replayed-mode test "$(stat -c %a "$MNT/log")" = 600
check new-name-durable test "$(cat "$MNT/dir/new")" = new
check removal-durable test ! -e "$MNT/dir/old" -a ! -e "$MNT/dir/old2"
check related-file-durable test "$(cat "$MNT/dir/beside")" = beside
check created-file-replayed cmp "$MNT/dir/made" /tmp/made.want
umount "$MNT"
check fsck-after-replay fsck.ferrofs -n "$DEV1"
mount -t ferrofs "$DEV1" "$MNT"
check still-there-after-second-mount cmp "$MNT/log" /tmp/log.want
umount "$MNT"
# mkfs without the area: every fsync is a full commit, and still durable.
mkfs.ferrofs -q -f --fast-commit-blocks 0 "$DEV1" 1G
mount -t ferrofs -o commit=86400 "$DEV1" "$MNT"
echo a > "$MNT/f" && sync && echo b >> "$MNT/f"
check no-area-fsync-full-commit test "$(fsync_flushes "$MNT/f")" = 2
xfs_io -x -c shutdown "$MNT"
umount "$MNT"
mount -t ferrofs "$DEV1" "$MNT"
check no-area-fsync-durable test "$(cat "$MNT/f")" = "a
b"
umount "$MNT"
