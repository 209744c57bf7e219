# Extended attributes, POSIX ACLs and inode flags: the user., trusted. and
# security. namespaces with their errors, sizes and listing; ACLs with
# getfacl/setfacl, inheritance, chmod and enforcement; chattr/lsattr; all
# of it surviving unmount, fsck and remount.
. "$(dirname "$0")/lib.sh"
XC="python3 $FERROFS_ROOT/tests/vm/xattr_call.py"
X() { $XC "$@"; }
as_user() { # uid command...: runs with that uid and gid and no groups
  local u=$1; shift
  setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
}
is() { # expected command...: the command prints exactly that
  local want=$1; shift
  test "$("$@" 2>&1)" = "$want"
}
umask 022
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail xattr-mount; exit 0; }
cd "$MNT" || exit 0
echo data > f
mkdir d
mkfifo fifo
ln -s f sym

# user.
check user-set setfattr -n user.color -v blue f
check user-get is blue getfattr --only-values -n user.color f
check user-listed sh -c 'getfattr -d f | grep -qx "user.color=\"blue\""'
check user-overwrite sh -c 'setfattr -n user.color -v red f && test "$(getfattr --only-values -n user.color f)" = red'
check user-empty-value sh -c "$XC set f user.empty '' | grep -qx OK && test \"\$($XC get f user.empty 0)\" = 0"
check user-on-dir sh -c 'setfattr -n user.d -v 1 d && test "$(getfattr --only-values -n user.d d)" = 1'
check user-on-fifo-eperm is EPERM X set fifo user.x v
check user-on-symlink-eperm is EPERM X set nofollow:sym user.x v
check trusted-on-symlink is OK X set nofollow:sym trusted.l v
check symlink-listxattr sh -c "test \"\$($XC list nofollow:sym 0)\" = 10"
check user-remove sh -c 'setfattr -x user.color f && ! getfattr -n user.color f 2>/dev/null'
check get-missing-enodata is ENODATA X get f user.color 0
check remove-missing-enodata is ENODATA X remove f user.color
before=$(stat -c %Z f)
sleep 1.1
setfattr -n user.t -v 1 f
check setxattr-updates-ctime test "$(stat -c %Z f)" -gt "$before"

# trusted.: CAP_SYS_ADMIN only, also in the listing
check trusted-set setfattr -n trusted.t -v secret f
check trusted-get is secret getfattr --only-values -n trusted.t f
check trusted-listed-for-root sh -c 'getfattr -m - -d f | grep -qx "trusted.t=\"secret\""'
check trusted-hidden-from-user sh -c "! setpriv --reuid=1000 --regid=1000 --clear-groups getfattr -m - -d f | grep -q trusted"
check user-sees-user-names sh -c "setpriv --reuid=1000 --regid=1000 --clear-groups getfattr -m - -d f | grep -q user.t"
check trusted-get-denied-to-user is ENODATA as_user 1000 $XC get f trusted.t 100
check trusted-set-denied-to-user is EPERM as_user 1000 $XC set f trusted.u v
check trusted-remove setfattr -x trusted.t f

# security.
check security-set setfattr -n security.s -v label f
check security-get is label getfattr --only-values -n security.s f
check security-listed sh -c 'getfattr -m security -d f | grep -qx "security.s=\"label\""'
check security-remove setfattr -x security.s f
# File capabilities (VFS_CAP_REVISION_2, cap_net_raw permitted): a new
# file may hold one, and the VFS's kill-priv on chown and on write finds it.
export CAPV=0x0000000200200000000000000000000000000000
echo data > capf
check capability-set setfattr -n security.capability -v $CAPV capf
check capability-get sh -c 'getfattr -e hex -n security.capability capf | grep -qx "security.capability=$CAPV"'
check capability-killed-by-chown sh -c 'chown 1000 capf && ! getfattr -n security.capability capf 2>/dev/null'
check capability-set-again setfattr -n security.capability -v $CAPV capf
check capability-killed-by-write sh -c 'echo more >> capf && ! getfattr -n security.capability capf 2>/dev/null'
check unknown-namespace-eopnotsupp is EOPNOTSUPP X set f other.x v

# XATTR_CREATE / XATTR_REPLACE
check create-new is OK X set f user.c v create
check create-existing-eexist is EEXIST X set f user.c w create
check replace-missing-enodata is ENODATA X set f user.none v replace
check replace-existing sh -c "$XC set f user.c w replace | grep -qx OK && test \"\$(getfattr --only-values -n user.c f)\" = w"

