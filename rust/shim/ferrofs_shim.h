/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the ferrofs Rust adapter needs from the kernel that kernel::bindings
 * lacks on 6.12: headers it does not include (fs_context, buffer_head,
 * crc32c) and static inline helpers, wrapped as real functions in shim.c.
 * bindgen reads this file; only the ferrofs_* items and the types named in
 * Kbuild are generated, the rest comes from kernel::bindings.
 */
#ifndef FERROFS_SHIM_H
#define FERROFS_SHIM_H

#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/buffer_head.h>
#include <linux/statfs.h>
#include <linux/blkdev.h>
#include <linux/fiemap.h>
#include <linux/falloc.h>
#include <kunit/test.h>

/* Checksums */
u32 ferrofs_crc32c(u32 seed, const void *data, size_t len);

/* Block I/O: bios straight to the device, no buffer cache. */
int ferrofs_bdev_io(struct super_block *sb, u64 offset, void *buf, size_t len, bool write, bool fua);
u64 ferrofs_bdev_bytes(struct super_block *sb);
/*
 * A read of @len bytes at byte @offset (whole sectors) started without
 * waiting, into a buffer of its own: NULL when it cannot start (no memory).
 * ferrofs_aread_wait waits for it (0 or a negative errno), after which
 * ferrofs_aread_buf's @len bytes hold the data; ferrofs_aread_free waits
 * and frees it.
 */
struct ferrofs_aread;
struct ferrofs_aread *ferrofs_aread_start(struct super_block *sb, u64 offset, size_t len);
int ferrofs_aread_wait(struct ferrofs_aread *r);
const void *ferrofs_aread_buf(const struct ferrofs_aread *r);
void ferrofs_aread_free(struct ferrofs_aread *r);
/*
 * Reads @n pieces of @piece bytes (whole sectors), piece i from byte
 * @offsets[i] into @buf + i * @piece, submitted together and waited for:
 * 0 or a negative errno.
 */
int ferrofs_bdev_read_pieces(struct super_block *sb, const u64 *offsets, size_t n, void *buf, size_t piece);

/* Mount plumbing */
int ferrofs_get_tree_bdev(struct fs_context *fc,
			  int (*fill_super)(struct super_block *sb, struct fs_context *fc));
void ferrofs_fc_error(struct fs_context *fc, const char *msg);
const char *ferrofs_sb_id(struct super_block *sb);
bool ferrofs_sb_rdonly(struct super_block *sb);
void ferrofs_sb_set_fs_info(struct super_block *sb, void *info);
void *ferrofs_sb_fs_info(struct super_block *sb);
void ferrofs_fc_set_ops(struct fs_context *fc, const struct fs_context_operations *ops);
void *ferrofs_fc_private(struct fs_context *fc);
void ferrofs_fc_set_private(struct fs_context *fc, void *private);
struct super_block *ferrofs_fc_root_sb(struct fs_context *fc);
/* Whether a reconfigure changes SB_RDONLY, and to what. */
bool ferrofs_fc_changes_rdonly(struct fs_context *fc, bool *to_rdonly);
const char *ferrofs_param_key(struct fs_parameter *param);
/* The value of a string parameter, NULL for a flag or another type. */
const char *ferrofs_param_string(struct fs_parameter *param);
extern const int FERROFS_ENOPARAM;
void ferrofs_seq_puts(struct seq_file *m, const char *s);
void ferrofs_seq_show_option(struct seq_file *m, const char *name, const char *value);
void ferrofs_sb_force_rdonly(struct super_block *sb);
int ferrofs_get_user_u32(const u32 __user *uptr, u32 *out);
void ferrofs_sync_sb(struct super_block *sb);

/* Periodic commit: a delayed work calling @tick every interval. */
struct ferrofs_ticker;
struct ferrofs_ticker *ferrofs_ticker_new(struct super_block *sb, void (*tick)(struct super_block *sb));
void ferrofs_ticker_set(struct ferrofs_ticker *t, unsigned int secs);
void ferrofs_ticker_free(struct ferrofs_ticker *t);

void ferrofs_fill_statfs(struct kstatfs *buf, long type, long bsize, u64 blocks, u64 bfree,
			 u64 bavail, u64 files, u64 ffree, long namelen, u64 fsid);

/* Inodes */
void ferrofs_inode_set_owner(struct inode *inode, u32 uid, u32 gid);
void ferrofs_inode_set_times(struct inode *inode, s64 a_sec, u32 a_nsec,
			     s64 m_sec, u32 m_nsec, s64 c_sec, u32 c_nsec);
