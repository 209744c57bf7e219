// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers over static inline kernel helpers and macros, so the
 * Rust adapter can call them, and the bio plumbing of device I/O (waited
 * for, or started now and collected later). No filesystem logic lives here.
 */
#include <linux/crc32c.h>
#include <linux/err.h>
#include <linux/sched/mm.h>
#include <linux/uio.h>
#include <linux/cred.h>
#include <linux/mnt_idmapping.h>
#include <linux/bio.h>
#include <linux/vmalloc.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/writeback.h>
#include <linux/fs_parser.h>
#include <linux/seq_file.h>
#include <linux/workqueue.h>
#include <linux/namei.h>
#include <linux/fsnotify.h>
#include <linux/mount.h>
#include <linux/file.h>
#include <linux/uuid.h>
#include "ferrofs_shim.h"
#include "shim_bio.h"

u32 ferrofs_crc32c(u32 seed, const void *data, size_t len)
{
	return crc32c(seed, data, len);
}

size_t ferrofs_bio_add_buf(struct bio *bio, char *p, size_t len, bool vmapped)
{
	size_t added = 0;

	while (added < len) {
		char *q = p + added;
		struct page *page = vmapped ? vmalloc_to_page(q) : virt_to_page(q);
		unsigned int n = min_t(size_t, PAGE_SIZE - offset_in_page(q), len - added);

		if (bio_add_page(bio, page, n, offset_in_page(q)) != n)
			break;
		added += n;
	}
	return added;
}

unsigned int ferrofs_bio_pages(const char *p, size_t len)
{
	return min_t(size_t, DIV_ROUND_UP(offset_in_page(p) + len, PAGE_SIZE), BIO_MAX_VECS);
}

struct blk_plug *ferrofs_plug_suspend(void)
{
	struct blk_plug *plug = current->plug;

	/* Flushes it and clears current->plug: the owner's own
	 * blk_finish_plug would find it no longer current, so it is
	 * re-armed before the owner sees it again. */
	if (plug)
		blk_finish_plug(plug);
	return plug;
}

void ferrofs_plug_resume(struct blk_plug *plug)
{
	if (plug)
		blk_start_plug(plug);
}

/*
 * Reads or writes @len bytes at byte @offset of the mounted device straight
 * to or from @buf (kmalloc'd, vmalloc'd or a mapped folio), in bios of up
 * to BIO_MAX_VECS pages, and waits. No buffer cache: the core keeps its own
 * node cache, and data must not linger in a second copy of the device.
 */
int ferrofs_bdev_io(struct super_block *sb, u64 offset, void *buf, size_t len, bool write, bool fua)
{
	blk_opf_t opf = write ? REQ_OP_WRITE | REQ_SYNC | (fua ? REQ_FUA : 0) : REQ_OP_READ;
	bool vmapped = is_vmalloc_addr(buf);
	struct blk_plug *outer;
	char *p = buf;
	int ret = 0;

	if (((unsigned long)buf | offset | len) & (SECTOR_SIZE - 1))
		return -EINVAL;
	if (vmapped && write)
		flush_kernel_vmap_range(buf, len);
	outer = ferrofs_plug_suspend();
	while (len) {
		struct bio *bio = bio_alloc(sb->s_bdev, ferrofs_bio_pages(p, len), opf, GFP_NOFS);
		size_t added;

		bio->bi_iter.bi_sector = offset >> SECTOR_SHIFT;
		added = ferrofs_bio_add_buf(bio, p, len, vmapped);
		ret = added ? submit_bio_wait(bio) : -EIO;
		bio_put(bio);
		if (ret)
			break;
		p += added;
		offset += added;
		len -= added;
	}
	ferrofs_plug_resume(outer);
	if (vmapped && !write)
		invalidate_kernel_vmap_range(buf, p - (char *)buf);
	return ret;
}

/*
 * A read started now and collected later (ferrofs_aread_*), into its own
 * buffer. @pending counts the bios in flight plus one the submitter holds
 * until all are out, so @done completes once, after the last; it completes
 * for all waiters (complete_all), so waiting again returns at once.
 */
struct ferrofs_aread {
	void *buf;
	size_t len;
	atomic_t pending;
	/* Set by a failed bio; read once @done completed. */
	int error;
	struct completion done;
};

static void ferrofs_aread_put(struct ferrofs_aread *r)
{
	if (atomic_dec_and_test(&r->pending))
		complete_all(&r->done);
}

