//! What the running kernel offers the capture programs, and which designs it allows.
//!
//! Probed once at start: the kernel's BTF (and the structure offsets read from it), the BPF
//! helpers each design calls (with aya's `is_helper_supported`, which loads a two-instruction
//! program per helper), and the ring buffer. [`Design`] lists the designs best first;
//! [`KernelProbe::allows`] says why one cannot run here, naming the missing feature and the
//! kernel that brought it. docs/kernels.md holds the measured table.

use agent_common::offsets::KernelOffsets;
use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{is_helper_supported, is_map_supported, BpfHelper},
};

use super::offsets;

/// A way of attaching the capture programs, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// One `fexit` program (a trampoline) on each watched syscall's `__x64_sys_*` function: an
    /// unrelated syscall pays nothing. Needs BTF and a kernel that allows trampolines (5.10+;
    /// some kernels lock function tracing: then the next design is used).
    Fexit,
    /// One program on each `sys_exit_*` tracepoint; the arguments come from the registers the
    /// task saved on entry (`bpf_task_pt_regs`). Needs BTF and 5.17+ (`bpf_loop`).
    ExitOnly,
    /// A program on each `sys_enter_*` tracepoint (filter, save the arguments) and one on each
    /// `sys_exit_*` (read the paths, emit). Needs 5.17+ (`bpf_loop`).
    Pair,
    /// The pair with bounded loops instead of `bpf_loop`, and the cgroup ancestry read from
    /// `struct cgroup` where the helper is missing. 5.10+.
    Compat,
}

impl Design {
    /// Every design, best first (the order `--hook auto` tries them in).
    pub const ALL: [Design; 4] = [
        Design::Fexit,
        Design::ExitOnly,
        Design::Pair,
        Design::Compat,
    ];

    /// The name used by `--hook`, the report (`recording.hook`) and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Design::Fexit => "fexit",
            Design::ExitOnly => "exit-only",
            Design::Pair => "pair",
            Design::Compat => "compat",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_named_only_below_it() {
        assert!(floor_hint("5.4.0-150-generic").contains("needs Linux 5.10 or newer"));
        assert!(floor_hint("4.19.0").contains("needs Linux 5.10"));
        assert!(floor_hint("5.10.0-43-cloud-amd64").contains("docs/kernels.md"));
        assert!(floor_hint("6.18.44-fc").contains("docs/kernels.md"));
        assert!(floor_hint("").contains("docs/kernels.md"));
    }
}

