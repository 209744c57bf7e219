/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for extended attributes, POSIX ACLs and inode flags: the kernel
 * helpers the xattr handlers need that kernel::bindings lacks on 6.12.
 * Included by ferrofs_shim.h; implemented in xattr_shim.c.
 */
#ifndef FERROFS_SHIM_XATTR_H
#define FERROFS_SHIM_XATTR_H

#include <linux/xattr.h>
#include <linux/posix_acl.h>
#include <linux/fileattr.h>

/* Mount: the xattr handlers, and ACL support (the umask becomes ours). */
void ferrofs_sb_init_xattr(struct super_block *sb, const struct xattr_handler *const *handlers);
extern const int FERROFS_XATTR_CREATE, FERROFS_XATTR_REPLACE;

/* POSIX ACLs, in the system.posix_acl_* xattr format of the initial user namespace */
extern const int FERROFS_ACL_TYPE_ACCESS, FERROFS_ACL_TYPE_DEFAULT;
struct posix_acl *ferrofs_acl_from_xattr(const void *value, size_t size);
size_t ferrofs_acl_xattr_size(const struct posix_acl *acl);
int ferrofs_acl_to_xattr(const struct posix_acl *acl, void *buf, size_t size);
void ferrofs_acl_release(struct posix_acl *acl);
void ferrofs_set_cached_acl(struct inode *inode, int type, struct posix_acl *acl);
void ferrofs_forget_cached_acl(struct inode *inode, int type);
int ferrofs_acl_update_mode(struct mnt_idmap *idmap, struct inode *inode, u32 *mode,
			    struct posix_acl **acl);
int ferrofs_acl_create(struct inode *dir, u32 *mode, struct posix_acl **default_acl,
		       struct posix_acl **acl);
int ferrofs_acl_chmod(struct mnt_idmap *idmap, struct dentry *dentry);

/* What a new inode is known to lack, and S_NOSEC */
void ferrofs_inode_new_xattrs(struct inode *inode, bool no_acl);
bool ferrofs_inode_nosec(const struct inode *inode);
void ferrofs_inode_clear_nosec(struct inode *inode);

/* Inode flags (FS_IOC_GETFLAGS/SETFLAGS) */
u32 ferrofs_fileattr_flags(const struct fileattr *fa);
bool ferrofs_fileattr_has_fsx(const struct fileattr *fa);
void ferrofs_fileattr_fill_flags(struct fileattr *fa, u32 flags);

#endif