static void ferrofs_aread_end_io(struct bio *bio)
{
	struct ferrofs_aread *r = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(r->error, blk_status_to_errno(bio->bi_status));
	bio_put(bio);
	ferrofs_aread_put(r);
}

/*
 * Submits reads of @len bytes at byte @offset into @p (part of @r's
 * buffer), counted in @r; a piece no bio takes sets @r's error.
 */
static void ferrofs_aread_submit(struct super_block *sb, struct ferrofs_aread *r, u64 offset, char *p, size_t len)
{
	while (len) {
		struct bio *bio = bio_alloc(sb->s_bdev, ferrofs_bio_pages(p, len), REQ_OP_READ, GFP_NOFS);
		size_t added;

		bio->bi_iter.bi_sector = offset >> SECTOR_SHIFT;
		added = ferrofs_bio_add_buf(bio, p, len, is_vmalloc_addr(r->buf));
		if (!added) {
			bio_put(bio);
			r->error = -EIO;
			break;
		}
		bio->bi_private = r;
		bio->bi_end_io = ferrofs_aread_end_io;
		atomic_inc(&r->pending);
		submit_bio(bio);
		p += added;
		offset += added;
		len -= added;
	}
}

struct ferrofs_aread *ferrofs_aread_start(struct super_block *sb, u64 offset, size_t len)
{
	struct ferrofs_aread *r;

	if ((offset | len) & (SECTOR_SIZE - 1) || !len)
		return NULL;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return NULL;
	r->buf = kvmalloc(len, GFP_KERNEL);
	if (!r->buf) {
		kfree(r);
		return NULL;
	}
	r->len = len;
	atomic_set(&r->pending, 1);
	init_completion(&r->done);
	ferrofs_aread_submit(sb, r, offset, r->buf, len);
	ferrofs_aread_put(r);
	return r;
}

/*
 * Reads @n pieces of @piece bytes, piece i from byte @offsets[i] into
 * @buf + i * @piece, all submitted under one plug of its own (not the
 * caller's: ferrofs_plug_suspend) before waiting for any: the device works
 * on them together, and merges neighbours. @buf is the caller's (kmalloc'd
 * or vmalloc'd); the read's bookkeeping lives on this stack, and nothing
 * returns before the last bio ended.
 */
int ferrofs_bdev_read_pieces(struct super_block *sb, const u64 *offsets, size_t n, void *buf, size_t piece)
{
	struct ferrofs_aread r = { .buf = buf, .len = n * piece };
	struct blk_plug plug, *outer;
	size_t i;
	int ret;

	if (((unsigned long)buf | piece) & (SECTOR_SIZE - 1) || !piece)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (offsets[i] & (SECTOR_SIZE - 1))
			return -EINVAL;
	atomic_set(&r.pending, 1);
	init_completion(&r.done);
	outer = ferrofs_plug_suspend();
	blk_start_plug(&plug);
	for (i = 0; i < n && !READ_ONCE(r.error); i++)
		ferrofs_aread_submit(sb, &r, offsets[i], (char *)buf + i * piece, piece);
	blk_finish_plug(&plug);
	ferrofs_aread_put(&r);
	ret = ferrofs_aread_wait(&r);
	ferrofs_plug_resume(outer);
	return ret;
}

int ferrofs_aread_wait(struct ferrofs_aread *r)
{
	wait_for_completion_io(&r->done);
	if (is_vmalloc_addr(r->buf))
		invalidate_kernel_vmap_range(r->buf, r->len);
	return READ_ONCE(r->error);
}

const void *ferrofs_aread_buf(const struct ferrofs_aread *r)
{
	return r->buf;
}

void ferrofs_aread_free(struct ferrofs_aread *r)
{
	wait_for_completion_io(&r->done);
	kvfree(r->buf);
	kfree(r);
}

u64 ferrofs_bdev_bytes(struct super_block *sb)
{
	return bdev_nr_bytes(sb->s_bdev);
}

int ferrofs_get_tree_bdev(struct fs_context *fc,
			  int (*fill_super)(struct super_block *sb, struct fs_context *fc))
{
	return get_tree_bdev(fc, fill_super);
}

void ferrofs_fc_error(struct fs_context *fc, const char *msg)
{
	errorfc(fc, "%s", msg);
}

const char *ferrofs_sb_id(struct super_block *sb)
{
	return sb->s_id;
}

