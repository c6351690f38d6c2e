//! Reading kernel structures: the current task's root, cwd, open files and cgroup, and the walk
//! from a directory up to the task's root that gives a relative path's base as the container
//! sees it.
//!
//! Field offsets come from userspace (read from the running kernel's BTF) through the
//! [`OFFSETS`] global, because Rust eBPF programs have no CO-RE relocations. With
//! `OFFSETS.valid == 0` nothing here is used and relative paths are flagged unresolved. Fields
//! are read one at a time where they are used ([`off!`]): the struct is never copied onto the
//! 512-byte stack.

use agent_common::{offsets::KernelOffsets, MAX_NAME, MAX_PATH_DEPTH, PAYLOAD_CAP, PAYLOAD_MASK};
use aya_ebpf::helpers::{
    bpf_probe_read_kernel,
    generated::{bpf_get_current_task, bpf_loop, bpf_probe_read_kernel_str},
};

use crate::maps::{LoopState, LOOP_STATE, SCRATCH};

/// Set by userspace before load (`EbpfLoader::override_global`); all zero means "unknown
/// kernel".
#[unsafe(no_mangle)]
pub(crate) static OFFSETS: KernelOffsets = KernelOffsets {
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
    pt_regs_args: [0; 6],
    cgroup_valid: 0,
    task_cgroups: 0,
    css_set_dfl_cgrp: 0,
    cgroup_level: 0,
    cgroup_ancestor_ids: 0,
};

/// One field of [`OFFSETS`], read so the compiler cannot fold the all-zero initial value.
macro_rules! off {
    ($($field:tt)+) => {
        {
            #[allow(unused_unsafe)]
            // SAFETY: reading our own global.
            let v = unsafe { core::ptr::read_volatile(&$crate::kernel::OFFSETS.$($field)+) };
            v
        }
    };
}
pub(crate) use off;

/// Whether userspace gave us the offsets (a single field, cheap to read on every call).
#[inline(always)]
pub fn offsets_valid() -> bool {
    off!(valid) != 0
}

/// A `struct path`: (vfsmount, dentry) kernel addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KPath {
    pub mnt: u64,
    pub dentry: u64,
}

#[inline(always)]
pub fn read_u64(addr: u64) -> Result<u64, i64> {
    // SAFETY: probe read of kernel memory; faults return an error.
    unsafe { bpf_probe_read_kernel(addr as *const u64) }.map_err(i64::from)
}

#[inline(always)]
fn read_u32(addr: u64) -> Result<u32, i64> {
    // SAFETY: probe read of kernel memory; faults return an error.
    unsafe { bpf_probe_read_kernel(addr as *const u32) }.map_err(i64::from)
}

#[inline(always)]
fn read_path(addr: u64) -> Result<KPath, i64> {
    Ok(KPath {
        mnt: read_u64(addr + off!(path_mnt))?,
        dentry: read_u64(addr + off!(path_dentry))?,
    })
}

/// The current task's `fs_struct` address.
#[inline(always)]
fn current_fs() -> Result<u64, i64> {
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    read_u64(task + off!(task_fs))
}

/// The current task's root directory.
#[inline(always)]
pub fn current_root() -> Result<KPath, i64> {
    read_path(current_fs()? + off!(fs_root))
}

/// The directory a relative name is looked up from: the cwd for `AT_FDCWD`, else the file open
/// on `dirfd`.
#[inline(always)]
pub fn base_dir(dirfd: i32) -> Result<KPath, i64> {
    if dirfd == agent_common::syscalls::AT_FDCWD {
        return read_path(current_fs()? + off!(fs_pwd));
    }
    if dirfd < 0 {
        return Err(-9); // EBADF
    }
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    let files = read_u64(task + off!(task_files))?;
    let fdt = read_u64(files + off!(files_fdt))?;
    let max_fds = read_u32(fdt + off!(fdt_max_fds))?;
    if dirfd as u32 >= max_fds {
        return Err(-9);
    }
    let fd_array = read_u64(fdt + off!(fdt_fd))?;
    let file = read_u64(fd_array + (dirfd as u64) * 8)?;
    if file == 0 {
        return Err(-9);
    }
    read_path(file + off!(file_path))
}

/// The current task's mount namespace inode number, 0 when unknown.
#[inline(always)]
pub fn current_mnt_ns() -> u64 {
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    read_u64(task + off!(task_nsproxy))
        .and_then(|ns| read_u64(ns + off!(nsproxy_mnt_ns)))
        .and_then(|mnt_ns| read_u32(mnt_ns + off!(mnt_ns_inum)))
        .map(u64::from)
        .unwrap_or(0)
}

