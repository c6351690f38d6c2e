//! `writepath kernel`: what the running kernel offers the capture programs, and, for every
//! design, whether it loads here, how much work it gave the verifier and how long it took.
//! The question a DaemonSet rollout asks of a node, answered before the rollout.

use std::process::ExitCode;

use serde::Serialize;

use super::Output;
use crate::capture::{
    loader::{Capture, Hook, ProgramStats, VERIFIER_LIMIT},
    probe::{Design, KernelProbe},
};

/// Arguments of `writepath kernel`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit code 0 when some design loads (the one `auto` picks is marked), 2 when none does."
)]
pub struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The whole answer.
#[derive(Debug, Serialize)]
struct KernelReport {
    kernel: String,
    features: Features,
    /// The design `--hook auto` uses here, if any loads.
    chosen: Option<Design>,
    designs: Vec<DesignResult>,
}

#[derive(Debug, Serialize)]
struct Features {
    btf: bool,
    ringbuf: bool,
    bpf_loop: bool,
    task_pt_regs: bool,
    task_btf: bool,
    ancestor_helper: bool,
    cgroup_fields: bool,
    /// Syscall functions whose argument BTF leaves untyped (no trampolines then).
    untyped_syscall_args: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct DesignResult {
    design: Design,
    loads: bool,
    /// Why not, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    programs: Vec<ProgramStats>,
}

/// Runs `writepath kernel`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let probe = KernelProbe::run();
    let mut designs = Vec::new();
    for design in Design::ALL {
        let hook = match design {
            Design::Fexit => Hook::Fexit,
            Design::ExitOnly => Hook::ExitOnly,
            Design::Pair => Hook::Pair,
            Design::Compat => Hook::Compat,
        };
        designs.push(match Capture::load_probed(hook, probe.clone()) {
            Ok(capture) => DesignResult {
                design,
                loads: true,
                error: None,
                programs: capture.programs.clone(),
            },
            Err(e) => DesignResult {
                design,
                loads: false,
                error: Some(e.reason()),
                programs: Vec::new(),
            },
        });
    }
    let report = KernelReport {
        kernel: probe.release.clone(),
        features: Features {
            btf: probe.btf(),
            ringbuf: probe.ringbuf,
            bpf_loop: probe.bpf_loop,
            task_pt_regs: probe.task_pt_regs,
            task_btf: probe.task_btf,
            ancestor_helper: probe.ancestor_helper,
            cgroup_fields: probe.offsets.cgroup_valid != 0,
            untyped_syscall_args: probe.untyped_syscall_args.clone(),
        },
        chosen: designs.iter().find(|d| d.loads).map(|d| d.design),
        designs,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Yaml => print!("{}", serde_yaml::to_string(&report)?),
        Output::Table => print_table(&report),
    }
    Ok(if report.chosen.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn print_table(r: &KernelReport) {
    let f = &r.features;
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("kernel: Linux {}", r.kernel);
    println!(
        "features: btf {} ringbuf {} bpf_loop {} task_pt_regs {} task_btf {} ancestor_helper {} cgroup_fields {}",
        yes(f.btf),
        yes(f.ringbuf),
        yes(f.bpf_loop),
        yes(f.task_pt_regs),
        yes(f.task_btf),
        yes(f.ancestor_helper),
        yes(f.cgroup_fields)
    );
    println!();
    println!(
        "{:<10} {:<6} {:<18} {:>14} {:>9}",
        "DESIGN", "LOADS", "PROGRAM", "VERIFIED INSNS", "LOAD MS"
    );
    for d in &r.designs {
        let mark = if r.chosen == Some(d.design) { "*" } else { "" };
        let name = format!("{}{mark}", d.design);
        if d.programs.is_empty() {
            println!(
                "{name:<10} {:<6} {}",
                yes(d.loads),
                d.error.as_deref().unwrap_or("-")
            );
        }
        let insns = |n: Option<u32>| {
            n.map_or("n/a".to_string(), |n| {
                format!(
                    "{n} ({:.1}%)",
                    f64::from(n) * 100.0 / f64::from(VERIFIER_LIMIT)
                )
            })
        };
        if d.programs.len() > 3 {
            // One program per syscall: the one that gave the verifier most work, and the total.
            let worst = d.programs.iter().max_by_key(|p| p.verified_insns).unwrap();
            let total: u64 = d.programs.iter().map(|p| p.load_ms).sum();
            let label = format!("{} programs, max {}", d.programs.len(), worst.program);
            println!(
                "{name:<10} {:<6} {label:<18} {:>14} {total:>9}",
                yes(d.loads),
                insns(worst.verified_insns)
            );
            continue;
        }
        for p in &d.programs {
            println!(
                "{name:<10} {:<6} {:<18} {:>14} {:>9}",
                yes(d.loads),
                p.program,
                insns(p.verified_insns),
                p.load_ms
            );
        }
    }
    match r.chosen {
        Some(d) => println!("\n* auto uses {d} on this kernel"),
        None => println!("\nno design loads on this kernel"),
    }
}
