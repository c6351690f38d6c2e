//! Reading kernel structures: the current task's root, cwd and open files, and the walk from a
//! directory up to the task's root that gives a relative path's base as the container sees it.
//!
//! Field offsets come from userspace (read from the running kernel's BTF) through the
//! [`OFFSETS`] global, because Rust eBPF programs have no CO-RE relocations. With
//! `OFFSETS.valid == 0` nothing here is used and relative paths are flagged unresolved.

use agent_common::{offsets::KernelOffsets, MAX_NAME, MAX_PATH_DEPTH, PAYLOAD_CAP, PAYLOAD_MASK};
use aya_ebpf::helpers::{
    bpf_probe_read_kernel,
    generated::{bpf_get_current_task, bpf_loop, bpf_probe_read_kernel_str},
};

use crate::maps::{LOOP_STATE, SCRATCH};

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

/// Whether userspace gave us the offsets (a single field, cheap to read on every call).
#[inline(always)]
pub fn offsets_valid() -> bool {
    // SAFETY: reading our own global.
    unsafe { core::ptr::read_volatile(&OFFSETS.valid) != 0 }
}

/// A `struct path`: (vfsmount, dentry) kernel addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KPath {
    pub mnt: u64,
    pub dentry: u64,
}

impl KPath {
    /// No path.
    pub const ZERO: KPath = KPath { mnt: 0, dentry: 0 };
}

#[inline(always)]
fn read_u64(addr: u64) -> Result<u64, i64> {
    // SAFETY: probe read of kernel memory; faults return an error.
    unsafe { bpf_probe_read_kernel(addr as *const u64) }.map_err(i64::from)
}

#[inline(always)]
fn read_path(addr: u64, o: &KernelOffsets) -> Result<KPath, i64> {
    Ok(KPath {
        mnt: read_u64(addr + o.path_mnt)?,
        dentry: read_u64(addr + o.path_dentry)?,
    })
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

/// Writes the names from `from` up to `root` (excluding it) into the scratch payload at
/// `start`, leaf first, each NUL-terminated. Mount points are crossed to their parent mount,
/// so a cwd on a volume still yields the container's path. At most [`MAX_PATH_DEPTH`] levels.
///
/// The loop runs under `bpf_loop` with its state in [`LOOP_STATE`], so the verifier checks one
/// step once instead of every unrolled level for every caller state.
#[inline(always)]
pub fn walk(start: usize, from: KPath, root: KPath, o: &KernelOffsets) -> Walk {
    let Some(st) = LOOP_STATE.get_ptr_mut(0) else {
        return Walk {
            end: start,
            truncated: true,
        };
    };
    // SAFETY: per-CPU map value, ours while this program runs.
    unsafe {
        (*st).dentry = from.dentry;
        (*st).mnt = from.mnt;
        (*st).mount = from.mnt.wrapping_sub(o.mount_mnt);
        (*st).root_dentry = root.dentry;
        (*st).root_mnt = root.mnt;
        (*st).off = start as u64;
        (*st).done = 0;
    }
    // SAFETY: the callback takes its state from LOOP_STATE, not from the context pointer.
    let loops = unsafe {
        bpf_loop(
            MAX_PATH_DEPTH as u32,
            walk_step as *mut core::ffi::c_void,
            core::ptr::null_mut(),
            0,
        )
    };
    // SAFETY: as above.
    let (end, done) = unsafe { ((*st).off as usize, (*st).done) };
    let end = if end < start || end > PAYLOAD_CAP {
        start
    } else {
        end
    };
    Walk {
        end,
        truncated: loops < 0 || done == 0,
    }
}

/// One level of [`walk`]: returns 1 to stop (done or failed), 0 to go on.
#[inline(never)]
extern "C" fn walk_step(_index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let Some(st) = LOOP_STATE.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: per-CPU map value, ours while this program runs.
    let st = unsafe { &mut *st };
    let o = offsets();
    if st.dentry == st.root_dentry && st.mnt == st.root_mnt {
        st.done = 1;
        return 1;
    }
    let Ok(mnt_root) = read_u64(st.mnt + o.vfsmount_root) else {
        return 1;
    };
    if st.dentry == mnt_root {
        let Ok(parent) = read_u64(st.mount + o.mount_parent) else {
            return 1;
        };
        if parent == st.mount {
            // The top of this mount namespace: the path is complete.
            st.done = 1;
            return 1;
        }
        let Ok(mountpoint) = read_u64(st.mount + o.mount_mountpoint) else {
            return 1;
        };
        st.dentry = mountpoint;
        st.mount = parent;
        st.mnt = parent + o.mount_mnt;
        return 0;
    }
    let Ok(parent) = read_u64(st.dentry + o.dentry_parent) else {
        return 1;
    };
    if parent == st.dentry {
        st.done = 1;
        return 1;
    }
    let Ok(name) = read_u64(st.dentry + o.dentry_name) else {
        return 1;
    };
    let off = st.off as usize;
    if off > PAYLOAD_CAP - MAX_NAME {
        return 1;
    }
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: `off & PAYLOAD_MASK` + MAX_NAME stays inside payload + slack.
    let n = unsafe {
        bpf_probe_read_kernel_str(
            (*scratch)
                .payload
                .as_mut_ptr()
                .add(off & PAYLOAD_MASK)
                .cast(),
            MAX_NAME as u32,
            name as *const core::ffi::c_void,
        )
    };
    if n <= 0 {
        return 1;
    }
    st.off += n as u64;
    st.dentry = parent;
    0
}
