#!/usr/bin/env bash
# Runs inside the test VM (started by scripts/fstests through scripts/vm):
# prepares the guest for fstests, makes the TEST filesystem, runs ./check
# over a writable overlay of the fstests tree and leaves everything in the
# results directory, which is on the host.
#
#   guest.sh RESULTS_DIR FSTESTS_DIR FSTYP TEST_TIMEOUT CHECK_ARGS...
#
# Exits 0 when ./check ran to its end, whatever the tests' outcomes; the
# outcome is in RESULTS_DIR (check.out, results/, complete).
set -uo pipefail
results=$1 fstests=$2 fs=$3 test_timeout=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "fstests-guest: $*" >&2; exit 2; }

TEST_DEV=/dev/vdb
SCRATCH_DEV=/dev/vdc
work=/run/fstests
TEST_DIR=$work/test
SCRATCH_MNT=$work/scratch
tree=$work/tree

# The guest has no udevd (dmsetup would wait for cookies forever) and no
# /dev/fd (bash process substitution and several tests need it).
export DM_DISABLE_UDEV=1
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

# The test kernel has no System V IPC, so libdevmapper warns on every
# dmsetup call ("Kernel not configured for semaphores") and the warning
# lands in the output of every dm-flakey test. A dmsetup first on PATH
# drops that one line and keeps everything else, and the exit status.
real_dmsetup=$(type -P dmsetup) || die "dmsetup not found"
mkdir -p "$work/bin"
cat >"$work/bin/dmsetup" <<WRAPPER
#!/bin/bash
{ "$real_dmsetup" "\$@" 2>&1 1>&3 3>&- | grep -v '^Kernel not configured for semaphores' >&2; } 3>&1
exit \${PIPESTATUS[0]}
WRAPPER
chmod +x "$work/bin/dmsetup"
export PATH=$work/bin:$PATH

# fstests' users and group. The guest's /etc is a throwaway overlay of the
# host's (scripts/vm), so they are made here on every boot and the host's
# account files are never touched. /etc/shadow is a file bind-mounted by
# the harness, which useradd cannot replace by rename, so the entries are
# written directly.
add_group() { getent group "$1" >/dev/null || groupadd "$1" || die "groupadd $1 failed"; }
add_user() { # name [group]
  getent passwd "$1" >/dev/null && return 0
  local uid gid
  uid=$(awk -F: '$3 >= 20000 && $3 > max { max = $3 } END { print (max ? max + 1 : 20000) }' /etc/passwd)
  if [ -n "${2:-}" ]; then gid=$(getent group "$2" | cut -d: -f3); else gid=$uid; echo "$1:x:$gid:" >>/etc/group; fi
  echo "$1:x:$uid:$gid::/nonexistent:/bin/bash" >>/etc/passwd
  echo "$1:*:19000:0:99999:7:::" >>/etc/shadow
}
add_group fsgqa
add_user fsgqa fsgqa
add_user fsgqa2
add_user 123456-fsgqa

# A writable view of the fstests tree: ./check writes core files and
# scratch state into its own directory, and the tree on the host stays as
# its owner built it.
mkdir -p "$work/upper" "$work/ovl-work" "$tree" "$TEST_DIR" "$SCRATCH_MNT"
mount -t overlay fstests-tree -o "lowerdir=$fstests,upperdir=$work/upper,workdir=$work/ovl-work" "$tree" ||
  die "cannot overlay $fstests"

# Filesystems fstests' common/rc does not know get their per-filesystem
# support (mkfs of a given size or block size) from tests/fstests/<fs>.rc,
# sourced at the end of common/rc in the overlay only.
hooks=$here/$fs.rc
if [ -f "$hooks" ]; then
  printf '\n# Added by the ferrofs fstests runner, in its overlay only.\nif [ -f "%s" ]; then . "%s"; fi\n' "$hooks" "$hooks" >>"$tree/common/rc"
fi

case $fs in
  ferrofs) mkfs_test=(mkfs.ferrofs -f -q) mkfs_options=-f ;;
  ext4) mkfs_test=(mkfs.ext4 -F -q) mkfs_options= ;;
  btrfs) mkfs_test=(mkfs.btrfs -f -q) mkfs_options= ;;
  *) die "unknown filesystem $fs" ;;
esac

mkdir -p "$results/results"
sed -e "s|@FSTYP@|$fs|" -e "s|@TEST_DEV@|$TEST_DEV|" -e "s|@TEST_DIR@|$TEST_DIR|" \
  -e "s|@SCRATCH_DEV@|$SCRATCH_DEV|" -e "s|@SCRATCH_MNT@|$SCRATCH_MNT|" \
  -e "s|@RESULT_BASE@|$results/results|" -e "s|@MKFS_OPTIONS@|$mkfs_options|" \
  -e "s|@MOUNT_OPTIONS@||" "$here/local.config.in" >"$results/local.config"
export HOST_OPTIONS=$results/local.config

"${mkfs_test[@]}" "$TEST_DEV" >"$results/mkfs-test.log" 2>&1 || die "mkfs of $TEST_DEV failed: $(cat "$results/mkfs-test.log")"

# A test that runs past TEST_TIMEOUT seconds is taken as hung: its name and
# the kernel log (with the hung-task reports) are saved, and the VM is
# powered off, since a task stuck in the kernel cannot be killed.
watchdog() {
  local last='' since=$SECONDS cur
  while sleep 10; do
    cur=$(grep -oE '^[a-z0-9]+/[0-9]+' "$results/check.out" 2>/dev/null | tail -n1)
    if [ "$cur" != "$last" ]; then last=$cur since=$SECONDS; continue; fi
    [ -n "$cur" ] && ((SECONDS - since > test_timeout)) || continue
    echo "$cur" >"$results/hung"
    [ -w /proc/sysrq-trigger ] && echo w >/proc/sysrq-trigger
    dmesg >"$results/hung-dmesg.txt"
    sync
    echo "fstests-guest: $cur still running after ${test_timeout}s; powering off" >&2
    busybox poweroff -f
  done
}
watchdog &
watchdog_pid=$!

excludes=(-E "$here/exclude")
[ -f "$here/exclude.$fs" ] && excludes+=(-E "$here/exclude.$fs")
cd "$tree" || die "cannot cd to $tree"
echo "fstests-guest: ./check ${excludes[*]} $*" >&2
./check "${excludes[@]}" "$@" 2>&1 | tee "$results/check.out"
status=${PIPESTATUS[0]}

kill "$watchdog_pid" 2>/dev/null
dmesg >"$results/dmesg.txt"
echo "$status" >"$results/complete"
mountpoint -q "$TEST_DIR" && umount "$TEST_DIR"
mountpoint -q "$SCRATCH_MNT" && umount "$SCRATCH_MNT"
exit 0
