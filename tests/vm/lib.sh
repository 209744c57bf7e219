# Helpers for the VM tests (sourced). Each check prints PASS or FAIL with
# its name; a test's exit status does not matter beyond that.
: "${FERROFS_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export FERROFS_ROOT
MNT=/mnt
DEV1=/dev/vdb
DEV2=/dev/vdc

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }
check() { # name command...
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name" "$*"; fi
}

# mount(2) directly, printing the errno name ("OK" on success), so tests can
# tell EINVAL from EUCLEAN without guessing from mount(8)'s wording.
mount_errno() { # dev dir [fstype] [options]
  python3 "$FERROFS_ROOT/tests/vm/mount_errno.py" "$@"
}

# The kernel log since the last mark_dmesg. What it clears is kept in
# /tmp/ferrofs-kmsg.saved, which scripts/vm-guest scans with the rest of
# the log at the end: a test cannot hide a kernel report from the harness.
mark_dmesg() { dmesg -c >>/tmp/ferrofs-kmsg.saved; }

# fsync of PATH (a file opened read-write, a directory read-only); prints
# how many cache flushes /dev/vdb saw meanwhile (/sys/block/vdb/stat,
# field 16).
fsync_flushes() { # path
  python3 -c '
import os, sys
def flushes():
    return int(open("/sys/block/vdb/stat").read().split()[15])
fd = os.open(sys.argv[1], os.O_RDONLY if os.path.isdir(sys.argv[1]) else os.O_RDWR)
before = flushes()
os.fsync(fd)
print(flushes() - before)
' "$1"
}

# dm-flakey over $DEV1 for power-failure tests: the device is
# /dev/mapper/ferrofs-flakey over the first FLAKEY_SECTORS sectors (all of
# $DEV1 unless set), made with
#   dmsetup create ferrofs-flakey --table "$(flakey_table up)"
# and switched with `flakey drop` (every write from then on is lost) and
# `flakey up`.
flakey_table() { # up|drop
  local sectors=${FLAKEY_SECTORS:-$(blockdev --getsz "$DEV1")}
  case $1 in
    up) echo "0 $sectors flakey $DEV1 0 180 0" ;;
    drop) echo "0 $sectors flakey $DEV1 0 0 180 1 drop_writes" ;;
  esac
}
# --nolockfs: a plain suspend freezes the mounted filesystem, and freezing
# commits it, which would make every write so far durable, synced or not.
flakey() { # up|drop
  dmsetup suspend --nolockfs ferrofs-flakey && dmsetup load ferrofs-flakey --table "$(flakey_table "$1")" && dmsetup resume ferrofs-flakey
}
