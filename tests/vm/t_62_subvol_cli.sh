# `ferrofs subvolume` on a mounted filesystem, as a user runs it: create,
# snapshot (writable, read-only, into a directory), list and list --json,
# show and show --json, the read-only flag, delete, and the refusals of the
# CLI (not a subvolume, not ferrofs) and of the kernel (exists, read-only,
# unprivileged list); everything left survives unmount, fsck and remount.
. "$(dirname "$0")/lib.sh"
is() { # expected command...: the command prints exactly that (stdout and stderr)
  local want=$1; shift
  test "$("$@" 2>&1)" = "$want"
}
fails_with() { # message command...: exit status 1 and the message on stderr, nothing on stdout
  local want=$1 out status; shift
  out=$("$@" 2>/tmp/subvol-err)
  status=$?
  [ "$status" = 1 ] && [ -z "$out" ] && grep -qF -- "$want" /tmp/subvol-err
}
# Field $2 of `show --json $1`: null, true/false, or the value.
field() {
  ferrofs subvolume show --json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)[sys.argv[1]]
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$2"
}
# `list --json` holds exactly the paths given, with distinct ids and uuids,
# and the fields of show --json (spot-checked against show for each).
list_json_is() {
  ferrofs subvolume list --json "$MNT" | python3 -c '
import json, subprocess, sys
listed = json.load(sys.stdin)
assert isinstance(listed, list), listed
assert sorted(s["path"] for s in listed) == sorted(sys.argv[2:]), [s["path"] for s in listed]
assert len({s["id"] for s in listed}) == len(listed)
assert len({s["uuid"] for s in listed}) == len(listed)
for s in listed:
    assert s["otime"] is not None and s["otransid"] > 0, s
    if "<" in s["path"]:
        continue
    shown = json.loads(subprocess.check_output(["ferrofs", "subvolume", "show", "--json", sys.argv[1] + "/" + s["path"]]))
    assert dict(shown, path=s["path"]) == s, (shown, s)' "$MNT" "$@"
}

mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail subvol-mount; exit 0; }
cd / || exit 0
echo top > "$MNT/topfile"

# create
check create is "Create subvolume '$MNT/sub'" ferrofs subvolume create "$MNT/sub"
check create-is-a-directory test -d "$MNT/sub"
check create-root-is-inode-256 test "$(stat -c %i "$MNT/sub")" = 256
check create-is-empty test -z "$(ls -A "$MNT/sub")"
check create-trailing-slash is "Create subvolume '$MNT/sub2'" ferrofs subvolume create "$MNT/sub2/"
check create-relative sh -c "cd $MNT && test \"\$(ferrofs subvolume create rel)\" = \"Create subvolume './rel'\""
check create-exists fails_with "cannot create subvolume '$MNT/sub': File exists" ferrofs subvolume create "$MNT/sub"
check create-missing-parent fails_with "'$MNT/nodir': No such file or directory" ferrofs subvolume create "$MNT/nodir/x"
mkdir "$MNT/dir"
check create-in-a-directory ferrofs subvolume create "$MNT/dir/nested"
check create-nested-in-subvolume ferrofs subvolume create "$MNT/sub/inner"
dir_ino=$(stat -c %i "$MNT/dir")

# snapshot
echo one > "$MNT/sub/file"
mkdir "$MNT/sub/plain"
check snapshot is "Create a snapshot of '$MNT/sub' in '$MNT/snap'" ferrofs subvolume snapshot "$MNT/sub" "$MNT/snap"
check snapshot-has-the-data test "$(cat "$MNT/snap/file")" = one
check snapshot-root-is-inode-256 test "$(stat -c %i "$MNT/snap")" = 256
echo two > "$MNT/sub/file"
echo three > "$MNT/snap/file"
check snapshot-is-independent test "$(cat "$MNT/sub/file"):$(cat "$MNT/snap/file")" = two:three
mkdir "$MNT/snaps"
snaps_ino=$(stat -c %i "$MNT/snaps")
check snapshot-into-directory is "Create a readonly snapshot of '$MNT/sub' in '$MNT/snaps/sub'" \
  ferrofs subvolume snapshot -r "$MNT/sub" "$MNT/snaps"