impl std::fmt::Display for Design {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the kernel's BTF is read from: `/sys/kernel/btf/vmlinux`, or `WRITEPATH_VMLINUX_BTF`
/// (a kernel without BTF is tested by pointing it at a file that does not exist).
pub fn btf_path() -> String {
    std::env::var("WRITEPATH_VMLINUX_BTF").unwrap_or_else(|_| offsets::VMLINUX_BTF.to_string())
}

/// The oldest kernel any design loads on (the compat design), as the error messages say it.
pub const OLDEST_KERNEL: &str = "5.10";

/// What to tell a user whose kernel loads no design: the oldest kernel that works when theirs
/// is older, else where the designs' needs are listed.
pub fn floor_hint(release: &str) -> String {
    let mut v = release.split(['.', '-']).map(|x| x.parse::<u32>().ok());
    match (v.next().flatten(), v.next().flatten()) {
        (Some(major), Some(minor)) if (major, minor) < (5, 10) => {
            format!("writepath needs Linux {OLDEST_KERNEL} or newer")
        }
        _ => "what each design needs: docs/kernels.md, `writepath kernel`".to_string(),
    }
}

/// What the running kernel offers.
#[derive(Clone, Debug, Default)]
pub struct KernelProbe {
    /// `uname -r`.
    pub release: String,
    /// Structure offsets from `/sys/kernel/btf/vmlinux`; `valid == 0` without usable BTF.
    pub offsets: KernelOffsets,
    /// Watched syscalls whose `__x64_sys_*` argument this kernel's BTF leaves untyped (the
    /// trampoline design cannot run then).
    pub untyped_syscall_args: Vec<&'static str>,
    /// Why the offsets could not be read, when they could not.
    pub btf_error: Option<String>,
    /// `BPF_MAP_TYPE_RINGBUF` (5.8).
    pub ringbuf: bool,
    /// `bpf_loop` (5.17).
    pub bpf_loop: bool,
    /// `bpf_task_pt_regs` (5.15).
    pub task_pt_regs: bool,
    /// `bpf_get_current_task_btf` (5.11).
    pub task_btf: bool,
    /// `bpf_get_current_ancestor_cgroup_id` in tracepoint programs (5.14).
    pub ancestor_helper: bool,
}

impl KernelProbe {
    /// Probes the running kernel. Never fails: what cannot be probed counts as missing.
    pub fn run() -> KernelProbe {
        let (offsets, untyped_syscall_args, btf_error) = match offsets::probe_btf_file(&btf_path())
        {
            Ok((o, untyped)) => (o, untyped, None),
            Err(e) => (KernelOffsets::default(), Vec::new(), Some(e.to_string())),
        };
        let helper =
            |h: BpfHelper| is_helper_supported(ProgramType::TracePoint, h).unwrap_or(false);
        KernelProbe {
            release: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            offsets,
            untyped_syscall_args,
            btf_error,
            ringbuf: is_map_supported(MapType::RingBuf).unwrap_or(false),
            bpf_loop: helper(BpfHelper::BPF_FUNC_loop),
            task_pt_regs: helper(BpfHelper::BPF_FUNC_task_pt_regs),
            task_btf: helper(BpfHelper::BPF_FUNC_get_current_task_btf),
            ancestor_helper: helper(BpfHelper::BPF_FUNC_get_current_ancestor_cgroup_id),
        }
    }

    /// Whether the kernel has usable BTF (the offsets were all found).
    pub fn btf(&self) -> bool {
        self.offsets.valid != 0
    }

    /// `Ok` when `design` can run here, else the first missing feature, with the kernel that
    /// brought it.
    pub fn allows(&self, design: Design) -> Result<(), &'static str> {
        let need = |ok: bool, what: &'static str| if ok { Ok(()) } else { Err(what) };
        need(self.ringbuf, "the BPF ring buffer (Linux 5.8)")?;
        let cgroups = || {
            need(
                self.ancestor_helper || self.offsets.cgroup_valid != 0,
                "bpf_get_current_ancestor_cgroup_id (Linux 5.14) or kernel BTF with \
                 cgroup.ancestor_ids",
            )
        };
        match design {
            Design::Fexit => {
                need(self.btf(), "kernel BTF (/sys/kernel/btf/vmlinux)")?;
                need(
                    self.untyped_syscall_args.is_empty(),
                    "kernel BTF that types the pt_regs argument of every __x64_sys_* function \
                     (`writepath kernel -o json` lists those it does not)",
                )?;
                cgroups()
            }
            Design::ExitOnly => {
                need(self.btf(), "kernel BTF (/sys/kernel/btf/vmlinux)")?;
                need(self.task_btf, "bpf_get_current_task_btf (Linux 5.11)")?;
                need(self.task_pt_regs, "bpf_task_pt_regs (Linux 5.15)")?;
                need(self.bpf_loop, "bpf_loop (Linux 5.17)")?;
                need(
                    self.ancestor_helper,
                    "bpf_get_current_ancestor_cgroup_id (Linux 5.14)",
                )
            }
            Design::Pair => {
                need(self.bpf_loop, "bpf_loop (Linux 5.17)")?;
                need(
                    self.ancestor_helper,
                    "bpf_get_current_ancestor_cgroup_id (Linux 5.14)",
                )
            }
            Design::Compat => cgroups(),
        }
    }

    /// The `FEATURES` bits handed to the programs.
    pub fn feature_bits(&self) -> u64 {
        if self.ancestor_helper {
            agent_common::names::FEATURE_ANCESTOR_HELPER
        } else {
            0
        }
    }
}