bool ferrofs_sb_rdonly(struct super_block *sb)
{
	return sb_rdonly(sb);
}

void ferrofs_sb_set_fs_info(struct super_block *sb, void *info)
{
	sb->s_fs_info = info;
}

void *ferrofs_sb_fs_info(struct super_block *sb)
{
	return sb->s_fs_info;
}

void ferrofs_fc_set_ops(struct fs_context *fc, const struct fs_context_operations *ops)
{
	fc->ops = ops;
}

void ferrofs_fill_statfs(struct kstatfs *buf, long type, long bsize, u64 blocks, u64 bfree,
			 u64 bavail, u64 files, u64 ffree, long namelen, u64 fsid)
{
	buf->f_type = type;
	buf->f_bsize = bsize;
	buf->f_frsize = bsize;
	buf->f_blocks = blocks;
	buf->f_bfree = bfree;
	buf->f_bavail = bavail;
	buf->f_files = files;
	buf->f_ffree = ffree;
	buf->f_namelen = namelen;
	buf->f_fsid = u64_to_fsid(fsid);
}

void ferrofs_inode_set_owner(struct inode *inode, u32 uid, u32 gid)
{
	i_uid_write(inode, uid);
	i_gid_write(inode, gid);
}

void ferrofs_inode_set_times(struct inode *inode, s64 a_sec, u32 a_nsec,
			     s64 m_sec, u32 m_nsec, s64 c_sec, u32 c_nsec)
{
	inode_set_atime(inode, a_sec, a_nsec);
	inode_set_mtime(inode, m_sec, m_nsec);
	inode_set_ctime(inode, c_sec, c_nsec);
}

void ferrofs_inode_set_size(struct inode *inode, u64 size, u64 blocks)
{
	i_size_write(inode, size);
	inode->i_blocks = blocks;
}

void ferrofs_inode_set_ctime(struct inode *inode, s64 sec, u32 nsec)
{
	inode_set_ctime(inode, sec, nsec);
}

bool ferrofs_inode_is_new(struct inode *inode)
{
	return inode->i_state & I_NEW;
}

void ferrofs_inode_set_ops(struct inode *inode, const struct inode_operations *iop,
			   const struct file_operations *fop,
			   const struct address_space_operations *aops)
{
	inode->i_op = iop;
	inode->i_fop = fop;
	if (aops)
		inode->i_mapping->a_ops = aops;
}

u64 ferrofs_inode_ino(struct inode *inode)
{
	return inode->i_ino;
}

struct super_block *ferrofs_inode_sb(struct inode *inode)
{
	return inode->i_sb;
}

bool ferrofs_dir_emit(struct dir_context *ctx, const char *name, int len, u64 ino, unsigned int type)
{
	return dir_emit(ctx, name, len, ino, type);
}

bool ferrofs_dir_emit_dots(struct file *file, struct dir_context *ctx)
{
	return dir_emit_dots(file, ctx);
}

loff_t ferrofs_dir_pos(struct dir_context *ctx)
{
	return ctx->pos;
}

void ferrofs_dir_set_pos(struct dir_context *ctx, loff_t pos)
{
	ctx->pos = pos;
}

struct inode *ferrofs_file_inode(struct file *file)
{
	return file_inode(file);
}

struct dentry *ferrofs_d_splice_alias(struct inode *inode, struct dentry *dentry)
{
	return d_splice_alias(inode, dentry);
}

const unsigned int FERROFS_LOOKUP_CREATE = LOOKUP_CREATE;

const unsigned char *ferrofs_dentry_name(const struct dentry *dentry, u32 *len)
{
	*len = dentry->d_name.len;
	return dentry->d_name.name;
}

void ferrofs_now(s64 *sec, u32 *nsec)
{
	struct timespec64 ts;

	ktime_get_coarse_real_ts64(&ts);
	*sec = ts.tv_sec;
	*nsec = ts.tv_nsec;
}

/* The owner and mode of a new inode in @dir, as inode_init_owner() sets them. */
void ferrofs_new_owner(struct mnt_idmap *idmap, const struct inode *dir, u32 *mode, u32 *uid, u32 *gid)
{
	kuid_t kuid = mapped_fsuid(idmap, i_user_ns(dir));
	kgid_t kgid;

	if (dir->i_mode & S_ISGID) {
		kgid = dir->i_gid;
		if (S_ISDIR(*mode))
			*mode |= S_ISGID;
	} else {
		kgid = mapped_fsgid(idmap, i_user_ns(dir));
	}
	*uid = from_kuid(&init_user_ns, kuid);
	*gid = from_kgid(&init_user_ns, kgid);
}

