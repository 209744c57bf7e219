// SPDX-License-Identifier: GPL-2.0
/*
 * Drives the subvolume ioctls of include/uapi/linux/ferrofs.h from C, for
 * tests/vm/t_60_subvol_kernel.sh (built in the guest with the host's
 * compiler, which also proves the header compiles as C). Prints "OK" and
 * the result, or the errno's name, so the test compares exact outcomes.
 *
 *   subvol_ioctl create DIR NAME            SUBVOL_CREATE; prints the id
 *   subvol_ioctl snap SRC DIR NAME [ro]     SNAP_CREATE of SRC's subvolume
 *   subvol_ioctl snapfd FD DIR NAME         SNAP_CREATE with a raw fd number
 *   subvol_ioctl delete DIR NAME            SUBVOL_DELETE
 *   subvol_ioctl getflags PATH              SUBVOL_GETFLAGS
 *   subvol_ioctl setflags PATH FLAGS        SUBVOL_SETFLAGS
 *   subvol_ioctl info PATH                  GET_SUBVOL_INFO
 *   subvol_ioctl list PATH [START [COUNT]]  LIST_SUBVOLS, one line each
 *   subvol_ioctl bad-create DIR NAME        reserved[2] set: EINVAL
 *   subvol_ioctl bad-list PATH              reserved[0] set: EINVAL
 *   subvol_ioctl bad-list-ptr PATH          entries points nowhere: EFAULT
 *   subvol_ioctl sizes                      the structures' sizes
 *
 * A NAME of 256 characters or more fills the whole name field with no NUL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/ferrofs.h>

static int fail(void)
{
	const char *name = strerrorname_np(errno);

	printf("%s\n", name ? name : "E?");
	return 1;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		perror(path);
		exit(2);
	}
	return fd;
}

static void set_name(struct ferrofs_ioctl_vol_args *a, const char *name)
{
	size_t len = strlen(name);

	if (len >= sizeof(a->name))
		memset(a->name, 'n', sizeof(a->name));
	else
		memcpy(a->name, name, len + 1);
}

/* create, snap, snapfd, delete, bad-create */
static int vol_call(unsigned long req, int dirfd, const char *name, long long srcfd, __u64 flags, int bad)
{
	struct ferrofs_ioctl_vol_args a;

	memset(&a, 0, sizeof(a));
	a.fd = srcfd;
	a.flags = flags;
	if (bad)
		a.reserved[2] = 1;
	set_name(&a, name);
	if (ioctl(dirfd, req, &a) < 0)
		return fail();
	if (req == FERROFS_IOC_SUBVOL_DELETE)
		printf("OK\n");
	else
		printf("OK %llu\n", (unsigned long long)a.subvolid);
	return 0;
}

static void print_info(const struct ferrofs_ioctl_subvol_info *i)
{
	printf("id=%llu parent=%llu dir=%llu flags=%llu name=%s\n", (unsigned long long)i->subvolid,
	       (unsigned long long)i->parent_id, (unsigned long long)i->dirid, (unsigned long long)i->flags,
	       i->name);
}

static int list(int fd, __u64 start, __u32 count, int bad)
{
	struct ferrofs_ioctl_subvol_info *entries = calloc(count ? count : 1, sizeof(*entries));
	struct ferrofs_ioctl_subvol_list l;

	memset(&l, 0, sizeof(l));
	l.start_id = start;
	l.count = count;
	l.entries = bad == 2 ? 8 : (unsigned long)entries;
	if (bad == 1)
		l.reserved[0] = 1;
	if (ioctl(fd, FERROFS_IOC_LIST_SUBVOLS, &l) < 0)
		return fail();
	printf("OK count=%u more=%u\n", l.count, l.flags & FERROFS_LIST_MORE ? 1 : 0);
	for (__u32 i = 0; i < l.count; i++)
		print_info(&entries[i]);
	free(entries);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "sizes")) {
		printf("vol_args=%zu subvol_info=%zu subvol_list=%zu\n", sizeof(struct ferrofs_ioctl_vol_args),
		       sizeof(struct ferrofs_ioctl_subvol_info), sizeof(struct ferrofs_ioctl_subvol_list));
		return 0;
	}
	if (!strcmp(cmd, "create") && argc == 4)
		return vol_call(FERROFS_IOC_SUBVOL_CREATE, open_dir(argv[2]), argv[3], 0, 0, 0);
	if (!strcmp(cmd, "bad-create") && argc == 4)
		return vol_call(FERROFS_IOC_SUBVOL_CREATE, open_dir(argv[2]), argv[3], 0, 0, 1);
	if (!strcmp(cmd, "snap") && (argc == 5 || argc == 6)) {
		int src = open_dir(argv[2]);
		__u64 flags = argc == 6 && !strcmp(argv[5], "ro") ? FERROFS_SUBVOL_RDONLY : 0;

		return vol_call(FERROFS_IOC_SNAP_CREATE, open_dir(argv[3]), argv[4], src, flags, 0);
	}
	if (!strcmp(cmd, "snapfd") && argc == 5)
		return vol_call(FERROFS_IOC_SNAP_CREATE, open_dir(argv[3]), argv[4], atoll(argv[2]), 0, 0);
	if (!strcmp(cmd, "delete") && argc == 4)
		return vol_call(FERROFS_IOC_SUBVOL_DELETE, open_dir(argv[2]), argv[3], 0, 0, 0);
	if (!strcmp(cmd, "getflags") && argc == 3) {
		__u64 flags = 0;

		if (ioctl(open_dir(argv[2]), FERROFS_IOC_SUBVOL_GETFLAGS, &flags) < 0)
			return fail();
		printf("OK %llu\n", (unsigned long long)flags);
		return 0;
	}
	if (!strcmp(cmd, "setflags") && argc == 4) {
		__u64 flags = strtoull(argv[3], NULL, 0);

		if (ioctl(open_dir(argv[2]), FERROFS_IOC_SUBVOL_SETFLAGS, &flags) < 0)
			return fail();
		printf("OK\n");
		return 0;
	}
	if (!strcmp(cmd, "info") && argc == 3) {
		struct ferrofs_ioctl_subvol_info i;

		if (ioctl(open_dir(argv[2]), FERROFS_IOC_GET_SUBVOL_INFO, &i) < 0)
			return fail();
		printf("OK ");
		print_info(&i);
		return 0;
	}
	if (!strcmp(cmd, "list") && argc >= 3 && argc <= 5)
		return list(open_dir(argv[2]), argc > 3 ? strtoull(argv[3], NULL, 0) : 0,
			    argc > 4 ? strtoul(argv[4], NULL, 0) : 64, 0);
	if (!strcmp(cmd, "bad-list") && argc == 3)
		return list(open_dir(argv[2]), 0, 4, 1);
	if (!strcmp(cmd, "bad-list-ptr") && argc == 3)
		return list(open_dir(argv[2]), 0, 4, 2);
	fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
	return 2;
}