void ferrofs_inode_set_size(struct inode *inode, u64 size, u64 blocks);
void ferrofs_inode_set_ctime(struct inode *inode, s64 sec, u32 nsec);
bool ferrofs_inode_is_new(struct inode *inode);
void ferrofs_inode_set_ops(struct inode *inode, const struct inode_operations *iop,
			   const struct file_operations *fop,
			   const struct address_space_operations *aops);
u64 ferrofs_inode_ino(struct inode *inode);
struct super_block *ferrofs_inode_sb(struct inode *inode);

/* Directories */
bool ferrofs_dir_emit(struct dir_context *ctx, const char *name, int len, u64 ino, unsigned int type);
bool ferrofs_dir_emit_dots(struct file *file, struct dir_context *ctx);
loff_t ferrofs_dir_pos(struct dir_context *ctx);
void ferrofs_dir_set_pos(struct dir_context *ctx, loff_t pos);
struct inode *ferrofs_file_inode(struct file *file);
struct dentry *ferrofs_d_splice_alias(struct inode *inode, struct dentry *dentry);
/* LOOKUP_CREATE: the lookup precedes the creation of the name. */
extern const unsigned int FERROFS_LOOKUP_CREATE;
const unsigned char *ferrofs_dentry_name(const struct dentry *dentry, u32 *len);

/* Namespace operations */
void ferrofs_now(s64 *sec, u32 *nsec);
void ferrofs_new_owner(struct mnt_idmap *idmap, const struct inode *dir, u32 *mode, u32 *uid, u32 *gid);
void ferrofs_d_instantiate(struct dentry *dentry, struct inode *inode);
void ferrofs_init_special_inode(struct inode *inode, u32 mode, u64 rdev);
u64 ferrofs_encode_dev(dev_t dev);
u32 ferrofs_inode_uid(const struct inode *inode);
u32 ferrofs_inode_gid(const struct inode *inode);
u32 ferrofs_inode_nlink(const struct inode *inode);
struct inode *ferrofs_dentry_inode(const struct dentry *dentry);
const char *ferrofs_link_copy(struct delayed_call *done, const char *target, size_t len);
unsigned int ferrofs_nofs_save(void);
void ferrofs_nofs_restore(unsigned int flags);

/* setattr: the fields of an iattr, after setattr_prepare */
struct ferrofs_iattr {
	unsigned int valid;
	u32 mode, uid, gid;
	u64 size;
	s64 atime_sec, mtime_sec, ctime_sec;
	u32 atime_nsec, mtime_nsec, ctime_nsec;
};
int ferrofs_setattr_prepare(struct mnt_idmap *idmap, struct dentry *dentry, struct iattr *attr,
			    struct ferrofs_iattr *out);
extern const unsigned int FERROFS_ATTR_MODE, FERROFS_ATTR_UID, FERROFS_ATTR_GID, FERROFS_ATTR_SIZE,
	FERROFS_ATTR_ATIME, FERROFS_ATTR_MTIME, FERROFS_ATTR_CTIME;

/* Inode eviction */
void ferrofs_evict_prepare(struct inode *inode);

/* Page cache */
struct inode *ferrofs_mapping_host(struct address_space *mapping);
struct address_space *ferrofs_inode_mapping(struct inode *inode);
struct inode *ferrofs_folio_inode(struct folio *folio);
loff_t ferrofs_folio_pos(struct folio *folio);
size_t ferrofs_folio_size(struct folio *folio);
void *ferrofs_folio_map(struct folio *folio);
void ferrofs_folio_unmap(void *addr);
bool ferrofs_folio_uptodate(struct folio *folio);
void ferrofs_folio_mark_uptodate(struct folio *folio);
void ferrofs_folio_zero(struct folio *folio, size_t start, size_t end);
void ferrofs_folio_start_writeback(struct folio *folio);
void ferrofs_folio_put(struct folio *folio);
bool ferrofs_folio_reserve(struct folio *folio);
bool ferrofs_folio_unreserve(struct folio *folio);
bool ferrofs_folio_reserved(struct folio *folio);
struct folio *ferrofs_write_begin_folio(struct address_space *mapping, loff_t pos);
struct folio *ferrofs_readahead_folio(struct readahead_control *rac);
loff_t ferrofs_readahead_pos(struct readahead_control *rac);
size_t ferrofs_readahead_length(struct readahead_control *rac);
struct address_space *ferrofs_readahead_mapping(struct readahead_control *rac);
loff_t ferrofs_i_size_read(const struct inode *inode);
void ferrofs_i_size_write(struct inode *inode, loff_t size);
void ferrofs_inode_set_blocks(struct inode *inode, u64 blocks);
void ferrofs_inode_times(const struct inode *inode, s64 *sec, u32 *nsec);
void ferrofs_mapping_set_error(struct address_space *mapping, int error);
long ferrofs_ptr_err(const void *ptr);