void ferrofs_d_instantiate(struct dentry *dentry, struct inode *inode)
{
	d_instantiate(dentry, inode);
}

void ferrofs_init_special_inode(struct inode *inode, u32 mode, u64 rdev)
{
	init_special_inode(inode, mode, new_decode_dev(rdev));
}

/* Device numbers are stored in the portable new_encode_dev() form. */
u64 ferrofs_encode_dev(dev_t dev)
{
	return new_encode_dev(dev);
}

u32 ferrofs_inode_uid(const struct inode *inode)
{
	return i_uid_read(inode);
}

u32 ferrofs_inode_gid(const struct inode *inode)
{
	return i_gid_read(inode);
}

u32 ferrofs_inode_nlink(const struct inode *inode)
{
	return inode->i_nlink;
}

struct inode *ferrofs_dentry_inode(const struct dentry *dentry)
{
	return d_inode(dentry);
}

/* A kmalloc'd NUL-terminated copy of a symlink target, freed by @done. */
const char *ferrofs_link_copy(struct delayed_call *done, const char *target, size_t len)
{
	char *copy = kmemdup_nul(target, len, GFP_KERNEL);

	if (!copy)
		return ERR_PTR(-ENOMEM);
	set_delayed_call(done, kfree_link, copy);
	return copy;
}

unsigned int ferrofs_nofs_save(void)
{
	return memalloc_nofs_save();
}

void ferrofs_nofs_restore(unsigned int flags)
{
	memalloc_nofs_restore(flags);
}

const unsigned int FERROFS_ATTR_MODE = ATTR_MODE, FERROFS_ATTR_UID = ATTR_UID,
	FERROFS_ATTR_GID = ATTR_GID, FERROFS_ATTR_SIZE = ATTR_SIZE, FERROFS_ATTR_ATIME = ATTR_ATIME,
	FERROFS_ATTR_MTIME = ATTR_MTIME, FERROFS_ATTR_CTIME = ATTR_CTIME;

/*
 * Checks the change with setattr_prepare() (permissions, limits, and the
 * setuid/setgid clearing it decides), applies setattr_copy()'s setgid rule
 * to a new mode, and flattens what is to be set.
 */
int ferrofs_setattr_prepare(struct mnt_idmap *idmap, struct dentry *dentry, struct iattr *attr,
			    struct ferrofs_iattr *out)
{
	int err = setattr_prepare(idmap, dentry, attr);

	if (err)
		return err;
	out->valid = attr->ia_valid;
	out->mode = attr->ia_mode;
	if (attr->ia_valid & ATTR_MODE) {
		/* As setattr_copy(): only a member of the (new) group keeps S_ISGID. */
		struct inode *inode = d_inode(dentry);
		vfsgid_t group = (attr->ia_valid & ATTR_GID) ? attr->ia_vfsgid :
							       i_gid_into_vfsgid(idmap, inode);

		if (!in_group_or_capable(idmap, inode, group))
			out->mode &= ~S_ISGID;
	}
	out->uid = from_vfsuid(idmap, i_user_ns(d_inode(dentry)), attr->ia_vfsuid).val;
	out->gid = from_vfsgid(idmap, i_user_ns(d_inode(dentry)), attr->ia_vfsgid).val;
	out->uid = from_kuid(&init_user_ns, KUIDT_INIT(out->uid));
	out->gid = from_kgid(&init_user_ns, KGIDT_INIT(out->gid));
	out->size = attr->ia_size;
	out->atime_sec = attr->ia_atime.tv_sec;
	out->atime_nsec = attr->ia_atime.tv_nsec;
	out->mtime_sec = attr->ia_mtime.tv_sec;
	out->mtime_nsec = attr->ia_mtime.tv_nsec;
	out->ctime_sec = attr->ia_ctime.tv_sec;
	out->ctime_nsec = attr->ia_ctime.tv_nsec;
	return 0;
}

/* What every evict_inode does before the filesystem forgets the inode. */
void ferrofs_evict_prepare(struct inode *inode)
{
	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
}

void *ferrofs_err_ptr(long error)
{
	return ERR_PTR(error);
}

void ferrofs_kunit_fail(struct kunit *test, const char *file, int line, const char *msg)
{
	KUNIT_FAIL(test, "%s:%d: %s", file, line, msg);
}

