//! Kernel structure offsets from the running kernel's BTF, for the in-kernel path walk.
//!
//! The walk needs a dozen fields of `task_struct`, `fs_struct`, `files_struct`, `fdtable`,
//! `file`, `dentry`, `mount`, `vfsmount`, `nsproxy` and `mnt_namespace`. Their offsets change
//! between kernel builds, and Rust eBPF programs have no CO-RE, so they are looked up here and
//! passed to the program as a global. Anonymous struct/union members are searched through.

use agent_common::offsets::KernelOffsets;
use btf_rs::{Btf, Type};

/// Where the kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Errors finding offsets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The BTF file could not be parsed.
    #[error("failed to read kernel BTF from {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: btf_rs::Error,
    },
    /// A struct or field is missing from this kernel's BTF.
    #[error("kernel BTF has no field {field} in struct {strukt}")]
    Missing {
        /// Struct name.
        strukt: &'static str,
        /// Dotted field path.
        field: &'static str,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads every offset from the BTF at `path`.
pub fn from_btf_file(path: &str) -> Result<KernelOffsets> {
    let btf = Btf::from_file(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    from_btf(&btf)
}

/// Reads every offset from the BTF at `path`, and lists the watched syscalls whose
/// `__x64_sys_*` function the trampoline design cannot read ([`untyped_syscall_args`]).
pub fn probe_btf_file(path: &str) -> Result<(KernelOffsets, Vec<&'static str>)> {
    let btf = Btf::from_file(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    Ok((from_btf(&btf)?, untyped_syscall_args(&btf)))
}

/// The watched syscalls whose `__x64_sys_*` function takes a `struct pt_regs *` that this
/// kernel's BTF only forward-declares (seen on Debian's 5.10: `__x64_sys_bind`). A trampoline
/// program cannot read such an argument ("arg0 type FWD is not a struct"), so the trampoline
/// design is not tried. Syscalls this kernel does not have are not listed.
pub fn untyped_syscall_args(btf: &Btf) -> Vec<&'static str> {
    agent_common::syscalls::TRACEPOINTS
        .iter()
        .filter(|w| {
            let Ok(funcs) = btf.resolve_types_by_name(&format!("__x64_sys_{}", w.name)) else {
                return false;
            };
            let Some(Type::Func(func)) = funcs.into_iter().find(|t| matches!(t, Type::Func(_)))
            else {
                return false;
            };
            let typed = (|| {
                let Type::FuncProto(proto) = btf.resolve_chained_type(&func).ok()? else {
                    return None;
                };
                let arg = btf.resolve_chained_type(proto.parameters.first()?).ok()?;
                let Type::Ptr(ptr) = strip(btf, arg)? else {
                    return None;
                };
                let pointee = strip(btf, btf.resolve_chained_type(&ptr).ok()?)?;
                Some(matches!(pointee, Type::Struct(_)))
            })();
            typed != Some(true)
        })
        .map(|w| w.name)
        .collect()
}

/// Reads every offset from parsed BTF.
pub fn from_btf(btf: &Btf) -> Result<KernelOffsets> {
    let f = |strukt: &'static str, field: &'static str| {
        offset_of(btf, strukt, field).ok_or(Error::Missing { strukt, field })
    };
    Ok(KernelOffsets {
        valid: 1,
        task_fs: f("task_struct", "fs")?,
        task_files: f("task_struct", "files")?,
        task_nsproxy: f("task_struct", "nsproxy")?,
        fs_root: f("fs_struct", "root")?,
        fs_pwd: f("fs_struct", "pwd")?,
        path_mnt: f("path", "mnt")?,
        path_dentry: f("path", "dentry")?,
        files_fdt: f("files_struct", "fdt")?,
        fdt_max_fds: f("fdtable", "max_fds")?,
        fdt_fd: f("fdtable", "fd")?,
        file_path: f("file", "f_path")?,
        dentry_parent: f("dentry", "d_parent")?,
        dentry_name: f("dentry", "d_name.name")?,
        mount_mnt: f("mount", "mnt")?,
        mount_parent: f("mount", "mnt_parent")?,
        mount_mountpoint: f("mount", "mnt_mountpoint")?,
        vfsmount_root: f("vfsmount", "mnt_root")?,
        nsproxy_mnt_ns: f("nsproxy", "mnt_ns")?,
        mnt_ns_inum: f("mnt_namespace", "ns.inum")?,
        pt_regs_args: [
            f("pt_regs", "di")?,
            f("pt_regs", "si")?,
            f("pt_regs", "dx")?,
            f("pt_regs", "r10")?,
            f("pt_regs", "r8")?,
            f("pt_regs", "r9")?,
        ],
        ..cgroup_offsets(btf)
    })
}

/// The `struct cgroup` ancestry fields, where this kernel has them (`ancestor_ids` was
/// replaced by `ancestors` in 5.19, after `bpf_get_current_ancestor_cgroup_id` reached
/// tracepoint programs in 5.14, so only kernels that need the fields have them);
/// `cgroup_valid == 0` otherwise.
fn cgroup_offsets(btf: &Btf) -> KernelOffsets {
    let f = |strukt, field| offset_of(btf, strukt, field);
    match (
        f("task_struct", "cgroups"),
        f("css_set", "dfl_cgrp"),
        f("cgroup", "level"),
        f("cgroup", "ancestor_ids"),
    ) {
        (Some(task_cgroups), Some(css_set_dfl_cgrp), Some(cgroup_level), Some(ids)) => {
            KernelOffsets {
                cgroup_valid: 1,
                task_cgroups,
                css_set_dfl_cgrp,
                cgroup_level,
                cgroup_ancestor_ids: ids,
                ..KernelOffsets::default()
            }
        }
        _ => KernelOffsets::default(),
    }
}

/// Byte offset of a dotted field path inside the named struct.
fn offset_of(btf: &Btf, strukt: &str, field: &str) -> Option<u64> {
    let types = btf.resolve_types_by_name(strukt).ok()?;
    let members = types.iter().find_map(|t| match t {
        Type::Struct(s) if !s.members.is_empty() => Some(s.members.clone()),
        _ => None,
    })?;
    let mut parts = field.split('.');
    let first = parts.next()?;
    let (mut bits, mut ty) = find_member(btf, &members, first)?;
    for part in parts {
        let inner = match strip(btf, ty)? {
            Type::Struct(s) | Type::Union(s) => s.members,
            _ => return None,
        };
        let (b, t) = find_member(btf, &inner, part)?;
        bits += b;
        ty = t;
    }
    (bits % 8 == 0).then_some(u64::from(bits / 8))
}

/// Finds `name` among `members`, descending into anonymous struct/union members. Returns the
/// bit offset and the member's type.
fn find_member(btf: &Btf, members: &[btf_rs::Member], name: &str) -> Option<(u32, Type)> {
    for m in members {
        let member_name = btf.resolve_name(m).unwrap_or_default();
        let ty = btf.resolve_chained_type(m).ok()?;
        if member_name == name {
            return Some((m.bit_offset(), ty));
        }
        if member_name.is_empty() {
            if let Some(Type::Struct(s) | Type::Union(s)) = strip(btf, ty) {
                if let Some((b, t)) = find_member(btf, &s.members, name) {
                    return Some((m.bit_offset() + b, t));
                }
            }
        }
    }
    None
}

/// Follows typedefs and qualifiers to the underlying type.
fn strip(btf: &Btf, mut ty: Type) -> Option<Type> {
    for _ in 0..16 {
        match &ty {
            Type::Typedef(_)
            | Type::Const(_)
            | Type::Volatile(_)
            | Type::Restrict(_)
            | Type::TypeTag(_) => {
                let inner = ty.as_btf_type()?;
                ty = btf.resolve_chained_type(inner).ok()?;
            }
            _ => return Some(ty),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uses the running kernel's BTF when there is one (every machine we support has it).
    #[test]
    fn finds_every_offset_on_this_kernel() {
        if !std::path::Path::new(VMLINUX_BTF).exists() {
            assert!(
                std::env::var("CI").is_err(),
                "CI machines must have {VMLINUX_BTF}"
            );
            eprintln!("skipping test - no {VMLINUX_BTF}");
            return;
        }
        let o = from_btf_file(VMLINUX_BTF).expect("offsets");
        assert_eq!(o.valid, 1);
        assert_eq!(o.path_mnt, 0, "struct path starts with mnt");
        assert_eq!(o.path_dentry, 8);
        assert_ne!(o.task_fs, 0);
        assert_ne!(o.fs_pwd, o.fs_root);
        assert!(o.dentry_name > o.dentry_parent, "d_name follows d_parent");
        // The user-visible ptrace layout of x86_64 `struct pt_regs`.
        assert_eq!(o.pt_regs_args, [112, 104, 96, 56, 72, 64]);
        let (_, untyped) = probe_btf_file(VMLINUX_BTF).expect("btf");
        assert!(
            untyped.is_empty(),
            "this kernel types every syscall function: {untyped:?}"
        );
    }
}
