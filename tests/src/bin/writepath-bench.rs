//! The benchmark harness behind `cargo xtask bench`: the same small native workload under
//! every capture condition, in alternating rounds, then the agent's own costs and a flood.
//!
//! Conditions: no agent; writepath watching the workload's cgroup; writepath watching another
//! cgroup; the floor (empty BPF programs on exactly writepath's hooks); bpftrace streaming
//! every write event; bpftrace counting paths in a map. Modes (see `bench-load`): repeat,
//! unique, readonly, mkdir, getppid. Writes a Markdown report to the path given (default
//! docs/benchmarks.md) and prints it.
//!
//! `writepath-bench [--rounds N] [--out FILE] [--quick]`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use writepath::capture::{loader::Capture, probe::Design};
use writepath::report::Report;
use writepath_tests::{writepath_bin, TempCgroup};

const MODES: &[(&str, u64)] = &[
    ("repeat", 200_000),
    ("unique", 100_000),
    ("readonly", 200_000),
    ("mkdir", 100_000),
    ("getppid", 1_000_000),
];
const CONDITIONS: &[&str] = &[
    "none",
    "watched",
    "other-cgroup",
    "floor",
    "watched-pair",
    "floor-pair",
    "floor-raw",
    "bpftrace-stream",
    "bpftrace-count",
];
const BENCH_DIR: &str = "/tmp/wp-bench";
const RESULTS_START: &str = "<!-- results:start (written by cargo xtask bench) -->";
const RESULTS_END: &str = "<!-- results:end -->";

struct Ctx {
    load: TempCgroup,
    other: TempCgroup,
    bench_load: PathBuf,
    scale: u64,
}

/// A condition in place.
enum Running {
    Nothing,
    Agent {
        child: Child,
        report: PathBuf,
        _dir: tempfile::TempDir,
    },
    Floor(#[expect(dead_code, reason = "held for its attached programs")] Box<Capture>),
    Bpftrace(Child),
}

#[derive(Default)]
struct AgentCost {
    cpu_s: Vec<f64>,
    hwm_kib: Vec<u64>,
    counters: Vec<writepath::report::Counters>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rounds: usize = arg("--rounds")
        .map(|r| r.parse().expect("--rounds N"))
        .unwrap_or(5);
    let out = PathBuf::from(arg("--out").unwrap_or_else(|| "docs/benchmarks.md".into()));
    let quick = args.iter().any(|a| a == "--quick");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("writepath-bench: must run as root");
        std::process::exit(2);
    }
    let bench_load = writepath_bin().with_file_name("bench-load");
    let _tmpfs = BenchTmpfs::mount();
    let ctx = Ctx {
        load: TempCgroup::new("bench-load"),
        other: TempCgroup::new("bench-other"),
        bench_load,
        scale: if quick { 10 } else { 1 },
    };

    // ns/op per (condition, mode), one value per round.
    let mut results: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    let mut agent = AgentCost::default();
    for round in 0..rounds {
        // Alternate the order (A/B/A/B…) so drift does not favour one condition.
        let order: Vec<&str> = if round % 2 == 0 {
            CONDITIONS.to_vec()
        } else {
            CONDITIONS.iter().rev().copied().collect()
        };
        for cond in order {
            eprintln!("round {}/{rounds}: {cond}", round + 1);
            let running = start(cond, &ctx);
            for (mode, n) in MODES {
                let ns = run_load(&ctx, mode, n / ctx.scale, None);
                results.entry((cond, mode)).or_default().push(ns);
            }
            stop(running, (cond == "watched").then_some(&mut agent));
        }
    }

    eprintln!("profile: kernel time per program call (kernel.bpf_stats_enabled)");
    let profile = profile(&ctx);
    eprintln!("agent at 16 000 distinct writes/s");
    let steady = steady_rate(&ctx);
    eprintln!("flood of 1 000 000 unique names");
    let flood = flood(&ctx, 1_000_000 / ctx.scale);