struct inode *ferrofs_mapping_host(struct address_space *mapping)
{
	return mapping->host;
}

struct address_space *ferrofs_inode_mapping(struct inode *inode)
{
	return inode->i_mapping;
}

struct inode *ferrofs_folio_inode(struct folio *folio)
{
	return folio->mapping->host;
}

loff_t ferrofs_folio_pos(struct folio *folio)
{
	return folio_pos(folio);
}

size_t ferrofs_folio_size(struct folio *folio)
{
	return folio_size(folio);
}

/* ferrofs does not enable large folios, so one page maps the whole folio. */
void *ferrofs_folio_map(struct folio *folio)
{
	return kmap_local_folio(folio, 0);
}

void ferrofs_folio_unmap(void *addr)
{
	kunmap_local(addr);
}

bool ferrofs_folio_uptodate(struct folio *folio)
{
	return folio_test_uptodate(folio);
}

void ferrofs_folio_mark_uptodate(struct folio *folio)
{
	folio_mark_uptodate(folio);
}

void ferrofs_folio_zero(struct folio *folio, size_t start, size_t end)
{
	folio_zero_segment(folio, start, end);
}

void ferrofs_folio_start_writeback(struct folio *folio)
{
	folio_start_writeback(folio);
}

void ferrofs_folio_put(struct folio *folio)
{
	folio_put(folio);
}

/*
 * A dirty folio holds one block of reserved space until it is written back
 * or thrown away; folio->private marks it (a tag, not a pointer), so the
 * VFS calls invalidate_folio/release_folio for it. Safe under spinlocks:
 * dirty_folio can be called with the page table lock held.
 */
bool ferrofs_folio_reserve(struct folio *folio)
{
	if (folio_test_private(folio))
		return false;
	folio_attach_private(folio, (void *)1UL);
	return true;
}

bool ferrofs_folio_unreserve(struct folio *folio)
{
	if (!folio_test_private(folio))
		return false;
	folio_detach_private(folio);
	return true;
}

bool ferrofs_folio_reserved(struct folio *folio)
{
	return folio_test_private(folio);
}

struct folio *ferrofs_write_begin_folio(struct address_space *mapping, loff_t pos)
{
	return __filemap_get_folio(mapping, pos >> PAGE_SHIFT, FGP_WRITEBEGIN, mapping_gfp_mask(mapping));
}

struct folio *ferrofs_readahead_folio(struct readahead_control *rac)
{
	return readahead_folio(rac);
}

loff_t ferrofs_readahead_pos(struct readahead_control *rac)
{
	return readahead_pos(rac);
}

size_t ferrofs_readahead_length(struct readahead_control *rac)
{
	return readahead_length(rac);
}

struct address_space *ferrofs_readahead_mapping(struct readahead_control *rac)
{
	return rac->mapping;
}

loff_t ferrofs_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

void ferrofs_i_size_write(struct inode *inode, loff_t size)
{
	i_size_write(inode, size);
}

/* i_blocks changes at writeback too, outside the inode lock. */
void ferrofs_inode_set_blocks(struct inode *inode, u64 blocks)
{
	spin_lock(&inode->i_lock);
	inode->i_blocks = blocks;
	spin_unlock(&inode->i_lock);
}

/* atime, mtime, ctime as three (sec, nsec) pairs. */
void ferrofs_inode_times(const struct inode *inode, s64 *sec, u32 *nsec)
{
	struct timespec64 a = inode_get_atime(inode), m = inode_get_mtime(inode), c = inode_get_ctime(inode);

	sec[0] = a.tv_sec, nsec[0] = a.tv_nsec;
	sec[1] = m.tv_sec, nsec[1] = m.tv_nsec;
	sec[2] = c.tv_sec, nsec[2] = c.tv_nsec;
}

void ferrofs_mapping_set_error(struct address_space *mapping, int error)
{
	mapping_set_error(mapping, error);
}

long ferrofs_ptr_err(const void *ptr)
{
	return IS_ERR(ptr) ? PTR_ERR(ptr) : 0;
}

void *ferrofs_fc_private(struct fs_context *fc)
{
	return fc->fs_private;
}

void ferrofs_fc_set_private(struct fs_context *fc, void *private)
{
	fc->fs_private = private;
}

struct super_block *ferrofs_fc_root_sb(struct fs_context *fc)
{
	return fc->root->d_sb;
}