check snapshot-readonly-refuses-writes sh -c "(echo x > $MNT/snaps/sub/new) 2>&1 | grep -q 'Read-only file system' && test ! -e $MNT/snaps/sub/new"
check snapshot-readonly-data test "$(cat "$MNT/snaps/sub/file")" = two
check snapshot-of-the-default is "Create a snapshot of '$MNT' in '$MNT/snaps/top'" ferrofs subvolume snapshot "$MNT" "$MNT/snaps/top"
check snapshot-of-the-default-data test "$(cat "$MNT/snaps/top/topfile")" = top
# Any directory names the subvolume it is in: the CLI refuses one that is
# not a subvolume's root rather than snapshot the whole subvolume.
check snapshot-not-a-subvolume fails_with "'$MNT/sub/plain' is not a subvolume" \
  ferrofs subvolume snapshot "$MNT/sub/plain" "$MNT/bad"
check snapshot-not-a-subvolume-file fails_with "'$MNT/sub/file' is not a subvolume" \
  ferrofs subvolume snapshot "$MNT/sub/file" "$MNT/bad"
check snapshot-not-a-subvolume-made-nothing test ! -e "$MNT/bad"
# DEST an existing directory holding the name already (an existing
# directory DEST itself would get the snapshot inside it, as SOURCE's name).
check snapshot-exists fails_with "File exists" ferrofs subvolume snapshot "$MNT/sub" "$MNT/snaps"
check snapshot-from-elsewhere fails_with "'/tmp' is not on a ferrofs filesystem" ferrofs subvolume snapshot /tmp "$MNT/bad"

# read-only flag
check get-readonly-snapshot is true ferrofs subvolume get-readonly "$MNT/snaps/sub"
check get-readonly-any-file is true ferrofs subvolume get-readonly "$MNT/snaps/sub/file"
check get-readonly-writable is false ferrofs subvolume get-readonly "$MNT/sub"
check set-readonly-false sh -c "ferrofs subvolume set-readonly $MNT/snaps/sub false && echo x > $MNT/snaps/sub/new"
check set-readonly-true sh -c "ferrofs subvolume set-readonly $MNT/snaps/sub true && test \"\$(ferrofs subvolume get-readonly $MNT/snaps/sub)\" = true"
check set-readonly-again-is-quiet is "" ferrofs subvolume set-readonly "$MNT/snaps/sub" true
check set-readonly-not-a-subvolume fails_with "'$MNT/sub/plain' is not a subvolume" ferrofs subvolume set-readonly "$MNT/sub/plain" true
check set-readonly-not-a-subvolume-unchanged is false ferrofs subvolume get-readonly "$MNT/sub"

# show
check show-text sh -c "ferrofs subvolume show $MNT/snap | grep -q '^	Name: *snap$'"
check show-text-flags sh -c "ferrofs subvolume show $MNT/snaps/sub | grep -q '^	Flags: *readonly$'"
check show-json-one-object sh -c "ferrofs subvolume show --json $MNT/sub | python3 -c 'import json,sys; assert isinstance(json.load(sys.stdin), dict)'"
check show-json-name test "$(field "$MNT/sub" name)" = sub
check show-json-uuids-differ test "$(field "$MNT/sub" uuid)" != "$(field "$MNT/snap" uuid)"
check show-json-snapshot-parent-uuid test "$(field "$MNT/snap" parent_uuid)" = "$(field "$MNT/sub" uuid)"
check show-json-readonly-parent-uuid test "$(field "$MNT/snaps/sub" parent_uuid)" = "$(field "$MNT/sub" uuid)"
check show-json-no-parent-uuid test "$(field "$MNT/sub" parent_uuid)" = null
check show-json-readonly test "$(field "$MNT/snaps/sub" readonly):$(field "$MNT/snap" readonly)" = true:false
check show-json-parent-id test "$(field "$MNT/sub/inner" parent_id)" = "$(field "$MNT/sub" id)"
check show-json-gen-at-creation test "$(field "$MNT/snap" otransid)" -ge "$(field "$MNT/sub" otransid)"
check show-json-any-file test "$(field "$MNT/sub/plain" id)" = "$(field "$MNT/sub" id)"
check show-json-default test "$(field "$MNT" id):$(field "$MNT" name):$(field "$MNT" parent_id)" = "5::0"
check show-json-dirid test "$(field "$MNT/dir/nested" dirid)" = "$dir_ino"

