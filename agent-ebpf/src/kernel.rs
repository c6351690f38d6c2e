//! Reading kernel structures: the current task's root, cwd and open files, and the walk from a
//! directory up to the task's root that gives a relative path's base as the container sees it.
//!
//! Field offsets come from userspace (read from the running kernel's BTF) through the
//! [`OFFSETS`] global, because Rust eBPF programs have no CO-RE relocations. With
//! `OFFSETS.valid == 0` nothing here is used and relative paths are flagged unresolved.

use agent_common::{offsets::KernelOffsets, MAX_NAME, MAX_PATH_DEPTH, PAYLOAD_CAP, PAYLOAD_MASK};
use aya_ebpf::helpers::{
    bpf_probe_read_kernel,
    generated::{bpf_get_current_task, bpf_probe_read_kernel_str},
};

/// Set by userspace before load (`EbpfLoader::set_global`); all zero means "unknown kernel".
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets {
    valid: 0,
    task_fs: 0,
    task_files: 0,
    task_nsproxy: 0,
    fs_root: 0,
    fs_pwd: 0,
    path_mnt: 0,
    path_dentry: 0,
    files_fdt: 0,
    fdt_max_fds: 0,
    fdt_fd: 0,
    file_path: 0,
    dentry_parent: 0,
    dentry_name: 0,
    mount_mnt: 0,
    mount_parent: 0,
    mount_mountpoint: 0,
    vfsmount_root: 0,
    nsproxy_mnt_ns: 0,
    mnt_ns_inum: 0,
};

/// The offsets, read so the compiler cannot fold the all-zero initial value.
#[inline(always)]
pub fn offsets() -> KernelOffsets {
    // SAFETY: reading our own global.
    unsafe { core::ptr::read_volatile(&OFFSETS) }
}

/// A `struct path`: (vfsmount, dentry) kernel addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KPath {
    pub mnt: u64,
    pub dentry: u64,
}

#[inline(always)]
fn read_u64(addr: u64) -> Result<u64, i64> {
    // SAFETY: probe read of kernel memory; faults return an error.
    unsafe { bpf_probe_read_kernel(addr as *const u64) }.map_err(i64::from)
}

#[inline(always)]
fn read_path(addr: u64, o: &KernelOffsets) -> Result<KPath, i64> {
    Ok(KPath { mnt: read_u64(addr + o.path_mnt)?, dentry: read_u64(addr + o.path_dentry)? })
}

/// The current task's `fs_struct` address.
#[inline(always)]
fn current_fs(o: &KernelOffsets) -> Result<u64, i64> {
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    read_u64(task + o.task_fs)
}

/// The current task's root directory.
#[inline(always)]
pub fn current_root(o: &KernelOffsets) -> Result<KPath, i64> {
    read_path(current_fs(o)? + o.fs_root, o)
}

/// The directory a relative name is looked up from: the cwd for `AT_FDCWD`, else the file open
/// on `dirfd`.
#[inline(always)]
pub fn base_dir(dirfd: i32, o: &KernelOffsets) -> Result<KPath, i64> {
    if dirfd == agent_common::syscalls::AT_FDCWD {
        return read_path(current_fs(o)? + o.fs_pwd, o);
    }
    if dirfd < 0 {
        return Err(-9); // EBADF
    }
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    let files = read_u64(task + o.task_files)?;
    let fdt = read_u64(files + o.files_fdt)?;
    // SAFETY: probe read of kernel memory.
    let max_fds: u32 =
        unsafe { bpf_probe_read_kernel((fdt + o.fdt_max_fds) as *const u32) }.map_err(i64::from)?;
    if dirfd as u32 >= max_fds {
        return Err(-9);
    }
    let fd_array = read_u64(fdt + o.fdt_fd)?;
    let file = read_u64(fd_array + (dirfd as u64) * 8)?;
    if file == 0 {
        return Err(-9);
    }
    read_path(file + o.file_path, o)
}

/// The current task's mount namespace inode number, 0 when unknown.
#[inline(always)]
pub fn current_mnt_ns(o: &KernelOffsets) -> u64 {
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    let inum = read_u64(task + o.task_nsproxy)
        .and_then(|ns| read_u64(ns + o.nsproxy_mnt_ns))
        // SAFETY: probe read of kernel memory.
        .and_then(|mnt_ns| {
            unsafe { bpf_probe_read_kernel((mnt_ns + o.mnt_ns_inum) as *const u32) }
                .map_err(i64::from)
        });
    inum.map(u64::from).unwrap_or(0)
}

/// Outcome of [`walk`].
pub struct Walk {
    /// Payload offset after the last name written.
    pub end: usize,
    /// The walk stopped before reaching the root (too deep, too long, or a read failed).
    pub truncated: bool,
}

/// Writes the names from `from` up to `root` (excluding it) into `payload` at `start`, leaf
/// first, each NUL-terminated. Mount points are crossed to their parent mount, so a cwd on a
/// volume still yields the container's path. At most [`MAX_PATH_DEPTH`] levels.
#[inline(always)]
pub fn walk(payload: *mut u8, start: usize, from: KPath, root: KPath, o: &KernelOffsets) -> Walk {
    let mut off = start;
    let mut dentry = from.dentry;
    let mut mnt = from.mnt;
    let mut mount = mnt.wrapping_sub(o.mount_mnt);
    for _ in 0..MAX_PATH_DEPTH {
        if dentry == root.dentry && mnt == root.mnt {
            return Walk { end: off, truncated: false };
        }
        let Ok(mnt_root) = read_u64(mnt + o.vfsmount_root) else { break };
        if dentry == mnt_root {
            let Ok(parent) = read_u64(mount + o.mount_parent) else { break };
            if parent == mount {
                // The top of this mount namespace: the path is complete.
                return Walk { end: off, truncated: false };
            }
            let Ok(mountpoint) = read_u64(mount + o.mount_mountpoint) else { break };
            dentry = mountpoint;
            mount = parent;
            mnt = mount + o.mount_mnt;
            continue;
        }
        let Ok(parent) = read_u64(dentry + o.dentry_parent) else { break };
        if parent == dentry {
            return Walk { end: off, truncated: false };
        }
        let Ok(name) = read_u64(dentry + o.dentry_name) else { break };
        if off > PAYLOAD_CAP - MAX_NAME {
            break;
        }
        // SAFETY: `off & PAYLOAD_MASK` + MAX_NAME stays inside payload + slack.
        let n = unsafe {
            bpf_probe_read_kernel_str(
                payload.add(off & PAYLOAD_MASK).cast(),
                MAX_NAME as u32,
                name as *const core::ffi::c_void,
            )
        };
        if n <= 0 {
            break;
        }
        off += n as usize;
        dentry = parent;
    }
    Walk { end: off, truncated: true }
}