bool ferrofs_fc_changes_rdonly(struct fs_context *fc, bool *to_rdonly)
{
	*to_rdonly = fc->sb_flags & SB_RDONLY;
	return (fc->sb_flags_mask & SB_RDONLY) && *to_rdonly != sb_rdonly(fc->root->d_sb);
}

const char *ferrofs_param_key(struct fs_parameter *param)
{
	return param->key;
}

const char *ferrofs_param_string(struct fs_parameter *param)
{
	return param->type == fs_value_is_string ? param->string : NULL;
}

const int FERROFS_ENOPARAM = ENOPARAM;

void ferrofs_seq_puts(struct seq_file *m, const char *s)
{
	seq_puts(m, s);
}

void ferrofs_seq_show_option(struct seq_file *m, const char *name, const char *value)
{
	seq_show_option(m, name, value);
}

/* After an error: no new writer gets in (ext4's errors=remount-ro). */
void ferrofs_sb_force_rdonly(struct super_block *sb)
{
	WRITE_ONCE(sb->s_flags, sb->s_flags | SB_RDONLY);
}

struct ferrofs_ticker {
	struct delayed_work work;
	struct super_block *sb;
	void (*tick)(struct super_block *sb);
	unsigned long interval;	/* jiffies; 0 while stopped */
};

static void ferrofs_ticker_fn(struct work_struct *work)
{
	struct ferrofs_ticker *t = container_of(to_delayed_work(work), struct ferrofs_ticker, work);
	unsigned long interval;

	t->tick(t->sb);
	interval = READ_ONCE(t->interval);
	if (interval)
		queue_delayed_work(system_long_wq, &t->work, interval);
}

struct ferrofs_ticker *ferrofs_ticker_new(struct super_block *sb, void (*tick)(struct super_block *sb))
{
	struct ferrofs_ticker *t = kzalloc(sizeof(*t), GFP_KERNEL);

	if (!t)
		return NULL;
	INIT_DELAYED_WORK(&t->work, ferrofs_ticker_fn);
	t->sb = sb;
	t->tick = tick;
	return t;
}

/* (Re)arms the ticker to fire every @secs seconds; 0 stops it. */
void ferrofs_ticker_set(struct ferrofs_ticker *t, unsigned int secs)
{
	unsigned long interval = secs * HZ;

	WRITE_ONCE(t->interval, interval);
	if (interval)
		mod_delayed_work(system_long_wq, &t->work, interval);
	else
		cancel_delayed_work_sync(&t->work);
}

/* Stops the ticker, waiting for a running tick, and frees it. */
void ferrofs_ticker_free(struct ferrofs_ticker *t)
{
	if (!t)
		return;
	WRITE_ONCE(t->interval, 0);
	cancel_delayed_work_sync(&t->work);
	kfree(t);
}

int ferrofs_get_user_u32(const u32 __user *uptr, u32 *out)
{
	return get_user(*out, uptr);
}

/* sync_filesystem wants s_umount held. */
void ferrofs_sync_sb(struct super_block *sb)
{
	down_read(&sb->s_umount);
	sync_filesystem(sb);
	up_read(&sb->s_umount);
}

void ferrofs_d_tmpfile(struct file *file, struct inode *inode)
{
	d_tmpfile(file, inode);
}

int ferrofs_finish_open_simple(struct file *file)
{
	return finish_open_simple(file, 0);
}

void ferrofs_inode_lock(struct inode *inode)
{
	inode_lock(inode);
}

void ferrofs_inode_unlock(struct inode *inode)
{
	inode_unlock(inode);
}

/* Sets f_pos for SEEK_DATA/SEEK_HOLE within the file size limit. */
loff_t ferrofs_setpos(struct file *file, loff_t pos)
{
	return vfs_setpos(file, pos, file->f_inode->i_sb->s_maxbytes);
}

const int FERROFS_SEEK_DATA = SEEK_DATA, FERROFS_SEEK_HOLE = SEEK_HOLE,
	FERROFS_FALLOC_KEEP_SIZE = FALLOC_FL_KEEP_SIZE,
	FERROFS_FALLOC_PUNCH_HOLE = FALLOC_FL_PUNCH_HOLE,
	FERROFS_FALLOC_ZERO_RANGE = FALLOC_FL_ZERO_RANGE;

int ferrofs_fiemap_prep(struct inode *inode, struct fiemap_extent_info *fieinfo, u64 start, u64 *len)
{
	return fiemap_prep(inode, fieinfo, start, len, 0);
}

