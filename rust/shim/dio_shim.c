// SPDX-License-Identifier: GPL-2.0
/*
 * read_iter and write_iter helpers (see ferrofs_shim_dio.h): the kiocb and
 * iov_iter accessors, the generic write checks and sync, the direct-I/O
 * alignment rule and the page-cache invalidation around direct I/O.
 */
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/uio.h>
#include "ferrofs_shim.h"

int ferrofs_file_open(struct inode *inode, struct file *file)
{
	/* read_iter and write_iter serve IOCB_DIRECT themselves; ferrofs has
	 * no ->direct_IO, so do_dentry_open would refuse O_DIRECT without this. */
	file->f_mode |= FMODE_CAN_ODIRECT;
	return generic_file_open(inode, file);
}

loff_t ferrofs_kiocb_pos(const struct kiocb *iocb)
{
	return iocb->ki_pos;
}

void ferrofs_kiocb_set_pos(struct kiocb *iocb, loff_t pos)
{
	iocb->ki_pos = pos;
}

struct file *ferrofs_kiocb_file(const struct kiocb *iocb)
{
	return iocb->ki_filp;
}

bool ferrofs_kiocb_direct(const struct kiocb *iocb)
{
	return iocb->ki_flags & IOCB_DIRECT;
}

bool ferrofs_kiocb_nowait(const struct kiocb *iocb)
{
	return iocb->ki_flags & IOCB_NOWAIT;
}

ssize_t ferrofs_write_checks(struct kiocb *iocb, struct iov_iter *from)
{
	return generic_write_checks(iocb, from);
}

int ferrofs_kiocb_modified(struct kiocb *iocb)
{
	return kiocb_modified(iocb);
}

ssize_t ferrofs_write_sync(struct kiocb *iocb, ssize_t count)
{
	return generic_write_sync(iocb, count);
}

void ferrofs_kiocb_accessed(struct kiocb *iocb)
{
	file_accessed(iocb->ki_filp);
}

size_t ferrofs_iter_count(const struct iov_iter *iter)
{
	return iov_iter_count(iter);
}

size_t ferrofs_copy_to_iter(const void *addr, size_t bytes, struct iov_iter *iter)
{
	return copy_to_iter(addr, bytes, iter);
}

size_t ferrofs_copy_from_iter(void *addr, size_t bytes, struct iov_iter *iter)
{
	return copy_from_iter(addr, bytes, iter);
}

bool ferrofs_dio_misaligned(const struct kiocb *iocb, const struct iov_iter *iter)
{
	struct block_device *bdev = file_inode(iocb->ki_filp)->i_sb->s_bdev;
	unsigned long mask = bdev_logical_block_size(bdev) - 1;

	return ((unsigned long)iocb->ki_pos | iov_iter_count(iter) | iov_iter_alignment(iter)) & mask;
}

void ferrofs_inode_lock_shared(struct inode *inode)
{
	inode_lock_shared(inode);
}

void ferrofs_inode_unlock_shared(struct inode *inode)
{
	inode_unlock_shared(inode);
}

int ferrofs_invalidate_range(struct inode *inode, loff_t start, loff_t end)
{
	return invalidate_inode_pages2_range(inode->i_mapping, start >> PAGE_SHIFT, end >> PAGE_SHIFT);
}