/// The id of the current task's cgroup v2 ancestor at `level`, read from `struct cgroup` (what
/// `bpf_get_current_ancestor_cgroup_id` does on kernels that have it): 0 when the cgroup is
/// not that deep or the fields are unknown.
#[inline(always)]
pub fn ancestor_cgroup_id(level: i32) -> u64 {
    if off!(cgroup_valid) == 0 {
        return 0;
    }
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    let id = read_u64(task + off!(task_cgroups))
        .and_then(|css_set| read_u64(css_set + off!(css_set_dfl_cgrp)))
        .and_then(|cgrp| {
            let depth = read_u32(cgrp + off!(cgroup_level))? as i32;
            if level > depth {
                return Ok(0);
            }
            read_u64(cgrp + off!(cgroup_ancestor_ids) + (level as u64 & 63) * 8)
        });
    id.unwrap_or(0)
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
/// With `BOUNDED` the levels are a plain bounded loop (every kernel since 5.3); otherwise they
/// run under `bpf_loop` (5.17+), which the verifier checks once instead of once per level.
/// Either way the state lives in [`LOOP_STATE`]: values read from a map are unknown to the
/// verifier, so a step is checked once instead of once per distinct caller state.
#[inline(always)]
pub fn walk<const BOUNDED: bool>(start: usize, from: KPath, root: KPath) -> Walk {
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
        (*st).mount = from.mnt.wrapping_sub(off!(mount_mnt));
        (*st).root_dentry = root.dentry;
        (*st).root_mnt = root.mnt;
        (*st).off = start as u64;
        (*st).done = 0;
    }
    let failed = if BOUNDED {
        wp_walk_bounded() != 0
    } else {
        // SAFETY: the callback takes its state from LOOP_STATE, not from the context pointer.
        let loops = unsafe {
            bpf_loop(
                MAX_PATH_DEPTH as u32,
                walk_step as *mut core::ffi::c_void,
                core::ptr::null_mut(),
                0,
            )
        };
        loops < 0
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
        truncated: failed || done == 0,
    }
}

/// The levels of [`walk`] in a bounded loop, as a global function (see `wp_hash_bounded` for
/// why): the state is in [`LOOP_STATE`]; returns non-zero when it could not run.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_walk_bounded() -> i64 {
    let Some(st) = LOOP_STATE.get_ptr_mut(0) else {
        return 1;
    };
    for _ in 0..MAX_PATH_DEPTH {
        // SAFETY: per-CPU map value, ours while this program runs.
        if walk_level(unsafe { &mut *st }) {
            break;
        }
    }
    0
}

/// One level of [`walk`] under `bpf_loop`: returns 1 to stop (done or failed), 0 to go on.
#[inline(never)]
extern "C" fn walk_step(_index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let Some(st) = LOOP_STATE.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: per-CPU map value, ours while this program runs.
    i64::from(walk_level(unsafe { &mut *st }))
}

/// One level of [`walk`]: true to stop (done or failed).
#[inline(always)]
fn walk_level(st: &mut LoopState) -> bool {
    if st.dentry == st.root_dentry && st.mnt == st.root_mnt {
        st.done = 1;
        return true;
    }
    let Ok(mnt_root) = read_u64(st.mnt + off!(vfsmount_root)) else {
        return true;
    };
    if st.dentry == mnt_root {
        let Ok(parent) = read_u64(st.mount + off!(mount_parent)) else {
            return true;
        };
        if parent == st.mount {
            // The top of this mount namespace: the path is complete.
            st.done = 1;
            return true;
        }
        let Ok(mountpoint) = read_u64(st.mount + off!(mount_mountpoint)) else {
            return true;
        };
        st.dentry = mountpoint;
        st.mount = parent;
        st.mnt = parent + off!(mount_mnt);
        return false;
    }
    let Ok(parent) = read_u64(st.dentry + off!(dentry_parent)) else {
        return true;
    };
    if parent == st.dentry {
        st.done = 1;
        return true;
    }
    let Ok(name) = read_u64(st.dentry + off!(dentry_name)) else {
        return true;
    };
    let off = st.off as usize;
    if off > PAYLOAD_CAP - MAX_NAME {
        return true;
    }
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return true;
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
        return true;
    }
    st.off += n as u64;
    st.dentry = parent;
    false
}
