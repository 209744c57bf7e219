// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/fs/ferrofs/<dev>/ for each mounted device: a kobject whose
 * attribute reads go to a Rust callback (see ferrofs_shim_sysfs.h). No
 * logic lives here beyond the kobject's lifetime.
 *
 * Unmount against a reader: kobject_del() removes the directory through
 * kernfs, which waits until every running show() has returned and lets no
 * new one start; only then may the owner go. The kobject itself lives on
 * until its last reference, so it is freed by its release, not by remove.
 */
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/err.h>
#include "ferrofs_shim.h"

/* File numbers: the enum gives initialisers a constant, the export Rust. */
enum { FERROFS_SYSFS_FILE_FSYNC_STATS, FERROFS_SYSFS_FILE_READ_CALLS };
const unsigned int FERROFS_SYSFS_FSYNC_STATS = FERROFS_SYSFS_FILE_FSYNC_STATS;
const unsigned int FERROFS_SYSFS_READ_CALLS = FERROFS_SYSFS_FILE_READ_CALLS;

struct ferrofs_sysfs {
	struct kobject kobj;
	void *owner;
	ssize_t (*show)(void *owner, unsigned int file, char *buf, size_t len);
};

struct ferrofs_sysfs_file {
	struct attribute attr;
	unsigned int file;
};

static struct ferrofs_sysfs_file ferrofs_fsync_stats = {
	.attr = { .name = "fsync_stats", .mode = 0444 },
	.file = FERROFS_SYSFS_FILE_FSYNC_STATS,
};

static struct ferrofs_sysfs_file ferrofs_read_calls = {
	.attr = { .name = "read_calls", .mode = 0444 },
	.file = FERROFS_SYSFS_FILE_READ_CALLS,
};

static struct attribute *ferrofs_sysfs_attrs[] = {
	&ferrofs_fsync_stats.attr,
	&ferrofs_read_calls.attr,
	NULL,
};
ATTRIBUTE_GROUPS(ferrofs_sysfs);

static ssize_t ferrofs_sysfs_attr_show(struct kobject *kobj, struct attribute *attr, char *buf)
{
	struct ferrofs_sysfs *dir = container_of(kobj, struct ferrofs_sysfs, kobj);
	struct ferrofs_sysfs_file *f = container_of(attr, struct ferrofs_sysfs_file, attr);

	return dir->show(dir->owner, f->file, buf, PAGE_SIZE);
}

static const struct sysfs_ops ferrofs_sysfs_ops = {
	.show = ferrofs_sysfs_attr_show,
};

static void ferrofs_sysfs_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct ferrofs_sysfs, kobj));
}

static const struct kobj_type ferrofs_sysfs_type = {
	.sysfs_ops = &ferrofs_sysfs_ops,
	.default_groups = ferrofs_sysfs_groups,
	.release = ferrofs_sysfs_release,
};

static struct kobject *ferrofs_sysfs_root;

int ferrofs_sysfs_init(void)
{
	ferrofs_sysfs_root = kobject_create_and_add("ferrofs", fs_kobj);
	return ferrofs_sysfs_root ? 0 : -ENOMEM;
}

void ferrofs_sysfs_exit(void)
{
	kobject_put(ferrofs_sysfs_root);
	ferrofs_sysfs_root = NULL;
}

struct ferrofs_sysfs *ferrofs_sysfs_add(const char *name, void *owner,
					 ssize_t (*show)(void *owner, unsigned int file, char *buf, size_t len))
{
	struct ferrofs_sysfs *dir = kzalloc(sizeof(*dir), GFP_KERNEL);
	int err;

	if (!dir)
		return ERR_PTR(-ENOMEM);
	dir->owner = owner;
	dir->show = show;
	err = kobject_init_and_add(&dir->kobj, &ferrofs_sysfs_type, ferrofs_sysfs_root, "%s", name);
	if (err) {
		/* The release frees it, as kobject_init_and_add's contract says. */
		kobject_put(&dir->kobj);
		return ERR_PTR(err);
	}
	return dir;
}

void ferrofs_sysfs_remove(struct ferrofs_sysfs *dir)
{
	if (IS_ERR_OR_NULL(dir))
		return;
	kobject_del(&dir->kobj);
	kobject_put(&dir->kobj);
}