/* 0: go on; 1: the caller's array is full; negative: error. */
int ferrofs_fiemap_fill(struct fiemap_extent_info *fieinfo, u64 logical, u64 phys, u64 len, bool last, bool shared,
			bool unwritten)
{
	u32 flags = (last ? FIEMAP_EXTENT_LAST : 0) | (shared ? FIEMAP_EXTENT_SHARED : 0) |
		    (unwritten ? FIEMAP_EXTENT_UNWRITTEN : 0);

	return fiemap_fill_next_extent(fieinfo, logical, phys, len, flags);
}

/*
 * Subvolumes. A ferrofs inode is named by its subvolume and its number in
 * that subvolume's tree, so the inode cache is keyed by both: i_ino is the
 * number, i_private the adapter's per-subvolume state (one per subvolume
 * per mount, alive until kill_sb).
 */
struct ferrofs_inode_key {
	u64 ino;
	void *subvol;
};

static int ferrofs_iget5_test(struct inode *inode, void *data)
{
	struct ferrofs_inode_key *key = data;

	return inode->i_ino == key->ino && inode->i_private == key->subvol;
}

static int ferrofs_iget5_set(struct inode *inode, void *data)
{
	struct ferrofs_inode_key *key = data;

	inode->i_ino = key->ino;
	inode->i_private = key->subvol;
	return 0;
}

struct inode *ferrofs_iget5(struct super_block *sb, unsigned long hash, u64 ino, void *subvol)
{
	struct ferrofs_inode_key key = { .ino = ino, .subvol = subvol };

	return iget5_locked(sb, hash, ferrofs_iget5_test, ferrofs_iget5_set, &key);
}

/*
 * An inode outside the inode cache, for a name that has no inode of its
 * own (a snapshot's stand-in for a nested subvolume): each lookup gets its
 * own, so a directory never has two dentries, and it goes at its last
 * iput. I_NEW, like iget5_locked's, until unlock_new_inode.
 */
struct inode *ferrofs_new_unhashed(struct super_block *sb, u64 ino, void *subvol)
{
	struct inode *inode = new_inode(sb);

	if (!inode)
		return NULL;
	inode->i_ino = ino;
	inode->i_private = subvol;
	spin_lock(&inode->i_lock);
	inode->i_state |= I_NEW;
	spin_unlock(&inode->i_lock);
	return inode;
}

void *ferrofs_inode_subvol(const struct inode *inode)
{
	return inode->i_private;
}

/* generic_fillattr, then the subvolume's own st_dev (0: the super_block's). */
void ferrofs_fill_kstat(struct mnt_idmap *idmap, const struct path *path, struct kstat *stat,
			u32 request_mask, dev_t dev)
{
	struct inode *inode = d_inode(path->dentry);

	generic_fillattr(idmap, request_mask, inode, stat);
	if (dev)
		stat->dev = dev;
	/* O_DIRECT's rule (read_iter, write_iter): the device's logical block
	 * size for memory, offsets and lengths alike. */
	if ((request_mask & STATX_DIOALIGN) && S_ISREG(inode->i_mode)) {
		stat->dio_mem_align = bdev_logical_block_size(inode->i_sb->s_bdev);
		stat->dio_offset_align = stat->dio_mem_align;
		stat->result_mask |= STATX_DIOALIGN;
	}
}

/* Nothing of the inode waits for writeback. Called under i_lock. */
bool ferrofs_inode_clean(struct inode *inode)
{
	return !(inode->i_state & I_DIRTY_ALL) &&
	       !mapping_tagged(inode->i_mapping, PAGECACHE_TAG_DIRTY) &&
	       !mapping_tagged(inode->i_mapping, PAGECACHE_TAG_WRITEBACK);
}

int ferrofs_generic_drop_inode(struct inode *inode)
{
	return generic_drop_inode(inode);
}

dev_t ferrofs_sb_dev(struct super_block *sb)
{
	return sb->s_dev;
}

const int FERROFS_MAY_WRITE = MAY_WRITE, FERROFS_MAY_EXEC = MAY_EXEC,
	FERROFS_MAY_NOT_BLOCK = MAY_NOT_BLOCK;

unsigned int ferrofs_d_count(const struct dentry *dentry)
{
	return d_count(dentry);
}

