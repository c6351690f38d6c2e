//! `cargo xtask kernels --bench`: the capture designs' cost on the trampoline kernels of the
//! matrix, measured in emulated guests whose clock counts instructions.
//!
//! Real timings under software emulation mean little, so the guests run with qemu's
//! `-icount shift=0,sleep=off`: the guest clock advances one nanosecond per instruction, and
//! what `bench-load` reports as ns/op is the guest instructions one operation costs, the same
//! from run to run whatever the host does. Each condition (no agent; writepath watching the
//! workload's cgroup or another one, with the fexit and the exit-only designs) runs a warm-up
//! pass and then `ROUNDS` rounds of every mode; the table has the medians and their ratios to
//! no agent. The results go between markers in docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::kernels::{self, GuestCommand, GuestOptions};

/// Rounds per condition after the warm-up.
const ROUNDS: usize = 3;
/// Modes of `bench-load` and their operation counts.
const MODES: &[(&str, u64)] = &[("repeat", 50_000), ("unique", 20_000), ("getppid", 300_000)];
/// Conditions: (name, `--hook` of the recorder, watched cgroup).
const CONDITIONS: &[(&str, &str, &str)] = &[
    ("none", "", ""),
    ("fexit, watched", "fexit", "load"),
    ("exit-only, watched", "exit-only", "load"),
    ("fexit, other cgroup", "fexit", "other"),
    ("exit-only, other cgroup", "exit-only", "other"),
];
/// The kernels measured: those where trampolines load.
const KERNELS: &[&str] = &["6.1", "6.12"];
const START: &str = "<!-- guest-results:start (written by cargo xtask kernels --bench) -->";
const END: &str = "<!-- guest-results:end -->";

/// Runs the guest benchmark and writes its section of docs/benchmarks.md.
pub fn run(timeout: u64) -> anyhow::Result<()> {
    let bin = crate::setup_and_build(true, &["writepath", "writepath-tests"])?;
    let writepath = bin.join("writepath");
    let load = bin.join("bench-load");
    let wanted: Vec<&kernels::Series> = KERNELS
        .iter()
        .map(|k| kernels::series(k))
        .collect::<anyhow::Result<_>>()?;
    let fetched = kernels::fetch(&wanted)?;
    let script = kernels::kernels_dir().join("guest-bench.sh");
    std::fs::write(&script, guest_script(&writepath, &load))?;
    let initrd = kernels::kernels_dir().join("initramfs-bench.cpio");
    kernels::build_initramfs(
        &initrd,
        &[writepath.clone(), load.clone(), script.clone()],
        &GuestCommand {
            env: &[],
            argv: &["sh".to_string(), script.display().to_string()],
        },
    )?;
    let opts = GuestOptions {
        timeout: Duration::from_secs(timeout),
        icount: true,
        ..GuestOptions::default()
    };
    let mut section = format!(
        "Guest instructions per operation (qemu `-icount shift=0,sleep=off`, one vCPU: the \
         guest clock counts instructions, so these are repeatable to about 0.1%; emulated, not \
         timed on hardware). Median of {ROUNDS} rounds after a warm-up; ratio to no agent in \
         brackets.\n"
    );
    for k in &fetched {
        println!(
            "xtask kernels --bench: {} ({} {})",
            k.name, k.package, k.version
        );
        let out = kernels::boot(k, &initrd, &opts)?;
        if out.exit_code != 0 {
            bail!(
                "the guest benchmark failed on {} (exit {})",
                k.name,
                out.exit_code
            );
        }
        section.push_str(&table(&k.name, &k.version, &out.output)?);
    }
    println!("{section}");
    write_section(
        &crate::workspace_root().join("docs/benchmarks.md"),
        &section,
    )
}

/// The guest's script: one recorder per condition, `bench-load` in the `load` cgroup.
fn guest_script(writepath: &std::path::Path, load: &std::path::Path) -> String {
    let mut s = format!(
        "W={}\nL={}\n\
         mkdir -p /sys/fs/cgroup/load /sys/fs/cgroup/other\n\
         run() {{ rm -rf /tmp/b; mkdir -p /tmp/b; sh -c \"echo \\$\\$ > /sys/fs/cgroup/load/cgroup.procs; exec $L $1 $2 /tmp/b\"; }}\n",
        writepath.display(),
        load.display()
    );
    for (i, (name, hook, cgroup)) in CONDITIONS.iter().enumerate() {
        s.push_str(&format!("# {name}\nrm -f /tmp/ready\n"));
        if !hook.is_empty() {
            s.push_str(&format!(
                "$W record --hook {hook} --cgroup /sys/fs/cgroup/{cgroup} --ready-file /tmp/ready -o json > /tmp/report-{i}.json 2>/tmp/err-{i} &\n\
                 n=0; while [ ! -e /tmp/ready ] && [ $n -lt 900 ]; do sleep 1; n=$((n+1)); done\n\
                 [ -e /tmp/ready ] || {{ cat /tmp/err-{i}; exit 1; }}\n"
            ));
        }
        for (mode, n) in MODES {
            s.push_str(&format!("run {mode} {} > /dev/null\n", n / 10));
        }
        for _ in 0..ROUNDS {
            for (mode, n) in MODES {
                s.push_str(&format!("echo \"BENCH {i} {mode} $(run {mode} {n})\"\n"));
            }
        }
        if !hook.is_empty() {
            s.push_str(&format!(
                "kill -INT $!; wait $!\ngrep -q '\"dropped\": 0' /tmp/report-{i}.json || {{ echo 'records dropped'; exit 1; }}\n"
            ));
        }
    }
    s
}

/// The Markdown table of one kernel's `BENCH <condition> <mode> <ns/op> <total>` lines.
fn table(kernel: &str, version: &str, output: &str) -> anyhow::Result<String> {
    let mut samples = vec![vec![Vec::<f64>::new(); MODES.len()]; CONDITIONS.len()];
    for line in output.lines() {
        let Some(rest) = line.split("BENCH ").nth(1) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let c: usize = f[0].parse().context("condition index")?;
        let m = MODES
            .iter()
            .position(|(name, _)| *name == f[1])
            .context("mode")?;
        samples[c][m].push(f[2].parse().context("ns/op")?);
    }
    let median = |v: &[f64]| -> Option<f64> {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    let base: Vec<Option<f64>> = samples[0].iter().map(|v| median(v)).collect();
    let mut t = format!("\n#### Linux {kernel} (Debian {version})\n\n| condition |");
    for (mode, _) in MODES {
        t.push_str(&format!(" {mode} |"));
    }
    t.push_str("\n|---|");
    t.push_str(&"---:|".repeat(MODES.len()));
    t.push('\n');
    for (c, (name, _, _)) in CONDITIONS.iter().enumerate() {
        t.push_str(&format!("| {name} |"));
        for m in 0..MODES.len() {
            match (median(&samples[c][m]), base[m]) {
                (Some(v), Some(b)) if c > 0 => t.push_str(&format!(" {v:.0} (×{:.2}) |", v / b)),
                (Some(v), _) => t.push_str(&format!(" {v:.0} |")),
                _ => bail!("no samples for {name} on {kernel}"),
            }
        }
        t.push('\n');
    }
    Ok(t)
}

/// Replaces the text between the markers in `doc` (appending them when missing).
fn write_section(doc: &PathBuf, section: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let block = format!("{START}\n{section}\n{END}");
    let new = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &text[..a], &text[b + END.len()..]),
        _ => format!("{text}\n{block}\n"),
    };
    std::fs::write(doc, new).with_context(|| format!("writing {}", doc.display()))
}