# Sizes: size queries, ERANGE, 64 KiB values, E2BIG, long names
setfattr -n user.r -v hello f
check size-query is 5 X get f user.r 0
check get-erange is ERANGE X get f user.r 4
check get-exact is 5 X get f user.r 5
n=$(X list f 0)
check list-size-query test "$n" -gt 0
check list-erange is ERANGE X list f $((n - 1))
check list-exact is "$n" X list f "$n"
check value-64k-set is OK X set f user.big '#65536'
check value-64k-size is 65536 X get f user.big 0
check value-64k-content test "$(X md5 f user.big)" = "$(X pattern-md5 65536)"
check value-64k-erange is ERANGE X get f user.big 65535
check value-over-64k-e2big is E2BIG X set f user.big2 '#65537'
check value-64k-replace-smaller sh -c "$XC set f user.big '#70' | grep -qx OK && test \"\$($XC md5 f user.big)\" = \"\$($XC pattern-md5 70)\" && $XC set f user.big '#65536' >/dev/null"
check name-255 is OK X set f "user.$(printf 'n%.0s' $(seq 1 250))" v
check name-256-erange is ERANGE X set f "user.$(printf 'n%.0s' $(seq 1 251))" v
for i in $(seq 1 200); do setfattr -n "user.many$i" -v "value $i" d; done
check many-xattrs-listed test "$(getfattr -d d | grep -c '^user.many')" = 200
check many-xattrs-read is "value 137" getfattr --only-values -n user.many137 d

# POSIX ACLs
echo acl > a
check acl-set setfacl -m u:1000:rw a
check acl-get sh -c 'getfacl -cn a | grep -qx "user:1000:rw-"'
check acl-mask-in-mode is 664 stat -c %a a
check acl-plus-in-ls sh -c 'ls -l a | grep -q "^-rw-rw-r--+"'
check acl-xattr-listed sh -c 'getfattr -m - a | grep -qx system.posix_acl_access'
check acl-chmod-updates-mask sh -c 'chmod 640 a && getfacl -cn a | grep -qx "mask::r--"'
check acl-chmod-effective sh -c 'getfacl -cn a | grep -q "^user:1000:rw-.*#effective:r--"'
check acl-chmod-mode is 640 stat -c %a a
check acl-remove-all sh -c 'setfacl -b a && ! getfattr -m - a | grep -q posix_acl && ! ls -l a | grep -q "^-.........+"'
check acl-equivalent-not-stored sh -c 'setfacl -m u::rwx,g::r-x,o::- a && test "$(stat -c %a a)" = 750 && ! getfattr -m - a | grep -q posix_acl'
touch plainacl
check acl-on-new-file sh -c 'setfacl -m u:1000:r plainacl && chmod 600 plainacl && getfacl -cn plainacl | grep -qx "mask::---"'
check acl-default-on-file-refused sh -c '! setfacl -d -m u:1000:r a 2>/dev/null'
echo secret > s
chmod 600 s
setfacl -m u:1000:r s
check acl-grants-read is secret as_user 1000 cat s
check acl-no-write sh -c "! setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'echo x >> s' 2>/dev/null"
check acl-others-denied sh -c "! setpriv --reuid=1001 --regid=1001 --clear-groups cat s 2>/dev/null"
check acl-revoke sh -c "setfacl -m u:1000:- s && ! setpriv --reuid=1000 --regid=1000 --clear-groups cat s 2>/dev/null"
setfacl -m u:1000:r s
mkdir dd
check acl-default-set setfacl -d -m u:1000:rwx,g::r-x,o::- dd
check acl-default-get sh -c 'getfacl -cn -d dd | grep -qx "user:1000:rwx"'
echo inherited > dd/new
check inherit-file-entry sh -c 'getfacl -cn dd/new | grep -q "^user:1000:rwx.*#effective:rw-"'
check inherit-file-mode-ignores-umask is 660 stat -c %a dd/new
check inherit-chmod-updates-mask sh -c 'echo x > dd/chm && chmod 640 dd/chm && getfacl -cn dd/chm | grep -qx "mask::r--"'
check inherit-file-no-default sh -c '! getfacl -cn -d dd/new | grep -q .'
mkdir dd/sub
check inherit-dir-access sh -c 'getfacl -cn dd/sub | grep -qx "user:1000:rwx"'
check inherit-dir-default sh -c 'getfacl -cn -d dd/sub | grep -qx "user:1000:rwx"'
check inherit-dir-mode is 770 stat -c %a dd/sub
touch dd/sub/deeper
check inherit-nested sh -c 'getfacl -cn dd/sub/deeper | grep -q "^user:1000:rwx"'
mkfifo dd/pipe
check inherit-mknod sh -c 'getfacl -cn dd/pipe | grep -q "^user:1000:rwx"'
ln -s new dd/link
check symlink-no-acl sh -c '! getfattr -h -m - dd/link | grep -q posix_acl'
check inherited-acl-grants is inherited as_user 1000 cat dd/new
check inherited-acl-denies sh -c "! setpriv --reuid=1001 --regid=1001 --clear-groups cat dd/new 2>/dev/null"
touch plain
mkdir plaindir
check umask-file-without-default is 644 stat -c %a plain
check umask-dir-without-default is 755 stat -c %a plaindir
check umask-077 sh -c 'umask 077 && touch u77 && test "$(stat -c %a u77)" = 600'

