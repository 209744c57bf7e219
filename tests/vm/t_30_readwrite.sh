# Read-write use: namespace operations, file I/O, attributes, links and
# special files; everything survives unmount, passes fsck, and remounts.
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail rw-mount; exit 0; }
cd "$MNT" || exit 0

check mkdir mkdir -p a/b/c
check create-write sh -c 'echo hello > a/file'
check read-back test "$(cat a/file)" = hello
check append sh -c 'echo world >> a/file && test "$(cat a/file)" = "hello
world"'
check size test "$(stat -c %s a/file)" = 12
head -c 3000000 /dev/urandom > /tmp/big
check big-write cp /tmp/big a/big
check big-read cmp /tmp/big a/big
check sparse-write sh -c 'dd if=/dev/zero of=a/sparse bs=1 count=1 seek=10000000 status=none && test "$(stat -c %s a/sparse)" = 10000001'
check hole-reads-zero sh -c 'test "$(head -c 4096 a/sparse | tr -d "\0" | wc -c)" = 0'
check hardlink ln a/file a/hard
check nlink-2 test "$(stat -c %h a/file)" = 2
check symlink ln -s file a/sym
check readlink test "$(readlink a/sym)" = file
check read-via-symlink test "$(cat a/sym | head -1)" = hello
long=$(printf 'x%.0s' $(seq 1 4000))
check long-symlink sh -c "ln -s $long a/longsym && test \"\$(readlink a/longsym)\" = $long"
check mkfifo mkfifo a/fifo
check fifo-type test "$(stat -c %F a/fifo)" = fifo
check mknod-char mknod a/null c 1 3
check chardev-works sh -c 'echo x > a/null'
check chardev-rdev test "$(stat -c %t:%T a/null)" = 1:3
check chmod sh -c 'chmod 0640 a/file && test "$(stat -c %a a/file)" = 640'
check chown sh -c 'chown 1234:5678 a/file && test "$(stat -c %u:%g a/file)" = 1234:5678'
check chmod-sgid-needs-group-membership sh -c 'touch a/sg && chown 1000:2000 a/sg && setpriv --reuid 1000 --regid 1000 --clear-groups chmod 2755 a/sg && test "$(stat -c %a a/sg)" = 755'
check chmod-sgid-kept-for-root sh -c 'chmod 2755 a/sg && test "$(stat -c %a a/sg)" = 2755 && rm a/sg'
check utimes-ns sh -c 'touch -d "2001-02-03 04:05:06.123456789" a/file && test "$(stat -c %y a/file)" = "2001-02-03 04:05:06.123456789 +0000"'
check truncate-down sh -c 'truncate -s 5 a/file && test "$(cat a/file)" = hello'
check truncate-up sh -c 'truncate -s 100 a/file && test "$(stat -c %s a/file)" = 100 && test "$(tail -c 95 a/file | tr -d "\0" | wc -c)" = 0'
check rename mv a/hard a/renamed
check rename-replace sh -c 'echo new > a/other && mv a/other a/renamed && test "$(cat a/renamed)" = new'
check rename-dir mv a/b a/moved
check rename-into-own-child-fails sh -c '! mv a/moved a/moved/c/inside 2>/dev/null'
check rmdir-nonempty-fails sh -c 'rmdir a/moved 2>&1 | grep -q "not empty"'
check name-255-ok touch "a/$(printf 'n%.0s' $(seq 1 255))"
check name-256-enametoolong sh -c "touch a/$(printf 'n%.0s' $(seq 1 256)) 2>&1 | grep -q 'too long'"
check create-exists-fails sh -c '! mkdir a/moved 2>/dev/null'
check readdir-lists-all test "$(ls a | wc -l)" = 10
check unlink rm a/sym
check rmdir rmdir a/moved/c
# An open file whose last name is gone keeps working until closed.
check unlinked-open-file sh -c 'exec 3<>a/tmpfile; rm a/tmpfile; echo still > /proc/self/fd/3 && cat /proc/self/fd/3 >/dev/null; exec 3>&-'
# atime belongs to the VFS inode until write_inode hands it over: a later
# change to the same inode must not take the older on-disk one back.
# (relatime moves an atime older than a day, so each read below moves it.)
mkdir a/atime-dir && touch -a -d @946684800 a/atime-dir && ls a/atime-dir > /dev/null
dir_atime=$(stat -c %X a/atime-dir)
check dir-atime-moved-by-readdir test "$dir_atime" -gt 946684800
: > a/atime-dir/new
check dir-atime-kept-by-create test "$(stat -c %X a/atime-dir)" = "$dir_atime"
echo data > a/atime-dir/file && touch -a -d @946684800 a/atime-dir/file && cat a/atime-dir/file > /dev/null
file_atime=$(stat -c %X a/atime-dir/file)
check file-atime-moved-by-read test "$file_atime" -gt 946684800
fallocate -l 8192 a/atime-dir/file
check file-atime-kept-by-fallocate test "$(stat -c %X a/atime-dir/file)" = "$file_atime"
sum_before=$(cd "$MNT" && find . -type f ! -name fifo ! -name null -exec md5sum {} + | sort)
listing_before=$(cd "$MNT" && ls -lnR --time-style=+%s.%N | grep -v '^total')
atimes_before=$(stat -c '%n %X' "$MNT"/a/atime-dir "$MNT"/a/atime-dir/file)
cd /
check umount umount "$MNT"
check fsck-clean-after-use fsck.ferrofs -n "$DEV1"
check remount mount -t ferrofs "$DEV1" "$MNT"
check atimes-survive-remount test "$(stat -c '%n %X' "$MNT"/a/atime-dir "$MNT"/a/atime-dir/file)" = "$atimes_before"
sum_after=$(cd "$MNT" && find . -type f ! -name fifo ! -name null -exec md5sum {} + | sort)
listing_after=$(cd "$MNT" && ls -lnR --time-style=+%s.%N | grep -v '^total')
check contents-survive-remount test "$sum_before" = "$sum_after"
check metadata-survives-remount test "$listing_before" = "$listing_after"
check sync-syscall sync
check statfs-after-use sh -c "df $MNT | tail -1 | awk '{ exit !(\$3 > 0) }'"
rm -rf "$MNT"/a
free_after_rm=$(stat -f -c %f "$MNT")
check umount-again umount "$MNT"
check fsck-clean-after-delete fsck.ferrofs -n "$DEV1"
check remount-after-delete mount -t ferrofs "$DEV1" "$MNT"
check space-returned test "$(stat -f -c %f "$MNT")" -ge "$((free_after_rm - 64))"
check empty-after-delete test "$(ls -A "$MNT" | wc -l)" = 0
umount "$MNT"
