# mkfs, mount, list the root, statfs, unmount, rmmod: the basic life cycle.
. "$(dirname "$0")/lib.sh"
check mkfs mkfs.ferrofs -q -L demo "$DEV1"
check fsck-clean fsck.ferrofs -n "$DEV1"
check mount mount -t ferrofs "$DEV1" "$MNT"
listing=$(ls -la "$MNT")
echo "$listing"
check root-has-dot grep -Eq ' \.$' <<<"$listing"
check root-has-dotdot grep -Eq ' \.\.$' <<<"$listing"
check root-mode-is-dir-0755 test "$(stat -c %A "$MNT")" = drwxr-xr-x
check root-owner-root test "$(stat -c %u:%g "$MNT")" = 0:0
check root-ino-256 test "$(stat -c %i "$MNT")" = 256
check statfs-magic test "$(stat -f -c %t "$MNT")" = 46455252
check statfs-blocks-nonzero test "$(stat -f -c %b "$MNT")" -gt 0
check statfs-free-nonzero test "$(stat -f -c %f "$MNT")" -gt 0
check statfs-block-size test "$(stat -f -c %S "$MNT")" = 4096
check lookup-missing-enoent sh -c "stat $MNT/nope 2>&1 | grep -q 'No such file'"
check fstype-in-proc-mounts grep -q "^$DEV1 $MNT ferrofs " /proc/mounts
check umount umount "$MNT"
check rmmod rmmod ferrofs
check module-gone sh -c '! grep -q "^ferrofs " /proc/modules'
check reinsmod insmod "$FERROFS_ROOT/ferrofs.ko"
check fs-alias-modinfo sh -c "modinfo -F alias '$FERROFS_ROOT/ferrofs.ko' | grep -qx fs-ferrofs"
check mount-again mount -t ferrofs "$DEV1" "$MNT"
check umount-again umount "$MNT"
check mount-commit-option mount -t ferrofs -o commit=1 "$DEV1" "$MNT"
check commit-option-shown grep -q "^$DEV1 $MNT ferrofs rw,relatime,commit=1 " /proc/mounts
check remount-commit mount -o remount,commit=30 "$MNT"
check remount-commit-shown grep -q "^$DEV1 $MNT ferrofs rw,relatime,commit=30 " /proc/mounts
check remount-commit-default sh -c "mount -o remount,commit=0 $MNT && ! grep -q commit= /proc/mounts"
check umount-third umount "$MNT"
