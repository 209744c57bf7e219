# Power failure with dm-flakey: after fsync returns, the file's data and
# name survive losing every later write; unsynced work is lost (no commit
# ran) and the filesystem stays consistent (fsck clean) and mountable.
. "$(dirname "$0")/lib.sh"
FLAKEY=/dev/mapper/ferrofs-flakey
fsync_file() { python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"; }

dmsetup create ferrofs-flakey --table "$(flakey_table up)" || { fail flakey-create; exit 0; }
mkfs.ferrofs -q -f "$FLAKEY"
# The longest commit interval the option takes (a day): no background
# commit runs during the fsync checks, so only fsync can have made their
# data durable before the writes are dropped (with the default 5 s, a
# commit could, and an fsync that did nothing would pass).
mount -t ferrofs -o commit=86400 "$FLAKEY" "$MNT" || { fail flakey-mount; dmsetup remove ferrofs-flakey; exit 0; }
check fsync-mount-commit-86400 grep -q " $MNT ferrofs [^ ]*commit=86400" /proc/mounts

# What is made durable by fsync.
mkdir "$MNT/dir"
head -c 200000 /dev/urandom > /tmp/synced
cp /tmp/synced "$MNT/dir/synced"
fsync_file "$MNT/dir/synced"
echo before > "$MNT/renamed-src"
fsync_file "$MNT/renamed-src"
mv "$MNT/renamed-src" "$MNT/renamed-dst"
fsync_file "$MNT/renamed-dst"
check dir-fsync fsync_file "$MNT"
head -c 100000 /dev/urandom > "$MNT/truncated"
truncate -s 4000 "$MNT/truncated"
fsync_file "$MNT/truncated"
head -c 4000 "$MNT/truncated" > /tmp/truncated
# After the last full commit (the directory fsync and the truncate's), an
# append fsynced through a fast-commit record alone: the full commits
# above cannot stand in for it.
# The directory is named by the super_block's s_id, dm-<minor>.
stats=/sys/fs/ferrofs/dm-$(dmsetup info -c --noheadings -o minor ferrofs-flakey | tr -d ' ')/fsync_stats
fc0=$(awk '$1 == "fsync_fast_commit" { print $2 }' "$stats")
head -c 8192 /dev/urandom >> "$MNT/dir/synced"
fsync_file "$MNT/dir/synced"
check append-fsync-was-fast-commit test "$(awk '$1 == "fsync_fast_commit" { print $2 }' "$stats")" = $((fc0 + 1))
cp "$MNT/dir/synced" /tmp/synced

# What is not: the device drops every write from here on.
echo lost > "$MNT/unsynced"
flakey drop
echo also-lost > "$MNT/dir/after-drop"
umount "$MNT"
flakey up

check powerfail-fsck-clean fsck.ferrofs -n "$FLAKEY"
check powerfail-remount mount -t ferrofs "$FLAKEY" "$MNT"
check fsynced-data-survives cmp /tmp/synced "$MNT/dir/synced"
check fsynced-rename-survives sh -c "test -e $MNT/renamed-dst && ! test -e $MNT/renamed-src && test \"\$(cat $MNT/renamed-dst)\" = before"
check fsynced-truncate-survives sh -c "test \$(stat -c %s $MNT/truncated) = 4000 && cmp /tmp/truncated $MNT/truncated"
check dropped-write-not-visible sh -c "! test -e $MNT/dir/after-drop"
# Nothing committed the name made after the last fsync: the drop really
# loses what was not synced (otherwise the checks above prove nothing).
check unsynced-write-lost sh -c "! test -e $MNT/unsynced"
umount "$MNT"
check powerfail-fsck-clean-after-remount fsck.ferrofs -n "$FLAKEY"
dmsetup remove ferrofs-flakey

# The background commit: with commit=1, a name made without any fsync is
# durable a few seconds later (8 s: room for a slow, loaded TCG guest).
dmsetup create ferrofs-flakey --table "$(flakey_table up)" || { fail flakey-create-2; exit 0; }
mount -t ferrofs -o commit=1 "$FLAKEY" "$MNT" || { fail bg-mount; dmsetup remove ferrofs-flakey; exit 0; }
mkdir "$MNT/bg-dir" && : > "$MNT/bg-dir/bg-file"
sleep 8
flakey drop
: > "$MNT/bg-dir/too-late"
umount "$MNT"
flakey up
mount -t ferrofs "$FLAKEY" "$MNT"
check bg-commit-survives test -e "$MNT/bg-dir/bg-file"
check bg-commit-later-lost sh -c "! test -e $MNT/bg-dir/too-late"
umount "$MNT"
check bg-fsck-clean fsck.ferrofs -n "$FLAKEY"
dmsetup remove ferrofs-flakey