    let mut md = render(&results, &agent, &steady, &flood, rounds, quick);
    md.push_str(&render_profile(&profile));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("output dir");
    }
    // The results go between the markers; the hand-written analysis around them stays.
    let existing = std::fs::read_to_string(&out).unwrap_or_default();
    let doc = match (existing.find(RESULTS_START), existing.find(RESULTS_END)) {
        (Some(a), Some(b)) if a < b => {
            format!(
                "{}{RESULTS_START}\n{md}\n{}",
                &existing[..a],
                &existing[b..]
            )
        }
        _ => format!("{RESULTS_START}\n{md}\n{RESULTS_END}\n"),
    };
    writepath::fsutil::write_atomic(&out, doc.as_bytes()).expect("write report");
    println!("{md}");
    eprintln!("written to {}", out.display());
}

fn start(cond: &str, ctx: &Ctx) -> Running {
    match cond {
        "none" => Running::Nothing,
        "watched" => start_agent(&ctx.load.dir, &[]),
        "other-cgroup" => start_agent(&ctx.other.dir, &[]),
        "watched-pair" => start_agent(&ctx.load.dir, &["--hook", "pair"]),
        "floor" => Running::Floor(Box::new(
            Capture::load_floor(Design::ExitOnly).expect("floor programs"),
        )),
        "floor-pair" => Running::Floor(Box::new(
            Capture::load_floor(Design::Pair).expect("floor programs"),
        )),
        "floor-raw" => Running::Floor(Box::new(
            Capture::load_raw_exit_floor().expect("raw floor program"),
        )),
        "bpftrace-stream" => start_bpftrace(&bpftrace_script(&ctx.load.dir, false)),
        "bpftrace-count" => start_bpftrace(&bpftrace_script(&ctx.load.dir, true)),
        other => panic!("unknown condition {other}"),
    }
}

fn start_agent(cgroup: &Path, extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let report = dir.path().join("report.json");
    let child = Command::new(writepath_bin())
        .args(["record", "-o", "json", "--cgroup"])
        .arg(cgroup)
        .arg("--ready-file")
        .arg(&ready)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start writepath");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "writepath not ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    Running::Agent {
        child,
        report,
        _dir: dir,
    }
}

fn start_bpftrace(script: &str) -> Running {
    let mut child = Command::new("bpftrace")
        .args(["-e", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bpftrace (cargo xtask setup installs it)");
    // bpftrace prints "Attaching N probes..." on stdout, then the events; a reader thread
    // consumes the stream as a log shipper would.
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("bpftrace failed before attaching: {seen}");
        }
        seen.push_str(&line);
        if line.contains("Attaching") {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut sink = std::io::sink();
        let _ = std::io::copy(&mut out, &mut sink);
    });
    // Attaching takes a moment after the message.
    std::thread::sleep(Duration::from_secs(2));
    Running::Bpftrace(child)
}

/// Stops a condition; for the agent, records its CPU time, peak RSS and counters.
fn stop(running: Running, cost: Option<&mut AgentCost>) -> Option<Report> {
    match running {
        Running::Nothing | Running::Floor(_) => None,
        Running::Bpftrace(mut child) => {
            interrupt(&child);
            let _ = child.wait();
            None
        }
        Running::Agent {
            mut child,
            report,
            _dir,
        } => {
            let (cpu, hwm) = proc_cost(child.id());
            interrupt(&child);
            let status = child.wait().expect("wait writepath");
            assert!(status.success(), "writepath record failed");
            let r = Report::load(&report).expect("report");
            if let Some(cost) = cost {
                cost.cpu_s.push(cpu);
                cost.hwm_kib.push(hwm);
                cost.counters.push(r.counters.clone());
            }
            Some(r)
        }
    }
}