/* O_TMPFILE */
void ferrofs_d_tmpfile(struct file *file, struct inode *inode);
int ferrofs_finish_open_simple(struct file *file);

/* llseek, fallocate, fiemap */
void ferrofs_inode_lock(struct inode *inode);
void ferrofs_inode_unlock(struct inode *inode);
loff_t ferrofs_setpos(struct file *file, loff_t pos);
extern const int FERROFS_SEEK_DATA, FERROFS_SEEK_HOLE, FERROFS_FALLOC_KEEP_SIZE,
	FERROFS_FALLOC_PUNCH_HOLE, FERROFS_FALLOC_ZERO_RANGE;
int ferrofs_fiemap_prep(struct inode *inode, struct fiemap_extent_info *fieinfo, u64 start, u64 *len);
int ferrofs_fiemap_fill(struct fiemap_extent_info *fieinfo, u64 logical, u64 phys, u64 len, bool last, bool shared,
			bool unwritten);

/* Subvolumes: inodes keyed by (subvolume, number), st_dev, permissions */
struct inode *ferrofs_iget5(struct super_block *sb, unsigned long hash, u64 ino, void *subvol);
struct inode *ferrofs_new_unhashed(struct super_block *sb, u64 ino, void *subvol);
void *ferrofs_inode_subvol(const struct inode *inode);
void ferrofs_fill_kstat(struct mnt_idmap *idmap, const struct path *path, struct kstat *stat,
			u32 request_mask, dev_t dev);
bool ferrofs_inode_clean(struct inode *inode);
int ferrofs_generic_drop_inode(struct inode *inode);
dev_t ferrofs_sb_dev(struct super_block *sb);
extern const int FERROFS_MAY_WRITE, FERROFS_MAY_EXEC, FERROFS_MAY_NOT_BLOCK;
unsigned int ferrofs_d_count(const struct dentry *dentry);
bool ferrofs_d_has_children(struct dentry *dentry);
struct dentry *ferrofs_lookup_one(struct dentry *parent, const char *name, int len);
struct dentry *ferrofs_file_dentry(struct file *file);
void ferrofs_inode_lock_parent(struct inode *inode);
void ferrofs_mark_dead_dir(struct dentry *dentry);
void ferrofs_d_delete(struct inode *dir, struct dentry *dentry);
int ferrofs_copy_from_user(void *to, u64 from, size_t len);
int ferrofs_copy_to_user(u64 to, const void *from, size_t len);
int ferrofs_file_permission(struct file *file, struct inode *inode, int mask);
bool ferrofs_file_owner_or_capable(struct file *file, struct inode *inode);
struct dentry *ferrofs_fc_root(struct fs_context *fc);
void ferrofs_fc_set_root(struct fs_context *fc, struct dentry *root);
void ferrofs_fc_drop_root(struct fs_context *fc);
bool ferrofs_file_writable(struct file *file);
struct mnt_idmap *ferrofs_file_idmap(struct file *file);
void ferrofs_uuid(u8 out[16]);

/* Background work: @step runs on a workqueue and again while it returns true. */
struct ferrofs_worker;
struct ferrofs_worker *ferrofs_worker_new(struct super_block *sb, bool (*step)(struct super_block *sb));
void ferrofs_worker_kick(struct ferrofs_worker *w);
void ferrofs_worker_stop(struct ferrofs_worker *w);
void ferrofs_worker_allow(struct ferrofs_worker *w);
void ferrofs_worker_free(struct ferrofs_worker *w);

/* Errors as pointers */
void *ferrofs_err_ptr(long error);

/* KUnit */
void ferrofs_kunit_fail(struct kunit *test, const char *file, int line, const char *msg);

/* Extended attributes, POSIX ACLs and inode flags: see ferrofs_shim_xattr.h */
#include "ferrofs_shim_xattr.h"
#include "ferrofs_shim_send.h"
#include "ferrofs_shim_cache.h"
/* read_iter and write_iter, O_DIRECT: see ferrofs_shim_dio.h */
#include "ferrofs_shim_dio.h"

/* Data writes left in flight: see ferrofs_shim_dwrite.h */
#include "ferrofs_shim_dwrite.h"

/* /sys/fs/ferrofs: see ferrofs_shim_sysfs.h */
#include "ferrofs_shim_sysfs.h"

#endif
