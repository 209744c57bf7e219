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
/* kiocb_modified: privileges dropped, mtime and ctime updated. */
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
/* Whether bytes @start..=@end have dirty pages or pages under writeback
 * (filemap_range_needs_writeback). */
bool ferrofs_range_needs_writeback(struct inode *inode, loff_t start, loff_t end);

/* Drops the page cache of bytes @start..=@end (invalidate_inode_pages2_range):
 * 0, or -EBUSY when a page could not be dropped (mapped and dirtied again). */
int ferrofs_invalidate_range(struct inode *inode, loff_t start, loff_t end);

/*
 * Asynchronous direct reads. One run of a read: @len bytes (whole
 * sectors) from byte @disk of the device, or zeros for a hole
 * (@disk == FERROFS_DREAD_HOLE).
 */
#define FERROFS_DREAD_HOLE U64_MAX
struct ferrofs_drun {
	u64 disk;
	u64 len;
};
/*
 * Reads @n runs, in order, straight into the caller's memory under @iter
 * (its pages pinned for the bios; holes zeroed now) and returns
 * -EIOCBQUEUED: once the last bio ended, unpin(@owner) runs, then @iocb
 * completes (ki_complete, from the bio's end) with @res, or -EIO if a bio
 * failed, or the errno that stopped the submission part way. Or returns
 * a negative errno with nothing submitted (bad runs, no memory, a fault
 * on the first pages), after unpin(@owner). @unpin must be callable from
 * interrupt context.
 */
int ferrofs_dread_submit(struct super_block *sb, struct kiocb *iocb, struct iov_iter *iter,
			 const struct ferrofs_drun *runs, size_t n, long res, void (*unpin)(void *owner), void *owner);

#endif /* FERROFS_SHIM_DIO_H */
