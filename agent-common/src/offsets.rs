//! Offsets of the kernel structure fields the exit program walks to turn a relative path's
//! base directory (cwd or dirfd) into the path the container sees.
//!
//! Rust eBPF programs have no CO-RE relocations, so userspace reads these offsets from the
//! running kernel's BTF (`/sys/kernel/btf/vmlinux`) and hands them to the program as a global
//! before it is loaded. `valid == 0` turns the walk off (relative paths are then resolved in
//! userspace, best effort, and flagged).

/// Byte offsets into kernel structures, all from the start of the named struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// 1 when every field below was found.
    pub valid: u64,
    /// `task_struct.fs` (struct fs_struct *).
    pub task_fs: u64,
    /// `task_struct.files` (struct files_struct *).
    pub task_files: u64,
    /// `task_struct.nsproxy` (struct nsproxy *).
    pub task_nsproxy: u64,
    /// `fs_struct.root` (struct path).
    pub fs_root: u64,
    /// `fs_struct.pwd` (struct path).
    pub fs_pwd: u64,
    /// `path.mnt` (struct vfsmount *).
    pub path_mnt: u64,
    /// `path.dentry` (struct dentry *).
    pub path_dentry: u64,
    /// `files_struct.fdt` (struct fdtable *).
    pub files_fdt: u64,
    /// `fdtable.max_fds` (unsigned int).
    pub fdt_max_fds: u64,
    /// `fdtable.fd` (struct file **).
    pub fdt_fd: u64,
    /// `file.f_path` (struct path).
    pub file_path: u64,
    /// `dentry.d_parent` (struct dentry *).
    pub dentry_parent: u64,
    /// `dentry.d_name.name` (const unsigned char *).
    pub dentry_name: u64,
    /// `mount.mnt` (struct vfsmount, embedded).
    pub mount_mnt: u64,
    /// `mount.mnt_parent` (struct mount *).
    pub mount_parent: u64,
    /// `mount.mnt_mountpoint` (struct dentry *).
    pub mount_mountpoint: u64,
    /// `vfsmount.mnt_root` (struct dentry *).
    pub vfsmount_root: u64,
    /// `nsproxy.mnt_ns` (struct mnt_namespace *).
    pub nsproxy_mnt_ns: u64,
    /// `mnt_namespace.ns.inum` (unsigned int).
    pub mnt_ns_inum: u64,
    /// `pt_regs.{di, si, dx, r10, r8, r9}`: the six syscall arguments as the task saved them
    /// on entry, in the syscall ABI's order (the exit-only design reads them).
    pub pt_regs_args: [u64; 6],
    /// 1 when the cgroup fields below were found (kernels that still have
    /// `cgroup.ancestor_ids`, before 5.19): the walk used where the
    /// `bpf_get_current_ancestor_cgroup_id` helper is missing (before 5.14).
    pub cgroup_valid: u64,
    /// `task_struct.cgroups` (struct css_set *).
    pub task_cgroups: u64,
    /// `css_set.dfl_cgrp` (struct cgroup *, the cgroup v2 one).
    pub css_set_dfl_cgrp: u64,
    /// `cgroup.level` (int).
    pub cgroup_level: u64,
    /// `cgroup.ancestor_ids` (u64[], the ids of the cgroup's ancestors by level).
    pub cgroup_ancestor_ids: u64,
}