fn interrupt(child: &Child) {
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

/// CPU seconds (user + system) and peak RSS (KiB) of a process.
fn proc_cost(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let _ = kib("VmRSS:");
    (ticks / hz, kib("VmHWM:"))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs one workload in the load cgroup; returns ns/op.
fn run_load(ctx: &Ctx, mode: &str, n: u64, rate: Option<u64>) -> f64 {
    let dir = tempfile::tempdir_in(BENCH_DIR).expect("bench dir");
    let n_s = n.to_string();
    let dir_s = dir.path().display().to_string();
    let rate_s = rate.map(|r| r.to_string());
    let mut args = vec![mode, n_s.as_str(), dir_s.as_str()];
    if let Some(r) = &rate_s {
        args.push(r);
    }
    let out = spawn_with_stdout(&ctx.load.dir, &ctx.bench_load, &args);
    out.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bench-load output: {out}"))
}

fn spawn_with_stdout(cgroup: &Path, program: &Path, args: &[&str]) -> String {
    let procs = cgroup.join("cgroup.procs");
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::piped());
    // SAFETY: only open/write/close before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            std::fs::write(&procs, b"0")
        });
    }
    let out = cmd.output().expect("run bench-load");
    assert!(out.status.success(), "bench-load failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kernel time per call of each program (ns), per condition and mode, measured in a separate
/// pass with `kernel.bpf_stats_enabled` on (the accounting itself costs time, so the main
/// rounds run without it).
type Profile = BTreeMap<(&'static str, &'static str, String), (f64, u64)>;

fn program_stats() -> BTreeMap<String, (u128, u64)> {
    let mut stats: BTreeMap<String, (u128, u64)> = BTreeMap::new();
    for info in aya::programs::loaded_programs().flatten() {
        let Some(name) = info.name_as_str() else {
            continue;
        };
        if !(name.starts_with("sys_e") || name.starts_with("raw_sys")) {
            continue;
        }
        let e = stats.entry(name.to_string()).or_default();
        e.0 += info.run_time().as_nanos();
        e.1 += info.run_count();
    }
    stats
}

fn profile(ctx: &Ctx) -> Profile {
    let _stats =
        aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("enable BPF run-time stats");
    let mut out = Profile::new();
    for cond in ["watched", "other-cgroup", "watched-pair", "floor"] {
        let running = start(cond, ctx);
        for (mode, n) in MODES {
            let before = program_stats();
            run_load(ctx, mode, n / ctx.scale, None);
            let after = program_stats();
            for (name, (t, c)) in after {
                let (t0, c0) = before.get(&name).copied().unwrap_or((0, 0));
                if c > c0 {
                    out.insert(
                        (cond, *mode, name),
                        ((t - t0) as f64 / (c - c0) as f64, c - c0),
                    );
                }
            }
        }
        stop(running, None);
    }
    out
}

fn render_profile(profile: &Profile) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "\n## Profile: kernel time per program call\n");
    let _ = writeln!(md, "Measured in a separate pass with `kernel.bpf_stats_enabled=1` (which adds its own ~20–40 ns per call). Calls include every process's syscalls on the hooked tracepoints, not only the workload's.\n");
    let _ = writeln!(md, "| condition | mode | program | ns/call | calls |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for ((cond, mode, prog), (ns, calls)) in profile {
        let _ = writeln!(md, "| {cond} | {mode} | {prog} | {ns:.0} | {calls} |");
    }
    md
}

/// Agent CPU share and RSS while the workload makes 16 000 distinct writes per second.
struct Steady {
    rest_rss_kib: u64,
    cpu_share: f64,
    seconds: f64,
    hwm_kib: u64,
}

fn steady_rate(ctx: &Ctx) -> Steady {
    let running = start_agent(&ctx.load.dir, &[]);
    let Running::Agent { child, .. } = &running else {
        unreachable!()
    };
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id();
    let rest = rss_kib(pid);
    let (cpu0, _) = proc_cost(pid);
    let t0 = Instant::now();
    run_load(ctx, "unique", 80_000 / ctx.scale, Some(16_000));
    let (cpu1, hwm) = proc_cost(pid);
    let seconds = t0.elapsed().as_secs_f64();
    stop(running, None);
    Steady {
        rest_rss_kib: rest,
        cpu_share: (cpu1 - cpu0) / seconds,
        seconds,
        hwm_kib: hwm,
    }
}

