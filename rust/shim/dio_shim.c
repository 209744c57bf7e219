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
#include <linux/workqueue.h>
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
	struct file *file = iocb->ki_filp;
	int ret;

	/* Privileges go through a setattr, which may sleep: IOCB_NOWAIT gets
	 * EAGAIN then. The times do not: ferrofs's update_time only dirties
	 * the inode (the core learns them at write_inode or fsync), so unlike
	 * kiocb_modified, IOCB_NOWAIT does not refuse a write for them, as
	 * ext4's direct writes (file_modified) do not. */
	ret = file_remove_privs_flags(file, iocb->ki_flags);
	if (ret || (file->f_mode & FMODE_NOCMTIME))
		return ret;
	return file_update_time(file);
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

bool ferrofs_inode_trylock(struct inode *inode)
{
	return inode_trylock(inode);
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
 * An asynchronous direct read or in-place write (ferrofs_dio_submit):
 * @pending counts its bios plus one the submitter holds until all are out,
 * so the end runs once, after the last bio: the pin on its blocks is
 * dropped, then the request completed (after a write, from a worker when
 * pages of its range are cached: a read during the write may have cached
 * the old bytes, and dropping them may sleep).
 */
struct ferrofs_dio {
	struct kiocb *iocb;
	atomic_t pending;
	/* Set by a failed bio. */
	atomic_t failed;
	/* What the request completes with when no bio failed. */
	long res;
	/* The caller's pages are dirtied after the read (user memory). */
	bool dirty;
	/* The mount's tracker: the hold count in @hold_slot ends with the
	 * request, and so does a write's count as an overwrite. */
	struct ferrofs_dwrites *t;
	bool overwrite;
	unsigned int hold_slot;
	/* A write's file range, for the cached pages dropped after it. */
	loff_t pos;
	u64 len;
	struct work_struct work;
	/* A synchronous kiocb's submitter waits on @done, then takes @res
	 * and frees the request itself (its kiocb, on the submitter's stack,
	 * lives until then). */
	struct completion done;
};

static void ferrofs_dio_complete(struct ferrofs_dio *r)
{
	long res = atomic_read(&r->failed) ? -EIO : r->res;

	if (is_sync_kiocb(r->iocb)) {
		r->res = res;
		/* The waiter frees @r once woken: nothing touches it after. */
		complete(&r->done);
		return;
	}
	r->iocb->ki_complete(r->iocb, res);
	kfree(r);
}

static void ferrofs_dio_invalidate_work(struct work_struct *work)
{
	struct ferrofs_dio *r = container_of(work, struct ferrofs_dio, work);
	struct address_space *mapping = r->iocb->ki_filp->f_mapping;

	invalidate_inode_pages2_range(mapping, r->pos >> PAGE_SHIFT, (r->pos + r->len - 1) >> PAGE_SHIFT);
	ferrofs_dio_complete(r);
}

static void ferrofs_dio_put(struct ferrofs_dio *r)
{
	if (!atomic_dec_and_test(&r->pending))
		return;
	if (r->overwrite)
		ferrofs_overwrite_end(r->t, !atomic_read(&r->failed));
	/* The blocks may be handed out again once no bio reads them. */
	ferrofs_hold_exit(r->t, r->hold_slot);
	if (r->overwrite && r->len && r->iocb->ki_filp->f_mapping->nrpages) {
		INIT_WORK(&r->work, ferrofs_dio_invalidate_work);
		queue_work(system_unbound_wq, &r->work);
		return;
	}
	ferrofs_dio_complete(r);
}

static void ferrofs_dio_end_io(struct bio *bio)
{
	struct ferrofs_dio *r = bio->bi_private;

	if (bio->bi_status)
		atomic_set(&r->failed, 1);
	if (r->dirty) {
		bio_check_pages_dirty(bio);
	} else {
		bio_release_pages(bio, false);
		bio_put(bio);
	}
	ferrofs_dio_put(r);
}

/* Moves @len bytes between byte @disk and the next @len bytes of @iter, in
 * as many bios as the pages need; 0 or a negative errno (then what was
 * submitted still runs and counts in @r). */
static int ferrofs_dio_run(struct super_block *sb, struct ferrofs_dio *r, struct iov_iter *iter, u64 disk, u64 len)
{
	blk_opf_t op = r->overwrite ? REQ_OP_WRITE | REQ_SYNC | REQ_IDLE : REQ_OP_READ;

	while (len) {
		struct bio *bio = bio_alloc(sb->s_bdev, bio_iov_vecs_to_alloc(iter, BIO_MAX_VECS), op, GFP_NOFS);
		size_t count = iov_iter_count(iter), got;
		int ret;

		bio->bi_iter.bi_sector = disk >> SECTOR_SHIFT;
		bio->bi_private = r;
		bio->bi_end_io = ferrofs_dio_end_io;
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

/* Whether the runs are whole sectors within the device and @iter holds
 * them; a write's runs have no hole. */
static bool ferrofs_dio_runs_ok(struct super_block *sb, const struct iov_iter *iter,
				const struct ferrofs_drun *runs, size_t n, bool write)
{
	u64 dev_bytes = bdev_nr_bytes(sb->s_bdev), total = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct ferrofs_drun *rn = &runs[i];

		if (rn->len & (SECTOR_SIZE - 1) || rn->len > iov_iter_count(iter) - total)
			return false;
		total += rn->len;
		if (rn->disk == FERROFS_DREAD_HOLE && !write)
			continue;
		if ((rn->disk & (SECTOR_SIZE - 1)) || rn->disk > dev_bytes || rn->len > dev_bytes - rn->disk)
			return false;
	}
	return true;
}

int ferrofs_dio_submit(struct super_block *sb, struct kiocb *iocb, struct iov_iter *iter,
		       const struct ferrofs_drun *runs, size_t n, long res, struct ferrofs_dwrites *t, bool overwrite,
		       loff_t pos, unsigned int hold_slot)
{
	struct ferrofs_dio *r;
	struct blk_plug plug;
	size_t i;
	int ret = 0;
	bool sync = is_sync_kiocb(iocb);
	long res_now;

	if (!ferrofs_dio_runs_ok(sb, iter, runs, n, overwrite)) {
		ferrofs_hold_exit(t, hold_slot);
		return -EINVAL;
	}
	r = kmalloc(sizeof(*r), GFP_NOFS);
	if (!r) {
		ferrofs_hold_exit(t, hold_slot);
		return -ENOMEM;
	}
	r->iocb = iocb;
	r->res = res;
	r->dirty = !overwrite && user_backed_iter(iter);
	r->t = t;
	r->overwrite = overwrite;
	r->hold_slot = hold_slot;
	r->pos = pos;
	r->len = 0;
	if (sync)
		init_completion(&r->done);
	atomic_set(&r->failed, 0);
	atomic_set(&r->pending, 1);
	blk_start_plug(&plug);
	for (i = 0; i < n && !ret; i++) {
		if (runs[i].disk != FERROFS_DREAD_HOLE)
			ret = ferrofs_dio_run(sb, r, iter, runs[i].disk, runs[i].len);
		else if (iov_iter_zero(runs[i].len, iter) != runs[i].len)
			ret = -EFAULT;
		if (!ret)
			r->len += runs[i].len;
	}
	blk_finish_plug(&plug);
	if (ret && atomic_read(&r->pending) == 1) {
		/* Nothing submitted: the caller's to report. */
		ferrofs_hold_exit(t, hold_slot);
		kfree(r);
		return ret;
	}
	if (ret)
		r->res = ret;
	/* Asynchronous: @r may be gone once put. */
	ferrofs_dio_put(r);
	if (!sync)
		return -EIOCBQUEUED;
	wait_for_completion_io(&r->done);
	res_now = r->res;
	kfree(r);
	return res_now;
}
