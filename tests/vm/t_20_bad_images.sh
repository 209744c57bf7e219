# Bad images are refused with the right errno and one clear log line; the
# crafted images that once oopsed or hung the kernel now give clean errors.
# Fields are edited with `ferrofs debug set`, which re-seals checksums
# through the core's own codecs.
. "$(dirname "$0")/lib.sh"

expect() { # name dev errno log-pattern
  mark_dmesg
  local got
  got=$(mount_errno "$2" "$MNT")
  if [ "$got" != "$3" ]; then fail "$1" "mount gave $got, expected $3"; return; fi
  if ! dmesg | grep -q "ferrofs: .*$4"; then fail "$1" "no log line matching '$4'"; dmesg | tail -5; return; fi
  pass "$1"
}

# A zeroed device.
dd if=/dev/zero of="$DEV2" bs=1M count=4 conv=fsync status=none
expect zeroed-device-einval "$DEV2" EINVAL "not a ferrofs filesystem"

# Wrong magic in both copies (an ext4 image here).
mkfs.ext4 -q -F "$DEV2"
expect ext4-image-einval "$DEV2" EINVAL "not a ferrofs filesystem"

# Checksum damage in both copies.
mkfs.ferrofs -q -f "$DEV2"
printf '\x99' | dd of="$DEV2" bs=1 seek=$((65536 + 300)) conv=notrunc,fsync status=none
printf '\x99' | dd of="$DEV2" bs=1 seek=$((131072 + 300)) conv=notrunc,fsync status=none
expect bad-checksum-euclean "$DEV2" EUCLEAN "checksum mismatch"
check fsck-detects-bad-checksum sh -c "fsck.ferrofs -n $DEV2; test \$? -eq 4"

# Damage to one copy only: the other copy still mounts.
mkfs.ferrofs -q -f "$DEV2"
printf '\x99' | dd of="$DEV2" bs=1 seek=$((65536 + 300)) conv=notrunc,fsync status=none
check one-bad-copy-still-mounts test "$(mount_errno "$DEV2" "$MNT")" = OK

# An unknown incompatible feature (bit 63), checksum re-sealed.
mkfs.ferrofs -q -f "$DEV2"
ferrofs debug set "$DEV2" super.incompat 0x8000000000000000
expect unknown-incompat-einval "$DEV2" EINVAL "unknown incompatible feature"

# An unknown format version.
mkfs.ferrofs -q -f "$DEV2"
ferrofs debug set "$DEV2" super.version 99
expect unknown-version-einval "$DEV2" EINVAL "unknown format version"

# A filesystem claiming more blocks than the device has.
mkfs.ferrofs -q -f "$DEV2"
ferrofs debug set "$DEV2" super.total_blocks $(( ($(blockdev --getsize64 "$DEV2") / 4096) + 1 ))
expect device-too-small-einval "$DEV2" EINVAL "smaller than the filesystem"

# Unknown mount options are refused.
mkfs.ferrofs -q -f "$DEV2"
mark_dmesg
check unknown-option-einval test "$(mount_errno "$DEV2" "$MNT" ferrofs bogus_option)" = EINVAL
check unknown-option-logged sh -c "dmesg | grep -q 'Unknown parameter .bogus_option.'"
for bad in commit=abc commit=-1 commit=86401 commit; do
  mark_dmesg
  check "malformed-$bad-einval" test "$(mount_errno "$DEV2" "$MNT" ferrofs "$bad")" = EINVAL
  check "malformed-$bad-logged" sh -c "dmesg | grep -q 'ferrofs: commit: '"
done
for bad in fast_commit=maybe fast_commit= fast_commit=OFF norecovery=1 noload=yes; do
  mark_dmesg
  check "malformed-$bad-einval" test "$(mount_errno "$DEV2" "$MNT" ferrofs "ro,$bad")" = EINVAL
  check "malformed-$bad-logged" sh -c "dmesg | grep -Eq 'ferrofs: (fast_commit: expects on or off|norecovery: takes no value)'"