# list: a name kept in a directory other than its parent subvolume's root
# shows that directory as <dir:INODE> (the interface names no directories).
paths=(sub sub2 rel "<dir:$dir_ino>/nested" sub/inner snap "<dir:$snaps_ino>/sub" "<dir:$snaps_ino>/top")
check list-text-lines test "$(ferrofs subvolume list "$MNT" | wc -l)" = ${#paths[@]}
check list-text-format sh -c "ferrofs subvolume list $MNT | grep -Eq '^ID $(field "$MNT/sub" id) gen [0-9]+ parent 5 top level 5 path sub\$'"
check list-text-nested sh -c "ferrofs subvolume list $MNT | grep -Eq ' parent $(field "$MNT/sub" id) top level $(field "$MNT/sub" id) path sub/inner\$'"
check list-text-in-a-directory sh -c "ferrofs subvolume list $MNT | grep -q ' path <dir:$dir_ino>/nested\$'"
check list-json list_json_is "${paths[@]}"
check list-from-any-file test "$(ferrofs subvolume list "$MNT/sub/file")" = "$(ferrofs subvolume list "$MNT")"
check list-unprivileged fails_with "Operation not permitted" setpriv --reuid=1000 --regid=1000 --clear-groups ferrofs subvolume list "$MNT"

# delete
check delete is "Delete subvolume '$MNT/snap'" ferrofs subvolume delete "$MNT/snap"
check delete-gone test ! -e "$MNT/snap"
check delete-relative sh -c "cd $MNT && test \"\$(ferrofs subvolume delete rel)\" = \"Delete subvolume '$MNT/rel'\""
check delete-several ferrofs subvolume delete "$MNT/sub2" "$MNT/snaps/top"
check delete-readonly-snapshot ferrofs subvolume delete "$MNT/snaps/sub"
check delete-not-a-subvolume fails_with "'$MNT/sub/plain' is not a subvolume" ferrofs subvolume delete "$MNT/sub/plain"
check delete-not-a-subvolume-kept test -d "$MNT/sub/plain"
check delete-missing fails_with "No such file or directory" ferrofs subvolume delete "$MNT/snap"
check delete-the-default fails_with "the default subvolume cannot be deleted" ferrofs subvolume delete "$MNT"
check delete-one-bad-of-two sh -c "! ferrofs subvolume delete $MNT/missing $MNT/dir/nested 2>/dev/null && test ! -e $MNT/dir/nested"
check list-after-delete list_json_is sub sub/inner
check delete-elsewhere fails_with "'/tmp' is not on a ferrofs filesystem" ferrofs subvolume delete /tmp

# not ferrofs at all
check create-elsewhere fails_with "'/tmp' is not on a ferrofs filesystem" ferrofs subvolume create /tmp/ferrofs-subvol-x
check create-elsewhere-made-nothing test ! -e /tmp/ferrofs-subvol-x
check show-elsewhere fails_with "'/tmp' is not on a ferrofs filesystem" ferrofs subvolume show /tmp

# What is left survives.
listing_before=$(ferrofs subvolume list "$MNT")
check umount umount "$MNT"
check fsck-clean fsck.ferrofs -n "$DEV1"
check remount mount -t ferrofs "$DEV1" "$MNT"
check list-survives-remount test "$(ferrofs subvolume list "$MNT")" = "$listing_before"
check data-survives-remount test "$(cat "$MNT/sub/file")" = two
umount "$MNT"
