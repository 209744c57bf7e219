// SPDX-License-Identifier: GPL-2.0
/*
 * read_iter and write_iter helpers (see ferrofs_shim_dio.h): the kiocb and
 * iov_iter accessors, the generic write checks and sync, the direct-I/O
 * alignment rule, the page-cache invalidation around direct I/O, and the
 * bios of an asynchronous direct read into the caller's pinned pages.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include "ferrofs_shim.h"

int ferrofs_file_open(struct inode *inode, struct file *file)
{
	/* read_iter and write_iter serve IOCB_DIRECT themselves; ferrofs has
	 * no ->direct_IO, so do_dentry_open would refuse O_DIRECT without this.
	 * IOCB_NOWAIT is honoured (read_iter and write_iter say EAGAIN or
	 * EOPNOTSUPP where they would block), so io_uring may issue from its
	 * submitter rather than from a worker. */
	file->f_mode |= FMODE_CAN_ODIRECT | FMODE_NOWAIT;
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

bool ferrofs_kiocb_may_complete_later(const struct kiocb *iocb)
{
	return !is_sync_kiocb((struct kiocb *)iocb) && !iocb_is_dsync(iocb);
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

bool ferrofs_inode_trylock_shared(struct inode *inode)
{
	return inode_trylock_shared(inode);
}

bool ferrofs_range_needs_writeback(struct inode *inode, loff_t start, loff_t end)
{
	return filemap_range_needs_writeback(inode->i_mapping, start, end);
}

void ferrofs_inode_unlock_shared(struct inode *inode)
{
	inode_unlock_shared(inode);
}

int ferrofs_invalidate_range(struct inode *inode, loff_t start, loff_t end)
{
	return invalidate_inode_pages2_range(inode->i_mapping, start >> PAGE_SHIFT, end >> PAGE_SHIFT);
}

/*
 * An asynchronous direct read (ferrofs_dread_submit): @pending counts its
 * bios plus one the submitter holds until all are out, so the end runs
 * once, after the last bio: the read's pin on its blocks is dropped, then
 * the request completed.
 */
struct ferrofs_dread {
	struct kiocb *iocb;
	atomic_t pending;
	/* Set by a failed bio. */
	atomic_t failed;
	/* What the request completes with when no bio failed. */
	long res;
	/* The caller's pages are dirtied after the read (user memory). */
	bool dirty;
	void (*unpin)(void *owner);
	void *owner;
};

static void ferrofs_dread_put(struct ferrofs_dread *r)
{
	if (!atomic_dec_and_test(&r->pending))
		return;
	/* The blocks may be handed out again once no bio reads them. */
	r->unpin(r->owner);
	r->iocb->ki_complete(r->iocb, atomic_read(&r->failed) ? -EIO : r->res);
	kfree(r);
}

static void ferrofs_dread_end_io(struct bio *bio)
{
	struct ferrofs_dread *r = bio->bi_private;

	if (bio->bi_status)
		atomic_set(&r->failed, 1);
	if (r->dirty) {
		bio_check_pages_dirty(bio);
	} else {
		bio_release_pages(bio, false);
		bio_put(bio);
	}
	ferrofs_dread_put(r);
}

/* Reads @len bytes from byte @disk straight into the next @len bytes of
 * @iter, in as many bios as the pages need; 0 or a negative errno (then
 * what was submitted still runs and counts in @r). */
static int ferrofs_dread_run(struct super_block *sb, struct ferrofs_dread *r, struct iov_iter *iter, u64 disk, u64 len)
{
	while (len) {
		struct bio *bio = bio_alloc(sb->s_bdev, bio_iov_vecs_to_alloc(iter, BIO_MAX_VECS), REQ_OP_READ, GFP_NOFS);
		size_t count = iov_iter_count(iter), got;
		int ret;

		bio->bi_iter.bi_sector = disk >> SECTOR_SHIFT;
		bio->bi_private = r;
		bio->bi_end_io = ferrofs_dread_end_io;
		iov_iter_truncate(iter, len);
		ret = bio_iov_iter_get_pages(bio, iter);
		got = bio->bi_iter.bi_size;
		iov_iter_reexpand(iter, count - got);
		if (ret || !got) {
			bio_release_pages(bio, false);
			bio_put(bio);
			return ret ? ret : -EFAULT;
		}
		if (r->dirty)
			bio_set_pages_dirty(bio);
		atomic_inc(&r->pending);
		submit_bio(bio);
		disk += got;
		len -= got;
	}
	return 0;
}

/* Whether the runs are whole sectors within the device and @iter holds them. */
static bool ferrofs_dread_runs_ok(struct super_block *sb, const struct iov_iter *iter,
				  const struct ferrofs_drun *runs, size_t n)
{
	u64 dev_bytes = bdev_nr_bytes(sb->s_bdev), total = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct ferrofs_drun *rn = &runs[i];

		if (rn->len & (SECTOR_SIZE - 1) || rn->len > iov_iter_count(iter) - total)
			return false;
		total += rn->len;
		if (rn->disk == FERROFS_DREAD_HOLE)
			continue;
		if ((rn->disk & (SECTOR_SIZE - 1)) || rn->disk > dev_bytes || rn->len > dev_bytes - rn->disk)
			return false;
	}
	return true;
}

int ferrofs_dread_submit(struct super_block *sb, struct kiocb *iocb, struct iov_iter *iter,
			 const struct ferrofs_drun *runs, size_t n, long res, void (*unpin)(void *owner), void *owner)
{
	struct ferrofs_dread *r;
	struct blk_plug plug;
	size_t i;
	int ret = 0;

	if (!ferrofs_dread_runs_ok(sb, iter, runs, n)) {
		unpin(owner);
		return -EINVAL;
	}
	r = kmalloc(sizeof(*r), GFP_NOFS);
	if (!r) {
		unpin(owner);
		return -ENOMEM;
	}
	r->iocb = iocb;
	r->res = res;
	r->dirty = user_backed_iter(iter);
	r->unpin = unpin;
	r->owner = owner;
	atomic_set(&r->failed, 0);
	atomic_set(&r->pending, 1);
	blk_start_plug(&plug);
	for (i = 0; i < n && !ret; i++) {
		if (runs[i].disk != FERROFS_DREAD_HOLE)
			ret = ferrofs_dread_run(sb, r, iter, runs[i].disk, runs[i].len);
		else if (iov_iter_zero(runs[i].len, iter) != runs[i].len)
			ret = -EFAULT;
	}
	blk_finish_plug(&plug);
	if (ret && atomic_read(&r->pending) == 1) {
		/* Nothing submitted: the caller's to report. */
		unpin(owner);
		kfree(r);
		return ret;
	}
	if (ret)
		r->res = ret;
	ferrofs_dread_put(r);
	return -EIOCBQUEUED;
}
