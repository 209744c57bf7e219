# Bad images are refused with the right errno and one clear log line.
. "$(dirname "$0")/lib.sh"
img=$FERROFS_ROOT/tests/vm/ferrofs_image.py

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
python3 "$img" "$DEV2" set-u64 24 0x8000000000000000
expect unknown-incompat-einval "$DEV2" EINVAL "unknown incompatible feature"

# An unknown format version.
mkfs.ferrofs -q -f "$DEV2"
python3 "$img" "$DEV2" set-u32 16 99
expect unknown-version-einval "$DEV2" EINVAL "unknown format version"

# A filesystem claiming more blocks than the device has.
mkfs.ferrofs -q -f "$DEV2"
python3 "$img" "$DEV2" set-u64 128 $(( ($(blockdev --getsize64 "$DEV2") / 4096) + 1 ))
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

# mkfs without -f asks before overwriting, and a "no" writes nothing.
before=$(dd if="$DEV2" bs=4096 skip=16 count=1 status=none | md5sum)
echo n | mkfs.ferrofs -L other "$DEV2" >/dev/null 2>&1
after=$(dd if="$DEV2" bs=4096 skip=16 count=1 status=none | md5sum)
check mkfs-asks-before-overwrite test "$before" = "$after"
check mkfs-yes-overwrites sh -c "yes | mkfs.ferrofs -L other $DEV2 >/dev/null 2>&1 && ferrofs show-super $DEV2 | grep -q 'label *other'"
