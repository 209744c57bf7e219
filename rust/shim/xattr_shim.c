// SPDX-License-Identifier: GPL-2.0
/*
 * Static inline kernel helpers for the xattr, ACL and inode-flag code of the
 * ferrofs adapter, wrapped as real functions (declared in
 * ferrofs_shim_xattr.h). No logic lives here beyond widening umode_t.
 */
#include "ferrofs_shim.h"
#include <linux/posix_acl_xattr.h>

const int FERROFS_XATTR_CREATE = XATTR_CREATE, FERROFS_XATTR_REPLACE = XATTR_REPLACE;
const int FERROFS_ACL_TYPE_ACCESS = ACL_TYPE_ACCESS, FERROFS_ACL_TYPE_DEFAULT = ACL_TYPE_DEFAULT;

/*
 * Must run before the first inode of @sb is allocated: inode_init_always()
 * gives an inode IOP_XATTR only if s_xattr is already set. With SB_POSIXACL
 * the VFS no longer applies the umask; posix_acl_create() does.
 */
void ferrofs_sb_init_xattr(struct super_block *sb, const struct xattr_handler *const *handlers)
{
	sb->s_xattr = handlers;
	sb->s_flags |= SB_POSIXACL;
}

struct posix_acl *ferrofs_acl_from_xattr(const void *value, size_t size)
{
	return posix_acl_from_xattr(&init_user_ns, value, size);
}

size_t ferrofs_acl_xattr_size(const struct posix_acl *acl)
{
	return posix_acl_xattr_size(acl->a_count);
}

int ferrofs_acl_to_xattr(const struct posix_acl *acl, void *buf, size_t size)
{
	return posix_acl_to_xattr(&init_user_ns, acl, buf, size);
}

void ferrofs_acl_release(struct posix_acl *acl)
{
	posix_acl_release(acl);
}

void ferrofs_set_cached_acl(struct inode *inode, int type, struct posix_acl *acl)
{
	set_cached_acl(inode, type, acl);
}

void ferrofs_forget_cached_acl(struct inode *inode, int type)
{
	forget_cached_acl(inode, type);
}

/*
 * A new inode has no security xattr (ferrofs stores none at create), so it
 * gets S_NOSEC unless setuid or setgid, as file_remove_privs() would give it
 * after the first write's look-up of security.capability; and with @no_acl
 * (no ACL was inherited) "no ACL" is cached, so the first chmod does not
 * look one up.
 */
void ferrofs_inode_new_xattrs(struct inode *inode, bool no_acl)
{
	inode_has_no_xattr(inode);
	if (no_acl)
		cache_no_acl(inode);
}

/* Unlocked, as file_remove_privs() reads it too; see ferrofs_inode_clear_nosec. */
bool ferrofs_inode_nosec(const struct inode *inode)
{
	return READ_ONCE(inode->i_flags) & S_NOSEC;
}

/* Under i_rwsem, as every i_flags change (__vfs_setxattr_noperm does the same). */
void ferrofs_inode_clear_nosec(struct inode *inode)
{
	inode->i_flags &= ~S_NOSEC;
}

int ferrofs_acl_update_mode(struct mnt_idmap *idmap, struct inode *inode, u32 *mode,
			    struct posix_acl **acl)
{
	umode_t m = *mode;
	int err = posix_acl_update_mode(idmap, inode, &m, acl);

	*mode = m;
	return err;
}

int ferrofs_acl_create(struct inode *dir, u32 *mode, struct posix_acl **default_acl,
		       struct posix_acl **acl)
{
	umode_t m = *mode;
	int err = posix_acl_create(dir, &m, default_acl, acl);

	*mode = m;
	return err;
}

int ferrofs_acl_chmod(struct mnt_idmap *idmap, struct dentry *dentry)
{
	return posix_acl_chmod(idmap, dentry, d_inode(dentry)->i_mode);
}

u32 ferrofs_fileattr_flags(const struct fileattr *fa)
{
	return fa->flags;
}

bool ferrofs_fileattr_has_fsx(const struct fileattr *fa)
{
	return fileattr_has_fsx(fa);
}

void ferrofs_fileattr_fill_flags(struct fileattr *fa, u32 flags)
{
	fileattr_fill_flags(fa, flags);
}