done
# norecovery leaves the fast-commit records alone, so it needs ro.
mark_dmesg
check norecovery-rw-einval test "$(mount_errno "$DEV2" "$MNT" ferrofs norecovery)" = EINVAL
check norecovery-rw-logged sh -c "dmesg | grep -q 'ferrofs: norecovery: needs a read-only mount'"
check nothing-mounted-after-bad-fsync-options sh -c "! grep -q ' $MNT ' /proc/mounts"

# mkfs without -f asks before overwriting, and a "no" writes nothing.
before=$(dd if="$DEV2" bs=4096 skip=16 count=1 status=none | md5sum)
echo n | mkfs.ferrofs -L other "$DEV2" >/dev/null 2>&1
after=$(dd if="$DEV2" bs=4096 skip=16 count=1 status=none | md5sum)
check mkfs-asks-before-overwrite test "$before" = "$after"
check mkfs-yes-overwrites sh -c "yes | mkfs.ferrofs -L other $DEV2 >/dev/null 2>&1 && ferrofs show-super $DEV2 | grep -q 'label *other'"

# A kernel report (oops, WARN, KASAN, soft lockup) since the last mark.
no_kernel_report() { ! dmesg | grep -Eq 'BUG:|WARNING:|Oops|KASAN|soft lockup|blocked for more than|panicked'; }

# The fs tree's root item claims ~2^64 inodes (checksums valid). This once
# mounted and oopsed in statfs (an overflow); now mount refuses it and
# fsck -y repairs the counter.
mkfs.ferrofs -q -f "$DEV2"
ferrofs debug set "$DEV2" item.1.5.root_item.0.inode_count 0xfffffffffffffffe
expect huge-inode-count-euclean "$DEV2" EUCLEAN "inode count out of range"
check huge-inode-count-no-report no_kernel_report
check huge-inode-count-fsck-repairs sh -c "fsck.ferrofs -y $DEV2 >/dev/null; test \$? -eq 1 && fsck.ferrofs -n $DEV2 >/dev/null"

# A symlink whose inode claims 2^48 bytes: ls -la once sized a kvmalloc by
# it (a WARN). Now the lookup fails with EUCLEAN and the log names the inode.
mkfs.ferrofs -q -f "$DEV2"
mount -t ferrofs "$DEV2" "$MNT" && ln -s target "$MNT/ln" && mkdir "$MNT/d" "$MNT/e"
ino=$(stat -c %i "$MNT/ln"); dino=$(stat -c %i "$MNT/d")
umount "$MNT"
ferrofs debug set "$DEV2" "item.5.$ino.inode.0.size" 0x1000000000000
mark_dmesg
if mount -t ferrofs "$DEV2" "$MNT"; then
  ls -la "$MNT" >/dev/null 2>&1
  check huge-symlink-readlink-fails sh -c "! readlink $MNT/ln"
  check huge-symlink-logged sh -c "dmesg | grep -q 'symlink size outside 1..=4095.*inode $ino'"
  check huge-symlink-no-report no_kernel_report
  umount "$MNT"
else
  fail huge-symlink-mounts
fi

# A directory that is its own parent: mv e d/e once spun with the lock held
# (the ancestor walk trusted the inode count). Now it fails with EUCLEAN.
ferrofs debug set "$DEV2" "item.5.$ino.inode.0.size" 6
ferrofs debug set "$DEV2" "item.5.$dino.inode.0.parent" "$dino"
mark_dmesg
if mount -t ferrofs "$DEV2" "$MNT"; then
  out=$(timeout 60 mv "$MNT/e" "$MNT/d/e" 2>&1); rc=$?
  check self-parent-rename-fails-fast sh -c "test $rc -ne 0 && test $rc -ne 124"
  check self-parent-rename-euclean sh -c "echo '$out' | grep -qi 'structure needs cleaning'"
  check self-parent-no-report no_kernel_report
  umount "$MNT"
else
  fail self-parent-mounts
fi