struct Flood {
    names: u64,
    load_ns_per_op: f64,
    recorded: u64,
    collapsed: u64,
    dropped: u64,
    emitted: u64,
    hwm_kib: u64,
    drain_s: f64,
}

fn flood(ctx: &Ctx, names: u64) -> Flood {
    // The default path budget: beyond it new names collapse into their directory (counted), which
    // is what bounds the agent's memory under a flood.
    let running = start_agent(&ctx.load.dir, &[]);
    let load_ns_per_op = run_load(ctx, "unique", names, None);
    let Running::Agent { child, .. } = &running else {
        unreachable!()
    };
    let (_, hwm_before) = proc_cost(child.id());
    let t0 = Instant::now();
    let report = stop(running, None).expect("report");
    let drain_s = t0.elapsed().as_secs_f64();
    let recorded = report
        .targets
        .iter()
        .flat_map(|t| &t.writes)
        .filter(|w| w.path.file_name().starts_with(b"u"))
        .count() as u64;
    // The directory entry the collapsed names were folded into is not a name of its own.
    Flood {
        names,
        load_ns_per_op,
        recorded,
        collapsed: report.counters.collapsed,
        dropped: report.counters.dropped,
        emitted: report.counters.emitted,
        hwm_kib: hwm_before,
        drain_s,
    }
}

/// bpftrace programs people would write instead: the same enter tracepoints (the first path
/// argument of each), opens filtered on write intent, the workload's cgroup only.
fn bpftrace_script(cgroup: &Path, count: bool) -> String {
    let mut probes = String::new();
    let events = Path::new("/sys/kernel/tracing/events/syscalls");
    for w in agent_common::syscalls::TRACEPOINTS {
        let tp = format!("sys_enter_{}", w.name);
        let Ok(format) = std::fs::read_to_string(events.join(&tp).join("format")) else {
            continue;
        };
        let Some(field) = format
            .lines()
            .filter(|l| l.contains("char *") && l.contains("field:"))
            .find_map(|l| {
                l.split(';')
                    .next()?
                    .rsplit(['*', ' '])
                    .next()
                    .map(str::to_owned)
            })
        else {
            continue;
        };
        let mut filter = format!("cgroup == cgroupid(\"{}\")", cgroup.display());
        if matches!(w.name, "open" | "openat") {
            filter.push_str(" && (args->flags & 0x243)");
        }
        let action = if count {
            format!("@[str(args->{field})] = count();")
        } else {
            format!(
                "printf(\"%d %s {} %s\\n\", pid, comm, str(args->{field}));",
                w.name
            )
        };
        let _ = writeln!(probes, "tracepoint:syscalls:{tp} /{filter}/ {{ {action} }}");
    }
    if count {
        // Do not print a million-entry map on exit: the measurement is the counting.
        probes.push_str("END { clear(@); }\n");
    }
    probes
}

/// A tmpfs for the workload's files, so disk I/O does not blur the hooks' cost.
struct BenchTmpfs;

impl BenchTmpfs {
    fn mount() -> BenchTmpfs {
        std::fs::create_dir_all(BENCH_DIR).expect("bench dir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4g", "wp-bench", BENCH_DIR])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount tmpfs at {BENCH_DIR}");
        BenchTmpfs
    }
}

impl Drop for BenchTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(BENCH_DIR).status();
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    }
}

