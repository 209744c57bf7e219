/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ferrofs ioctls: subvolumes and snapshots. The argument structures and
 * numbers of every ferrofs-specific ioctl; C programs include this file,
 * the kernel module and the ferrofs tool follow it field for field.
 * Documentation/filesystems/ferrofs.rst describes each call.
 *
 * Every structure has reserved fields that must be zero on input (EINVAL
 * otherwise), so later versions can give them a meaning.
 */
#ifndef _UAPI_LINUX_FERROFS_H
#define _UAPI_LINUX_FERROFS_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define FERROFS_IOCTL_MAGIC 0xf5

/* Longest subvolume name, as for any directory entry. */
#define FERROFS_SUBVOL_NAME_MAX 255

/* Subvolume flag: read-only (every change fails with EROFS). */
#define FERROFS_SUBVOL_RDONLY (1ULL << 1)

/* The default subvolume, the one mkfs makes. */
#define FERROFS_FS_TREE_OBJECTID 5ULL

/*
 * Create, snapshot and delete. The ioctl is made on an open directory
 * (the parent of the new or deleted name).
 *
 * SUBVOL_CREATE: creates an empty subvolume "name" in the directory.
 * SNAP_CREATE:   snapshots the subvolume that "fd" (an open file or
 *                directory) belongs to as "name" in the directory;
 *                flags may hold FERROFS_SUBVOL_RDONLY.
 * SUBVOL_DELETE: deletes subvolume "name" in the directory; its space is
 *                freed in the background. Needs CAP_SYS_ADMIN.
 * The id of the new subvolume is returned in "subvolid".
 */
struct ferrofs_ioctl_vol_args {
	__s64 fd;		/* in: snapshot source (SNAP_CREATE); else 0 */
	__u64 flags;		/* in: FERROFS_SUBVOL_RDONLY (SNAP_CREATE); else 0 */
	__u64 subvolid;		/* out: the new subvolume's id */
	__u64 reserved[5];	/* must be zero */
	char name[FERROFS_SUBVOL_NAME_MAX + 1];	/* NUL-terminated */
};

struct ferrofs_ioctl_timespec {
	__s64 sec;
	__u32 nsec;
	__u32 reserved;
};

/*
 * GET_SUBVOL_INFO: on any open file or directory, what the subvolume it
 * belongs to is. LIST_SUBVOLS fills an array of these.
 */
struct ferrofs_ioctl_subvol_info {
	__u64 subvolid;
	__u64 parent_id;	/* subvolume holding its name; 0 for the default */
	__u64 dirid;		/* directory in the parent holding the name */
	__u64 flags;		/* FERROFS_SUBVOL_RDONLY */
	__u64 generation;	/* generation of its tree's root */
	__u64 ctransid;		/* transaction of the last change */
	__u64 otransid;		/* transaction that created it */
	__u64 stransid;		/* sender's transaction (received subvolumes) */
	__u64 rtransid;		/* transaction that received it */
	__u8 uuid[16];
	__u8 parent_uuid[16];	/* the snapshot's source; zero if none */
	__u8 received_uuid[16];
	struct ferrofs_ioctl_timespec ctime;
	struct ferrofs_ioctl_timespec otime;
	struct ferrofs_ioctl_timespec stime;
	struct ferrofs_ioctl_timespec rtime;
	__u64 reserved[8];
	char name[FERROFS_SUBVOL_NAME_MAX + 1];	/* empty for the default */
};

/*
 * LIST_SUBVOLS: on any open file or directory of the filesystem, the live
 * subvolumes with ids >= start_id, in id order, at most "count" of them,
 * written to the array at "entries". On return "count" is how many were
 * written and FERROFS_LIST_MORE in "flags" says more follow (call again
 * with start_id one past the last id). Needs CAP_SYS_ADMIN.
 */
#define FERROFS_LIST_MORE (1U << 0)

struct ferrofs_ioctl_subvol_list {
	__u64 start_id;		/* in */
	__u32 count;		/* in: room in entries; out: entries written */
	__u32 flags;		/* in: zero; out: FERROFS_LIST_MORE */
	__u64 entries;		/* in: user pointer to struct ferrofs_ioctl_subvol_info[count] */
	__u64 reserved[4];	/* must be zero */
};