bool ferrofs_d_has_children(struct dentry *dentry)
{
	bool any;

	spin_lock(&dentry->d_lock);
	any = !hlist_empty(&dentry->d_children);
	spin_unlock(&dentry->d_lock);
	return any;
}

/* lookup_one_len: the caller holds @parent's i_rwsem. */
struct dentry *ferrofs_lookup_one(struct dentry *parent, const char *name, int len)
{
	return lookup_one_len(name, parent, len);
}

struct dentry *ferrofs_file_dentry(struct file *file)
{
	return file->f_path.dentry;
}

void ferrofs_inode_lock_parent(struct inode *inode)
{
	inode_lock_nested(inode, I_MUTEX_PARENT);
}

/*
 * What vfs_rmdir does to a removed directory while it is still locked;
 * d_invalidate then detaches what is mounted below it.
 */
void ferrofs_mark_dead_dir(struct dentry *dentry)
{
	d_inode(dentry)->i_flags |= S_DEAD;
	dont_mount(dentry);
}

void ferrofs_d_delete(struct inode *dir, struct dentry *dentry)
{
	d_delete_notify(dir, dentry);
}

int ferrofs_copy_from_user(void *to, u64 from, size_t len)
{
	return copy_from_user(to, u64_to_user_ptr(from), len) ? -EFAULT : 0;
}

int ferrofs_copy_to_user(u64 to, const void *from, size_t len)
{
	return copy_to_user(u64_to_user_ptr(to), from, len) ? -EFAULT : 0;
}

int ferrofs_file_permission(struct file *file, struct inode *inode, int mask)
{
	return inode_permission(file_mnt_idmap(file), inode, mask);
}

bool ferrofs_file_owner_or_capable(struct file *file, struct inode *inode)
{
	return inode_owner_or_capable(file_mnt_idmap(file), inode);
}

struct dentry *ferrofs_fc_root(struct fs_context *fc)
{
	return fc->root;
}

void ferrofs_fc_set_root(struct fs_context *fc, struct dentry *root)
{
	fc->root = root;
}

/*
 * Undoes a get_tree_bdev that succeeded, for a get_tree that fails after
 * it: the root goes, and the super_block, still locked, is deactivated
 * (which unlocks it), as the VFS does only once get_tree succeeded.
 */
void ferrofs_fc_drop_root(struct fs_context *fc)
{
	struct super_block *sb = fc->root->d_sb;

	dput(fc->root);
	fc->root = NULL;
	deactivate_locked_super(sb);
}

bool ferrofs_file_writable(struct file *file)
{
	return file->f_mode & FMODE_WRITE;
}

struct mnt_idmap *ferrofs_file_idmap(struct file *file)
{
	return file_mnt_idmap(file);
}

/* A random (version 4) UUID for a new subvolume. */
void ferrofs_uuid(u8 out[16])
{
	generate_random_uuid(out);
}

struct ferrofs_worker {
	struct work_struct work;
	struct super_block *sb;
	bool (*step)(struct super_block *sb);
	bool stopped;
};

static void ferrofs_worker_fn(struct work_struct *work)
{
	struct ferrofs_worker *w = container_of(work, struct ferrofs_worker, work);

	if (READ_ONCE(w->stopped))
		return;
	/* Requeued rather than looped, so a stop waits for one step only. */
	if (w->step(w->sb) && !READ_ONCE(w->stopped))
		queue_work(system_long_wq, &w->work);
}

struct ferrofs_worker *ferrofs_worker_new(struct super_block *sb, bool (*step)(struct super_block *sb))
{
	struct ferrofs_worker *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	INIT_WORK(&w->work, ferrofs_worker_fn);
	w->sb = sb;
	w->step = step;
	w->stopped = true;
	return w;
}

/* Runs the steps soon, unless stopped. */
void ferrofs_worker_kick(struct ferrofs_worker *w)
{
	if (!READ_ONCE(w->stopped))
		queue_work(system_long_wq, &w->work);
}

/* No step starts after this returns; one in progress is waited for. */
void ferrofs_worker_stop(struct ferrofs_worker *w)
{
	WRITE_ONCE(w->stopped, true);
	cancel_work_sync(&w->work);
}

/* Lets kicks run steps again (does not kick). */
void ferrofs_worker_allow(struct ferrofs_worker *w)
{
	WRITE_ONCE(w->stopped, false);
}

void ferrofs_worker_free(struct ferrofs_worker *w)
{
	if (!w)
		return;
	ferrofs_worker_stop(w);
	kfree(w);
}
