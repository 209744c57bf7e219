# Subvolumes and snapshots through the kernel: the ioctls of
# include/uapi/linux/ferrofs.h (driven by tests/vm/subvol_ioctl.c, built
# here with the host's compiler against the header), read-only snapshots,
# st_dev per subvolume, EXDEV across subvolumes, deletion giving space back
# in the background, bad arguments and unprivileged callers, and the
# subvol= / subvolid= mount options.
. "$(dirname "$0")/lib.sh"
SV=/tmp/subvol_ioctl
cc -O1 -Wall -Werror -I "$FERROFS_ROOT/include/uapi" -o "$SV" "$FERROFS_ROOT/tests/vm/subvol_ioctl.c" || { fail build-subvol-ioctl; exit 0; }
pass build-subvol-ioctl

# The outcome of a Python statement: OK or the errno's name.
try_py() {
  python3 -c '
import errno, os, sys
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
' "$1"
}
# check_is NAME EXPECTED COMMAND...: the command prints exactly EXPECTED.
check_is() {
  local name=$1 want=$2 got
  shift 2
  got=$("$@" 2>&1)
  if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "got '$got', want '$want'"; fi
}
# check_ok NAME COMMAND...: the command's first word is OK.
check_ok() {
  local name=$1 got
  shift
  got=$("$@" 2>&1)
  if [ "${got%% *}" = OK ]; then pass "$name"; else fail "$name" "got '$got'"; fi
}
free_blocks() { stat -f -c %f "$MNT"; }
as_user() { setpriv --reuid 1000 --regid 1000 --clear-groups "$@"; }

mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail subvol-mount; exit 0; }
cd "$MNT" || exit 0