fn render(
    results: &BTreeMap<(&str, &str), Vec<f64>>,
    agent: &AgentCost,
    steady: &Steady,
    flood: &Flood,
    rounds: usize,
    quick: bool,
) -> String {
    let mut md = String::new();
    let uname = Command::new("uname")
        .arg("-srm")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(md, "Produced by `cargo xtask bench` ({}{} rounds, conditions alternating A/B/A/B; median and min–max of the rounds).", if quick { "--quick, " } else { "" }, rounds);
    let _ = writeln!(md, "Machine: {uname}, {cpu}, {cores} cores. The workload runs in its own cgroup, files on a tmpfs.\n");
    let _ = writeln!(md, "Modes: `repeat` open(O_CREAT|O_WRONLY|O_TRUNC)+close of one path; `unique` the same on distinct names; `readonly` open(O_RDONLY)+close; `mkdir` mkdir+rmdir; `getppid` an unwatched syscall.\n");
    let _ = writeln!(md, "Conditions: `none`; `watched` writepath (default exit-only hook) recording the workload's cgroup; `other-cgroup` writepath recording another cgroup; `floor` empty BPF programs on exactly the default design's tracepoints (the 36 `sys_exit_*`); `watched-pair` writepath with the sys_enter/sys_exit pair; `floor-pair` empty programs on the pair's 72 tracepoints; `floor-raw` one empty raw `sys_exit` program (the floor of the third design, which runs on every syscall); `bpftrace-stream` bpftrace printing every write event of the cgroup; `bpftrace-count` bpftrace counting paths in a map.\n");
    let _ = writeln!(md, "## ns/op (median, min–max) and ratio to `none`\n");
    let _ = write!(md, "| mode |");
    for c in CONDITIONS {
        let _ = write!(md, " {c} |");
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "|---|{}", "---|".repeat(CONDITIONS.len()));
    for (mode, _) in MODES {
        let base = median(
            results
                .get(&("none", *mode))
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        );
        let _ = write!(md, "| {mode} |");
        for c in CONDITIONS {
            let v = results.get(&(*c, *mode)).cloned().unwrap_or_default();
            let m = median(&v);
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            let _ = write!(md, " {m:.0} ({lo:.0}–{hi:.0}) ×{:.2} |", m / base);
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "\n## Above the floor (ns/op, medians)\n");
    let _ = writeln!(
        md,
        "| mode | watched − floor | other-cgroup − floor | watched-pair − floor-pair |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for (mode, _) in MODES {
        let m = |c: &str| median(results.get(&(c, *mode)).map(Vec::as_slice).unwrap_or(&[]));
        let _ = writeln!(
            md,
            "| {mode} | {:.0} | {:.0} | {:.0} |",
            m("watched") - m("floor"),
            m("other-cgroup") - m("floor"),
            m("watched-pair") - m("floor-pair")
        );
    }
    let m = |c: &str, mode: &str| median(results.get(&(c, mode)).map(Vec::as_slice).unwrap_or(&[]));
    let ratio = |c: &str, mode: &str| m(c, mode) / m("none", mode);
    let over = |c: &str, mode: &str| m(c, mode) - m("none", mode);
    let write_modes = ["repeat", "unique", "mkdir"];
    let lost = flood.names.saturating_sub(flood.recorded + flood.collapsed);
    let checks: Vec<(String, String, bool)> = vec![
        (
            "watched, repeated writes ≤ 1.15× no agent".into(),
            format!("×{:.2}", ratio("watched", "repeat")),
            ratio("watched", "repeat") <= 1.15,
        ),
        (
            "watched, repeated writes within 150 ns of the floor".into(),
            format!("{:.0} ns", m("watched", "repeat") - m("floor", "repeat")),
            m("watched", "repeat") - m("floor", "repeat") <= 150.0,
        ),
        (
            "watched, unique paths ≤ 1.30×".into(),
            format!("×{:.2}", ratio("watched", "unique")),
            ratio("watched", "unique") <= 1.30,
        ),
        (
            "zero unique paths lost in the flood".into(),
            format!("{lost} lost, {} dropped", flood.dropped),
            lost == 0 && flood.dropped == 0,
        ),
        (
            "unwatched cgroup ≤ 1.10× (write modes)".into(),
            write_modes
                .iter()
                .map(|w| format!("{w} ×{:.2}", ratio("other-cgroup", w)))
                .collect::<Vec<_>>()
                .join(", "),
            write_modes.iter().all(|w| ratio("other-cgroup", w) <= 1.10),
        ),
        (
            "unrelated syscall no worse than the floor".into(),
            format!(
                "{:.0} vs {:.0} ns",
                m("watched", "getppid"),
                m("floor", "getppid")
            ),
            m("watched", "getppid") <= m("floor", "getppid") * 1.05,
        ),
        (
            "never worse than the bpftrace path counter".into(),
            MODES
                .iter()
                .map(|(w, _)| format!("{w} {:.0}/{:.0}", m("watched", w), m("bpftrace-count", w)))
                .collect::<Vec<_>>()
                .join(", "),
            MODES
                .iter()
                .all(|(w, _)| m("watched", w) <= m("bpftrace-count", w) * 1.05),
        ),
        (
            "≥ 3× less overhead than the streaming tracer (write modes)".into(),
            write_modes
                .iter()
                .map(|w| {
                    format!(
                        "{w} {:.0}/{:.0}",
                        over("watched", w),
                        over("bpftrace-stream", w)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            write_modes
                .iter()
                .all(|w| over("watched", w) * 3.0 <= over("bpftrace-stream", w)),
        ),
        (
            "agent < 5% of a core at 16 000 distinct writes/s".into(),
            format!("{:.1}%", steady.cpu_share * 100.0),
            steady.cpu_share < 0.05,
        ),
        (
            "agent RSS < 32 MiB at rest".into(),
            format!("{:.1} MiB", steady.rest_rss_kib as f64 / 1024.0),
            steady.rest_rss_kib < 32 * 1024,
        ),
    ];
    let _ = writeln!(md, "\n## Targets\n");
    let _ = writeln!(md, "| target | measured | met |");
    let _ = writeln!(md, "|---|---|---|");
    for (what, value, ok) in &checks {
        let _ = writeln!(
            md,
            "| {what} | {value} | {} |",
            if *ok { "yes" } else { "**no**" }
        );
    }
    let _ = writeln!(md, "\n## The agent (watched rounds)\n");
    let cpu_med = median(&agent.cpu_s);
    let hwm_max = agent.hwm_kib.iter().max().copied().unwrap_or(0);
    let _ = writeln!(
        md,
        "- CPU time per round (all five modes): median {cpu_med:.3} s; peak RSS {:.1} MiB.",
        hwm_max as f64 / 1024.0
    );
    if let Some(c) = agent.counters.first() {
        let _ = writeln!(md, "- Kernel counters of one watched round: seen {}, filtered {}, deduplicated {}, emitted {}, dropped {}.", c.seen, c.filtered, c.deduplicated, c.emitted, c.dropped);
    }
    let drops: u64 = agent.counters.iter().map(|c| c.dropped).sum();
    let _ = writeln!(md, "- Records dropped over all watched rounds: {drops}.");
    let _ = writeln!(md, "- At 16 000 distinct writes/s for {:.1} s: {:.1}% of one core; RSS at rest {:.1} MiB, peak {:.1} MiB.", steady.seconds, steady.cpu_share * 100.0, steady.rest_rss_kib as f64 / 1024.0, steady.hwm_kib as f64 / 1024.0);
    let _ = writeln!(md, "\n## Flood\n");
    let lost = flood.names.saturating_sub(flood.recorded + flood.collapsed);
    let _ = writeln!(md, "{} unique names created as fast as possible ({:.0} ns/op while recorded): {} recorded as distinct paths, {} collapsed (counted), {} lost; ring-buffer drops {}, records emitted {}. Agent peak RSS {:.1} MiB; report ready {:.2} s after the signal.", flood.names, flood.load_ns_per_op, flood.recorded, flood.collapsed, lost, flood.dropped, flood.emitted, flood.hwm_kib as f64 / 1024.0, flood.drain_s);
    md
}