/*
 * SEND: on an open file or directory of a read-only snapshot, writes the
 * send stream that recreates it (the btrfs send stream format, version 1
 * or 2) to "send_fd", a file or pipe open for writing. With "parent_root"
 * (the subvolume id of another read-only snapshot of this filesystem) the
 * stream is incremental: it turns the parent, as the receiver has it, into
 * the snapshot. "clone_sources" names up to FERROFS_SEND_MAX_CLONE_SOURCES
 * read-only snapshots the receiver has: blocks they share with the
 * snapshot are sent as CLONE. With FERROFS_SEND_FLAG_RESUME the stream
 * goes on from where an interrupted transfer stopped: SUBVOL/SNAPSHOT, a
 * SET_XATTR "user.ferrofs.resume" on the top directory, then the stream
 * from command "resume_commands" on, after checking that the command
 * before has the CRC "resume_crc" (EINVAL if not: another snapshot, parent,
 * clone source or option). A signal stops the send with EINTR.
 * Needs CAP_SYS_ADMIN.
 */
#define FERROFS_SEND_FLAG_NO_FILE_DATA		0x1	/* UPDATE_EXTENT instead of WRITE */
#define FERROFS_SEND_FLAG_OMIT_STREAM_HEADER	0x2
#define FERROFS_SEND_FLAG_OMIT_END_CMD		0x4
#define FERROFS_SEND_FLAG_VERSION		0x8	/* "version" is valid */
#define FERROFS_SEND_FLAG_RESUME		0x10	/* "resume_commands" is valid */
#define FERROFS_SEND_MAX_CLONE_SOURCES		64

struct ferrofs_ioctl_send_args {
	__s64 send_fd;			/* in */
	__u64 clone_sources_count;	/* in */
	__u64 clone_sources;		/* in: user pointer to __u64[clone_sources_count] */
	__u64 parent_root;		/* in: subvolume id; 0 for a full send */
	__u64 flags;			/* in: FERROFS_SEND_FLAG_* */
	__u32 version;			/* in: 1 or 2, with FERROFS_SEND_FLAG_VERSION */
	__u32 resume_crc;		/* in: with FERROFS_SEND_FLAG_RESUME, the CRC of the
					 * last command the receiver applied; else 0 */
	__u64 resume_commands;		/* in: with FERROFS_SEND_FLAG_RESUME, commands after
					 * SUBVOL/SNAPSHOT the receiver has, left out; else 0 */
	__u64 reserved[3];		/* must be zero */
};

/*
 * SET_RECEIVED_SUBVOL: on the root directory of a writable subvolume,
 * records that it was received from a send stream: the sender's UUID and
 * transid (what the stream's SUBVOL or SNAPSHOT command gives) and send
 * time. The kernel returns the transaction and time it recorded them in.
 * Later incremental streams find their parent by this UUID. The owner of
 * the root directory or CAP_SYS_ADMIN; EROFS for a read-only subvolume.
 */
struct ferrofs_ioctl_received_subvol_args {
	__u8 uuid[16];				/* in */
	__u64 stransid;				/* in */
	__u64 rtransid;				/* out */
	struct ferrofs_ioctl_timespec stime;	/* in */
	struct ferrofs_ioctl_timespec rtime;	/* out */
	__u64 flags;				/* must be zero */
	__u64 reserved[16];			/* must be zero */
};

#define FERROFS_IOC_SUBVOL_CREATE _IOWR(FERROFS_IOCTL_MAGIC, 1, struct ferrofs_ioctl_vol_args)
#define FERROFS_IOC_SNAP_CREATE _IOWR(FERROFS_IOCTL_MAGIC, 2, struct ferrofs_ioctl_vol_args)
#define FERROFS_IOC_SUBVOL_DELETE _IOW(FERROFS_IOCTL_MAGIC, 3, struct ferrofs_ioctl_vol_args)
/* Flags of the subvolume an open file belongs to (FERROFS_SUBVOL_RDONLY). */
#define FERROFS_IOC_SUBVOL_GETFLAGS _IOR(FERROFS_IOCTL_MAGIC, 4, __u64)
/* Sets them: the owner of the subvolume's root directory or CAP_SYS_ADMIN. */
#define FERROFS_IOC_SUBVOL_SETFLAGS _IOW(FERROFS_IOCTL_MAGIC, 5, __u64)
#define FERROFS_IOC_GET_SUBVOL_INFO _IOR(FERROFS_IOCTL_MAGIC, 6, struct ferrofs_ioctl_subvol_info)
#define FERROFS_IOC_LIST_SUBVOLS _IOWR(FERROFS_IOCTL_MAGIC, 7, struct ferrofs_ioctl_subvol_list)
#define FERROFS_IOC_SEND _IOW(FERROFS_IOCTL_MAGIC, 8, struct ferrofs_ioctl_send_args)
#define FERROFS_IOC_SET_RECEIVED_SUBVOL _IOWR(FERROFS_IOCTL_MAGIC, 9, struct ferrofs_ioctl_received_subvol_args)

#endif /* _UAPI_LINUX_FERROFS_H */
