/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for read_iter and write_iter, buffered or direct (O_DIRECT): the
 * request (kiocb), the user buffer (iov_iter), the direct-I/O alignment
 * rule, the page-cache coherency steps around a direct transfer, and
 * asynchronous direct reads straight into the caller's pages.
 * Included by ferrofs_shim.h; implemented in dio_shim.c.
 */
#ifndef FERROFS_SHIM_DIO_H
#define FERROFS_SHIM_DIO_H

#include <linux/fs.h>
#include <linux/uio.h>
#include <linux/workqueue.h>

/* open: a regular file may be opened with O_DIRECT (FMODE_CAN_ODIRECT). */
int ferrofs_file_open(struct inode *inode, struct file *file);

/* The request */
loff_t ferrofs_kiocb_pos(const struct kiocb *iocb);
void ferrofs_kiocb_set_pos(struct kiocb *iocb, loff_t pos);
struct file *ferrofs_kiocb_file(const struct kiocb *iocb);
bool ferrofs_kiocb_direct(const struct kiocb *iocb);
bool ferrofs_kiocb_nowait(const struct kiocb *iocb);
/* Whether the request may end after read_iter or write_iter returned
 * (-EIOCBQUEUED, then ki_complete): an asynchronous one (io_uring, Linux
 * AIO) that asks for no O_SYNC or O_DSYNC. */
bool ferrofs_kiocb_may_complete_later(const struct kiocb *iocb);
/* generic_write_checks: the bytes to write (the iter truncated to the
 * limits, ki_pos moved to EOF for O_APPEND), 0, or a negative errno. */
ssize_t ferrofs_write_checks(struct kiocb *iocb, struct iov_iter *from);
/* kiocb_modified, but IOCB_NOWAIT refuses (EAGAIN) only a removal of
 * privileges, not an update of the times, which never sleeps here. */
int ferrofs_kiocb_modified(struct kiocb *iocb);
/* generic_write_sync: O_SYNC, O_DSYNC and RWF_*SYNC after a write. */
ssize_t ferrofs_write_sync(struct kiocb *iocb, ssize_t count);
/* file_accessed: atime after a read. */
void ferrofs_kiocb_accessed(struct kiocb *iocb);

/* The user buffer */
size_t ferrofs_iter_count(const struct iov_iter *iter);
size_t ferrofs_copy_to_iter(const void *addr, size_t bytes, struct iov_iter *iter);
size_t ferrofs_copy_from_iter(void *addr, size_t bytes, struct iov_iter *iter);

/*
 * Whether a direct transfer of @iter at the request's position breaks the
 * rule: position, length and every user segment's address and length
 * multiples of the device's logical block size.
 */
bool ferrofs_dio_misaligned(const struct kiocb *iocb, const struct iov_iter *iter);

/* i_rwsem shared (a direct read) */
void ferrofs_inode_lock_shared(struct inode *inode);
void ferrofs_inode_unlock_shared(struct inode *inode);
/* inode_trylock_shared: true when taken. */
bool ferrofs_inode_trylock_shared(struct inode *inode);
/* inode_trylock (i_rwsem exclusive): true when taken. */
bool ferrofs_inode_trylock(struct inode *inode);
/* Whether bytes @start..=@end have dirty pages or pages under writeback
 * (filemap_range_needs_writeback). */
bool ferrofs_range_needs_writeback(struct inode *inode, loff_t start, loff_t end);

/* Drops the page cache of bytes @start..=@end (invalidate_inode_pages2_range):
 * 0, or -EBUSY when a page could not be dropped (mapped and dirtied again). */
int ferrofs_invalidate_range(struct inode *inode, loff_t start, loff_t end);

/*
 * Asynchronous direct I/O. One run: @len bytes (whole sectors) at byte
 * @disk of the device, or, for a read, zeros for a hole
 * (@disk == FERROFS_DREAD_HOLE).
 */
#define FERROFS_DREAD_HOLE U64_MAX
struct ferrofs_drun {
	u64 disk;
	u64 len;
};
struct ferrofs_dwrites;
/*
 * Moves @n runs, in order, between the device and the caller's memory
 * under @iter (its pages pinned for the bios; a read's holes zeroed now):
 * a read, or with @overwrite an in-place write of the file range from
 * byte @pos, counted in @t by the caller (ferrofs_overwrite_begin), which
 * count ends with the last bio when this returns -EIOCBQUEUED. The caller
 * hands over its count in @t's hold slot @hold_slot, taken before the runs
 * were mapped; it ends in every case.
 * Returns -EIOCBQUEUED: once the last bio ended, the hold count ends, then
 * @iocb completes with @res, or -EIO if a bio failed, or the errno that
 * stopped the submission part way (after a write, the range's cached
 * pages are dropped first, from a worker). A synchronous @iocb (no
 * ki_complete) is not queued: the call waits for that end and returns
 * what it would have completed with. Or returns a negative errno with
 * nothing submitted (bad runs, no memory, a fault on the first pages),
 * after the hold count ended.
 */
int ferrofs_dio_submit(struct super_block *sb, struct kiocb *iocb, struct iov_iter *iter,
		       const struct ferrofs_drun *runs, size_t n, long res, struct ferrofs_dwrites *t, bool overwrite,
		       loff_t pos, unsigned int hold_slot);

#endif /* FERROFS_SHIM_DIO_H */