# Inode flags
echo data > fi
check chattr-immutable chattr +i fi
check lsattr-immutable sh -c 'lsattr -l fi | grep -q Immutable'
check immutable-no-write sh -c '! sh -c "echo x > fi" 2>/dev/null && ! sh -c "echo x >> fi" 2>/dev/null'
check immutable-no-unlink sh -c '! rm -f fi 2>/dev/null && test -e fi'
check immutable-no-rename sh -c '! mv fi fi2 2>/dev/null'
check immutable-no-link sh -c '! ln fi fi.link 2>/dev/null'
check immutable-no-chmod sh -c '! chmod 600 fi 2>/dev/null'
check immutable-no-xattr is EPERM X set fi user.x v
check immutable-other-flag-eperm sh -c '! chattr +d fi 2>/dev/null'
check immutable-content is data cat fi
echo data > fa
check chattr-append chattr +a fa
check append-allows-o-append sh -c 'echo more >> fa && test "$(tail -1 fa)" = more'
check append-no-overwrite sh -c '! sh -c "echo x > fa" 2>/dev/null'
check append-no-truncate sh -c '! truncate -s 0 fa 2>/dev/null'
check append-no-unlink sh -c '! rm -f fa 2>/dev/null && test -e fa'
echo data > fo
check chattr-nodump-noatime-sync chattr +dAS fo
check lsattr-nodump-noatime-sync sh -c 'lsattr -l fo | grep -q "Synchronous_Updates.*No_Dump.*No_Atime"'
check sync-file-writes sh -c 'echo more >> fo && test "$(tail -1 fo)" = more'
check chattr-unsupported-refused sh -c '! chattr +c fo 2>/dev/null && ! lsattr -l fo | grep -q Compress'
touch fu
chown 1000:1000 fu
check owner-sets-nodump as_user 1000 chattr +d fu
check owner-cannot-set-immutable sh -c "! setpriv --reuid=1000 --regid=1000 --clear-groups chattr +i fu 2>/dev/null"
check non-owner-cannot-chattr sh -c "! setpriv --reuid=1001 --regid=1001 --clear-groups chattr -d fu 2>/dev/null"
mkdir di da
touch da/old
check chattr-dir chattr +i di
check immutable-dir-no-create sh -c '! touch di/x 2>/dev/null'
check lsattr-dir sh -c 'lsattr -ld di | grep -q Immutable'
chattr +a da
check append-dir-create touch da/new
check append-dir-no-unlink sh -c '! rm -f da/old 2>/dev/null && test -e da/old'

# Everything survives unmount, fsck and remount.
# Listing orders (readdir cookies, xattr name hashes) are stable, so the
# dumps compare as they are.
dump() {
  getfattr -R -d -m - -h --absolute-names . 2>&1
  getfacl -R -p -n . 2>&1
  lsattr -R . 2>/dev/null
}
before=$(dump)
big_before=$(X md5 f user.big)
cd /
check umount umount "$MNT"
check fsck-clean fsck.ferrofs -n "$DEV1"
check remount mount -t ferrofs "$DEV1" "$MNT"
cd "$MNT" || exit 0
check xattrs-acls-flags-survive test "$before" = "$(dump)"
check value-64k-survives test "$big_before" = "$(X md5 f user.big)"
check immutable-after-remount sh -c '! sh -c "echo x >> fi" 2>/dev/null && ! rm -f fi 2>/dev/null'
check append-after-remount sh -c '! sh -c "echo x > fa" 2>/dev/null && echo again >> fa'
check acl-enforced-after-remount is secret as_user 1000 cat s
check acl-denies-after-remount sh -c "! setpriv --reuid=1001 --regid=1001 --clear-groups cat s 2>/dev/null"
check clear-flags chattr -i -a fi fa di da
check unlink-after-clear rm fi fa
cd /
umount "$MNT"
check fsck-clean-at-end fsck.ferrofs -n "$DEV1"