# Create, fill, snapshot.
out=$($SV create "$MNT" sv1)
check create-subvol test "${out%% *}" = OK
id1=${out#OK }
check subvol-is-dir test -d sv1
check subvol-root-ino-256 test "$(stat -c %i sv1)" = 256
echo one > sv1/file && mkdir sv1/d && echo two > sv1/d/f2
check files-in-subvol test "$(cat sv1/file)$(cat sv1/d/f2)" = onetwo
check_is info-subvol "OK id=$id1 parent=5 dir=256 flags=0 name=sv1" $SV info sv1
check_is info-default "OK id=5 parent=0 dir=0 flags=0 name=" $SV info .
out=$($SV snap sv1 "$MNT" snap1)
check snapshot test "${out%% *}" = OK
check snapshot-content test "$(cat snap1/file)$(cat snap1/d/f2)" = onetwo
echo changed > sv1/file && rm sv1/d/f2 && echo new > sv1/new
check snapshot-unchanged-after-source-changes sh -c 'test "$(cat snap1/file)" = one && test -f snap1/d/f2 && ! test -e snap1/new'
check source-changed test "$(cat sv1/file)" = changed

# st_dev: one per subvolume; find -xdev stays out of them.
echo top > top
check stdev-subvol-differs test "$(stat -c %d sv1)" != "$(stat -c %d .)"
check stdev-snapshot-differs test "$(stat -c %d snap1)" != "$(stat -c %d sv1)"
check stdev-same-inside test "$(stat -c %d sv1/d)" = "$(stat -c %d sv1)"
check stdev-default-is-sb test "$(stat -c %d .)" = "$(mountpoint -d "$MNT" | awk -F: '{print $1*256+$2}')"
check find-xdev-stays-out test "$(find . -xdev -type f | sort | tr '\n' ' ')" = "./top "
check find-descends-without-xdev test "$(find . -type f -name f2 | sort | tr '\n' ' ')" = "./snap1/d/f2 "
check du-x-stays-out sh -c 'test "$(du -x -a . | grep -c sv1/)" = 0'

# Links and renames do not cross subvolumes.
check_is rename-across-exdev EXDEV try_py 'os.rename("sv1/file", "moved")'
check_is rename-into-subvol-exdev EXDEV try_py 'os.rename("top", "sv1/top")'
check_is link-across-exdev EXDEV try_py 'os.link("sv1/file", "linked")'
check_is rename-onto-subvol-exdev EXDEV try_py 'os.mkdir("emptydir"); os.rename("emptydir", "snap1")'
rmdir emptydir 2>/dev/null
check_is rename-within-subvol OK try_py 'os.rename("sv1/new", "sv1/new2")'
check_is rename-subvol-entry OK try_py 'os.rename("snap1", "snap1b"); os.rename("snap1b", "snap1")'
check snapshot-after-rename test "$(cat snap1/file)" = one

# A read-only snapshot refuses every change with EROFS; reads work.
out=$($SV snap sv1 "$MNT" ro1 ro)
check snapshot-ro test "${out%% *}" = OK
check_is ro-getflags "OK 2" $SV getflags ro1
check ro-reads test "$(cat ro1/file)" = changed
check_is ro-write EROFS try_py 'open("ro1/file", "a")'
check_is ro-create EROFS try_py 'open("ro1/created", "w")'
check_is ro-mkdir EROFS try_py 'os.mkdir("ro1/dir")'
check_is ro-unlink EROFS try_py 'os.unlink("ro1/file")'
check_is ro-rename EROFS try_py 'os.rename("ro1/file", "ro1/file2")'
check_is ro-setxattr EROFS try_py 'os.setxattr("ro1/file", "user.a", b"v")'
check_is ro-setxattr-trusted EROFS try_py 'os.setxattr("ro1/file", "trusted.a", b"v")'
check_is ro-chmod EROFS try_py 'os.chmod("ro1/file", 0o600)'
check_is ro-chown EROFS try_py 'os.chown("ro1/file", 1, 1)'
check_is ro-truncate EROFS try_py 'os.truncate("ro1/file", 0)'
check_is ro-utimes EROFS try_py 'os.utime("ro1/file", (1, 1))'
check_is ro-symlink EROFS try_py 'os.symlink("x", "ro1/sym")'
check_is ro-link-in EROFS try_py 'os.link("ro1/file", "ro1/file3")'
check ro-content-kept sh -c 'test "$(cat ro1/file)" = changed && test "$(stat -c %a ro1/file)" = 644'
check_is ro-setflags-user-eperm EPERM as_user $SV setflags ro1 0
check_is setflags-unknown-einval EINVAL $SV setflags ro1 4
check_is setflags-clear OK $SV setflags ro1 0
check_is getflags-cleared "OK 0" $SV getflags ro1
check writes-after-clear sh -c 'echo more >> ro1/file && echo x > ro1/created && test "$(cat ro1/file)" = "changed
more"'
check_is setflags-set-again OK $SV setflags ro1 2
check_is write-after-set-again EROFS try_py 'open("ro1/file", "a")'
# An open file of a subvolume made read-only meanwhile takes no data.
exec 3>>sv1/file
check_is setflags-sv1-ro OK $SV setflags sv1 2
check_is open-writer-refused EROFS try_py 'os.write(3, b"late")'
exec 3>&-
check_is setflags-sv1-rw OK $SV setflags sv1 0

# Bad arguments: the right errno, and nothing changes.
ls -a > /tmp/before.ls
check_is bad-fd EBADF $SV snapfd 999 "$MNT" x1
check_is negative-fd EBADF $SV snapfd -1 "$MNT" x2
check_is snapshot-of-procfs-exdev EXDEV $SV snap /proc "$MNT" x3
check_is snapshot-of-tmp-exdev EXDEV $SV snap /tmp "$MNT" x4
check_is name-too-long ENAMETOOLONG $SV create "$MNT" "$(printf 'n%.0s' $(seq 1 300))"
check_is name-empty EINVAL $SV create "$MNT" ""
check_is name-dot EINVAL $SV create "$MNT" .
check_is name-dotdot EINVAL $SV create "$MNT" ..
check_is name-slash EINVAL $SV create "$MNT" a/b
check_is reserved-nonzero EINVAL $SV bad-create "$MNT" x5
check_is create-exists EEXIST $SV create "$MNT" sv1
check_is create-over-file EEXIST $SV create "$MNT" top
check_is create-in-file ENOTDIR $SV create top x6
check_is delete-missing ENOENT $SV delete "$MNT" nosuch
check_is delete-plain-dir EINVAL $SV delete "$MNT" ..
mkdir plain
check_is delete-not-subvol EINVAL $SV delete "$MNT" plain
rmdir plain
check_is list-reserved EINVAL $SV bad-list "$MNT"
check_is list-bad-pointer EFAULT $SV bad-list-ptr "$MNT"
check_is create-in-ro-subvol EROFS $SV create ro1 x7
check nothing-changed sh -c 'ls -a | cmp -s - /tmp/before.ls'

# Unprivileged callers.
mkdir user && chown 1000:1000 user
check_is user-delete-eperm EPERM as_user $SV delete "$MNT" sv1
check_is user-list-eperm EPERM as_user $SV list "$MNT"
check_is user-create-no-write-eacces EACCES as_user $SV create "$MNT" u1
check_ok user-create-own-dir as_user $SV create "$MNT/user" mine
check user-owns-new-root test "$(stat -c %u:%g user/mine)" = 1000:1000
check_is user-snapshot-not-owner-eperm EPERM as_user $SV snap sv1 "$MNT/user" s1
check_ok user-snapshot-own as_user $SV snap user/mine "$MNT/user" s2
check_ok user-info as_user $SV info sv1
check root-delete-user-subvols sh -c "$SV delete $MNT/user s2 >/dev/null && $SV delete $MNT/user mine >/dev/null"

# List: every live subvolume, in pages.
check list-all sh -c "$SV list $MNT | grep -q 'name=sv1' && $SV list $MNT | grep -q 'name=snap1' && $SV list $MNT | head -1 | grep -q 'count=4 more=0'"
check list-paged sh -c "$SV list $MNT 0 1 | head -1 | grep -q 'count=1 more=1' && $SV list $MNT 6 8 | head -1 | grep -q 'more=0'"

# Delete: busy while in use, then gone, and the space comes back.
check_ok create-sv2 $SV create "$MNT" sv2
free0=$(free_blocks)
dd if=/dev/zero of=sv2/big bs=1M count=16 status=none && mkdir -p sv2/a/b && echo x > sv2/a/b/c && sync
free1=$(free_blocks)
check big-file-used-space test $((free0 - free1)) -gt 3500
check_is delete-busy-cwd EBUSY sh -c "cd sv2/a && $SV delete $MNT sv2"
exec 4<sv2/a/b/c
check_is delete-busy-open-file EBUSY $SV delete "$MNT" sv2
exec 4<&-
check_is delete-sv2 OK $SV delete "$MNT" sv2
check deleted-name-gone test ! -e sv2
check deleted-not-listed sh -c "! $SV list $MNT | grep -q name=sv2"
back=no
for _ in $(seq 1 120); do
  [ "$(free_blocks)" -ge $((free0 - 64)) ] && { back=yes; break; }
  sleep 0.5
done
check delete-returns-space test "$back" = yes
check_ok create-sv3-empty $SV create "$MNT" sv3
check rmdir-empty-subvol rmdir sv3
check_ok create-sv4 $SV create "$MNT" sv4
touch sv4/f
check_is rmdir-nonempty-subvol ENOTEMPTY try_py 'os.rmdir("sv4")'
check_ok create-nested $SV create "$MNT/sv4" inner
check_is delete-parent-of-nested ENOTEMPTY $SV delete "$MNT" sv4
check_ok delete-inner-first $SV delete "$MNT/sv4" inner
check_ok delete-sv4 $SV delete "$MNT" sv4

# A drop an unmount interrupts goes on at the next mount.
check_ok create-sv5 $SV create "$MNT" sv5
free0=$(free_blocks)
dd if=/dev/zero of=sv5/big bs=1M count=16 status=none && sync
check_ok delete-sv5 $SV delete "$MNT" sv5
cd /
umount "$MNT" || fail umount-after-delete
mount -t ferrofs "$DEV1" "$MNT" || { fail remount-after-delete; exit 0; }
back=no
for _ in $(seq 1 120); do
  [ "$(free_blocks)" -ge $((free0 - 64)) ] && { back=yes; break; }
  sleep 0.5
done
check drop-resumes-after-mount test "$back" = yes
check snapshot-survives-remount test "$(cat $MNT/snap1/file)" = one
check ro-flag-survives-remount test "$($SV getflags $MNT/ro1)" = "OK 2"

# Remount read-only and back: the snapshot reads back.
check remount-ro mount -o remount,ro "$MNT"
check snapshot-reads-when-ro test "$(cat $MNT/snap1/d/f2)" = two
check_is create-when-ro EROFS $SV create "$MNT" x8
check remount-rw mount -o remount,rw "$MNT"
check snapshot-reads-after-rw test "$(cat $MNT/snap1/file)" = one

# subvol= and subvolid=: the subvolume's contents as the mount's root, also
# beside the full mount (one super_block).
mkdir -p /tmp/mnt2
check mount-subvol-path mount -t ferrofs -o subvol=/sv1 "$DEV1" /tmp/mnt2
check subvol-mount-content sh -c 'test "$(cat /tmp/mnt2/file)" = changed && test -d /tmp/mnt2/d'
check subvol-mount-in-proc-mounts grep -q " /tmp/mnt2 ferrofs .*subvolid=$id1,subvol=/sv1" /proc/mounts
check_is delete-mounted-subvol-busy EBUSY $SV delete "$MNT" sv1
check write-through-subvol-mount sh -c "echo via > /tmp/mnt2/via && test \"\$(cat $MNT/sv1/via)\" = via"
umount /tmp/mnt2
check mount-subvolid mount -t ferrofs -o subvolid="$id1" "$DEV1" /tmp/mnt2
check subvolid-mount-content test "$(cat /tmp/mnt2/via)" = via
umount /tmp/mnt2
check mount-subvol-and-id-agree mount -t ferrofs -o subvol=sv1,subvolid="$id1" "$DEV1" /tmp/mnt2 && umount /tmp/mnt2
check mount-subvolid-0-default sh -c "mount -t ferrofs -o subvolid=0 $DEV1 /tmp/mnt2 && test -f /tmp/mnt2/top && umount /tmp/mnt2"
# A subvolume named in a directory below another subvolume's root.
out=$($SV create "$MNT/sv1/d" deep)
deep_id=${out#OK }
check mount-nested-subvol-path mount -t ferrofs -o subvol=/sv1/d/deep "$DEV1" /tmp/mnt2
check nested-subvol-in-proc-mounts grep -q " /tmp/mnt2 ferrofs .*subvolid=$deep_id,subvol=/sv1/d/deep" /proc/mounts
umount /tmp/mnt2
# A snapshot shows a nested subvolume of its source as an empty directory;
# two of them are two directories, both usable at once.
check_ok create-second-nested $SV create "$MNT/sv1" deep2
check_ok snapshot-with-nested $SV snap "$MNT/sv1" "$MNT" snap2
check nested-is-empty-standin sh -c "test -d $MNT/snap2/d/deep && test -z \"\$(ls -A $MNT/snap2/d/deep)\""
check standin-same-stdev-as-snapshot test "$(stat -c %d $MNT/snap2/d/deep)" = "$(stat -c %d $MNT/snap2)"
check two-standins-at-once sh -c "cd $MNT/snap2/d/deep && test -z \"\$(ls -A $MNT/snap2/deep2)\" && test -z \"\$(ls -A .)\" && test -d $MNT/snap2/d/deep"
umount "$MNT"
mark_dmesg
check_is mount-subvol-missing EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs subvol=/nosuch
check mount-subvol-missing-logged sh -c 'dmesg | grep -q "subvol=/nosuch: no such file or directory"'
check_is mount-subvol-not-subvolume EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs subvol=/sv1/d
check_is mount-subvol-file EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs subvol=/top
check_is mount-subvol-through-file EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs subvol=/top/x
check_is mount-subvol-dotdot EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs subvol=/sv1/..
check_is mount-subvolid-missing EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs subvolid=99999
check_is mount-subvolid-bad EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs subvolid=abc
check_is mount-subvol-and-id-differ EINVAL mount_errno "$DEV1" /tmp/mnt2 ferrofs "subvol=/snap1,subvolid=$id1"
check nothing-mounted-after-bad-options sh -c '! grep -q " /tmp/mnt2 " /proc/mounts'
check fsck-clean fsck.ferrofs -n "$DEV1"

# Durable on return: each subvolume ioctl commits before it returns, so a
# shutdown that writes nothing more (xfs_io shutdown, no log flush) keeps
# what they did.
mount -t ferrofs "$DEV1" "$MNT" || { fail durable-mount; exit 0; }
echo kept > "$MNT/sv1/kept"
check_ok durable-snap $SV snap "$MNT/sv1" "$MNT" durable-snap ro
check_ok durable-create $SV create "$MNT" durable-sv
check_ok durable-delete $SV delete "$MNT" snap1
check_ok durable-setflags $SV setflags "$MNT/durable-sv" 2
check shutdown-after-subvol-ioctls xfs_io -x -c shutdown "$MNT"
umount "$MNT"
mount -t ferrofs "$DEV1" "$MNT" || { fail durable-remount; exit 0; }
check durable-snapshot-content test "$(cat "$MNT/durable-snap/kept")" = kept
check_is durable-snapshot-read-only "OK 2" $SV getflags "$MNT/durable-snap"
check_is durable-created-read-only "OK 2" $SV getflags "$MNT/durable-sv"
check durable-delete-gone test ! -e "$MNT/snap1"
umount "$MNT"
check fsck-clean-after-shutdown fsck.ferrofs -n "$DEV1"
