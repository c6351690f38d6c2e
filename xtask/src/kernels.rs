//! The kernel matrix: Debian's cloud kernels booted under qemu (software emulation), each
//! running a host binary in a self-contained initramfs.
//!
//! - [`fetch`] downloads each kernel once into `target/kernels/<name>/` through a private apt
//!   configuration (the host's sources are never read or changed). The package chosen is the
//!   newest of its series that actually downloads; its name and version are kept in
//!   `target/kernels/<name>/package`. A cached kernel is never fetched again.
//! - [`build_initramfs`] packs busybox, an `/init` script and host files, each at the same
//!   absolute path it has on the host, with the shared libraries `ldd` names.
//! - [`boot`] runs qemu with a timeout, streams the serial console (each line prefixed with the
//!   kernel's name) and reads the exit code `/init` prints; [`run_in_guest`] does both.
//!
//! The cloud kernels have no 9p, and virtiofs and overlay are modules: the guest sees nothing
//! of the host but what the initramfs carries. KVM is never used (a KVM guest hangs on our
//! machines); `-accel tcg` is slower but works everywhere.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};

use crate::{run_cmd, target_dir};

/// A series of Debian cloud kernels, one row of the matrix.
pub struct Series {
    /// The name on the command line and in the output: `5.10`.
    pub name: &'static str,
    /// Its packages are named `PREFIX<number>SUFFIX`; the highest number is the newest.
    prefix: &'static str,
    suffix: &'static str,
    /// The capture design `--hook auto` must choose on it (`WRITEPATH_EXPECT_DESIGN` for the
    /// tests): a fall back to a worse design fails the matrix.
    pub design: &'static str,
}

/// The matrix: bullseye's 5.10, bookworm's 6.1 (not the `6.1.0-0.deb11.*` backports, whose
/// number is not a plain integer) and trixie's 6.12 (`+deb13`, not bookworm's `+deb12` builds).
pub const SERIES: &[Series] = &[
    Series {
        name: "5.10",
        prefix: "linux-image-5.10.0-",
        suffix: "-cloud-amd64-unsigned",
        // Trampolines load, but this kernel's BTF forward-declares the pt_regs argument of
        // some syscall functions (bind), and it has neither bpf_loop nor bpf_task_pt_regs.
        design: "compat",
    },
    Series {
        name: "6.1",
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64-unsigned",
        design: "fexit",
    },
    Series {
        name: "6.12",
        prefix: "linux-image-6.12.",
        suffix: "+deb13-cloud-amd64-unsigned",
        design: "fexit",
    },
];

/// Where apt finds the kernels: every suite the matrix takes a kernel from, with its security
/// updates (the newest 5.10 and 6.1 kernels are only there).
const APT_SOURCES: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
";

/// The line `/init` prints once it has mounted everything, just before the command.
const START_MARKER: &str = "WRITEPATH-GUEST-START";
/// The line `/init` prints after the command: `WRITEPATH-GUEST-EXIT=<code>`.
const EXIT_MARKER: &str = "WRITEPATH-GUEST-EXIT=";

/// A kernel ready to boot.
pub struct Kernel {
    /// The series name (`6.12`).
    pub name: String,
    /// The Debian package it came from.
    pub package: String,
    /// That package's version.
    pub version: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
}

/// The directory kernels and guest files live in: `target/kernels`.
pub fn kernels_dir() -> PathBuf {
    target_dir().join("kernels")
}

/// Finds a series by name.
pub fn series(name: &str) -> anyhow::Result<&'static Series> {
    SERIES.iter().find(|s| s.name == name).with_context(|| {
        let names: Vec<&str> = SERIES.iter().map(|s| s.name).collect();
        format!("unknown kernel {name:?}: one of {}", names.join(", "))
    })
}

/// Returns each series' kernel, downloading the ones not cached yet. Cached kernels need no
/// network: apt is only run when a kernel is missing.
pub fn fetch(wanted: &[&'static Series]) -> anyhow::Result<Vec<Kernel>> {
    let dir = kernels_dir();
    let mut apt: Option<Apt> = None;
    let mut kernels = Vec::new();
    for s in wanted {
        if let Some(k) = cached(&dir, s)? {
            println!(
                "xtask kernels: {} cached ({} {})",
                s.name, k.package, k.version
            );
            kernels.push(k);
            continue;
        }
        let apt = match &mut apt {
            Some(a) => a,
            None => apt.insert(Apt::update(&dir.join("apt"))?),
        };
        kernels.push(download(apt, &dir, s)?);
    }
    Ok(kernels)
}

/// The kernel of `series` in the cache, if it is there whole.
fn cached(dir: &Path, series: &Series) -> anyhow::Result<Option<Kernel>> {
    let kdir = dir.join(series.name);
    let (vmlinuz, record) = (kdir.join("vmlinuz"), kdir.join("package"));
    if !vmlinuz.is_file() || !record.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&record)
        .with_context(|| format!("reading {}", record.display()))?;
    let mut words = text.split_whitespace();
    let (Some(package), Some(version)) = (words.next(), words.next()) else {
        // A broken record: fetch again.
        return Ok(None);
    };
    Ok(Some(Kernel {
        name: series.name.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        vmlinuz,
    }))
}

/// apt-get and apt-cache with a private configuration: our own sources.list, package lists
/// and download cache under `dir`. Nothing of the host's apt state is read or written, except
/// Debian's archive keyring.
struct Apt {
    dir: PathBuf,
}

impl Apt {
    /// Writes the sources and downloads the package lists.
    fn update(dir: &Path) -> anyhow::Result<Apt> {
        for sub in ["lists/partial", "cache/archives/partial", "download"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("mkdir {}", dir.join(sub).display()))?;
        }
        std::fs::write(dir.join("sources.list"), APT_SOURCES)?;
        let apt = Apt {
            dir: dir.to_path_buf(),
        };
        println!(
            "xtask kernels: apt-get update (private lists in {})",
            dir.display()
        );
        run_cmd(apt.command("apt-get").args(["update", "-qq"]))
            .context("apt-get update of the kernel sources failed: is deb.debian.org reachable?")?;
        Ok(apt)
    }

    /// `program` (apt-get or apt-cache) with the private configuration.
    fn command(&self, program: &str) -> Command {
        let d = self.dir.display();
        let mut cmd = Command::new(program);
        cmd.args([
            "-o".to_string(),
            format!("Dir::Etc::sourcelist={d}/sources.list"),
            "-o".into(),
            "Dir::Etc::sourceparts=-".into(),
            "-o".into(),
            format!("Dir::State::Lists={d}/lists"),
            "-o".into(),
            format!("Dir::Cache={d}/cache"),
            // Downloads land in directories only root can write; no _apt sandbox warning.
            "-o".into(),
            "APT::Sandbox::User=root".into(),
        ]);
        cmd
    }

    /// Every package of `series` apt knows, newest first.
    fn candidates(&self, series: &Series) -> anyhow::Result<Vec<String>> {
        let out = self
            .command("apt-cache")
            .args(["search", "--names-only"])
            .arg(format!(
                "^{}.*{}$",
                regex_escape(series.prefix),
                regex_escape(series.suffix)
            ))
            .output()
            .context("apt-cache not found")?;
        ensure!(
            out.status.success(),
            "apt-cache search failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut found: Vec<(u64, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|name| {
                let n = name
                    .strip_prefix(series.prefix)?
                    .strip_suffix(series.suffix)?;
                Some((n.parse().ok()?, name.to_string()))
            })
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        Ok(found.into_iter().map(|(_, name)| name).collect())
    }
}

/// Escapes the regex characters of a package name (`.` and `+`) for apt-cache search.
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '.' | '+' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

/// Downloads the newest package of `series` that downloads (the newest ones listed in the
/// security suites are sometimes not on the mirror yet), and extracts its vmlinuz.
fn download(apt: &Apt, dir: &Path, series: &Series) -> anyhow::Result<Kernel> {
    let candidates = apt.candidates(series)?;
    ensure!(
        !candidates.is_empty(),
        "no package {}N{} in the kernel sources",
        series.prefix,
        series.suffix
    );
    let ddir = apt.dir.join("download");
    for package in &candidates {
        println!("xtask kernels: {}: apt-get download {package}", series.name);
        for old in std::fs::read_dir(&ddir)?.flatten() {
            let _ = std::fs::remove_file(old.path());
        }
        let ok = apt
            .command("apt-get")
            .args(["download", "-qq", package])
            .current_dir(&ddir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!(
                "xtask kernels: {}: {package} did not download, trying the next",
                series.name
            );
            continue;
        }
        let deb = std::fs::read_dir(&ddir)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .with_context(|| format!("apt-get download {package} left no .deb"))?;
        let kernel = extract(dir, series, package, &deb)?;
        std::fs::remove_file(&deb)?;
        return Ok(kernel);
    }
    bail!(
        "no package of kernel {} downloaded (tried {})",
        series.name,
        candidates.join(", ")
    )
}

/// Takes `boot/vmlinuz-*` out of `deb` into `dir/<series>/vmlinuz` and records the package.
fn extract(dir: &Path, series: &Series, package: &str, deb: &Path) -> anyhow::Result<Kernel> {
    let out = Command::new("dpkg-deb")
        .args(["--field"])
        .arg(deb)
        .arg("Version")
        .output()
        .context("dpkg-deb not found")?;
    ensure!(
        out.status.success(),
        "dpkg-deb --field {} failed",
        deb.display()
    );
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let kdir = dir.join(series.name);
    let unpack = kdir.join("unpack");
    let _ = std::fs::remove_dir_all(&unpack);
    std::fs::create_dir_all(&unpack)?;
    // Only the image: the modules are most of the package and the guest loads none.
    run_cmd(Command::new("sh").arg("-c").arg(format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards './boot/vmlinuz-*'",
        deb.display(),
        unpack.display()
    )))?;
    let image = std::fs::read_dir(unpack.join("boot"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .with_context(|| format!("no boot/vmlinuz-* in {}", deb.display()))?;
    let vmlinuz = kdir.join("vmlinuz");
    std::fs::rename(&image, &vmlinuz)?;
    std::fs::remove_dir_all(&unpack)?;
    // Written last: a kernel counts as cached only once this exists.
    std::fs::write(kdir.join("package"), format!("{package} {version}\n"))?;
    println!("xtask kernels: {}: {package} {version}", series.name);
    Ok(Kernel {
        name: series.name.to_string(),
        package: package.to_string(),
        version,
        vmlinuz,
    })
}

/// What the guest runs: environment and command, written into `/init`.
pub struct GuestCommand<'a> {
    /// Variables exported before the command.
    pub env: &'a [(String, String)],
    /// The command and its arguments (the first is run through `PATH`, or is absolute).
    pub argv: &'a [String],
}

/// Builds `out`, an uncompressed newc initramfs holding busybox (every applet linked in
/// `/bin`), `/init` running `command`, and `files` with the shared libraries and ELF interpreter
/// `ldd` reports for them, each at its absolute host path. ELF files are stored without their
/// debug sections (a debug build is mostly debug info). Returns the archive's size in bytes.
pub fn build_initramfs(
    out: &Path,
    files: &[PathBuf],
    command: &GuestCommand,
) -> anyhow::Result<u64> {
    let stage = out.with_extension("root");
    let _ = std::fs::remove_dir_all(&stage);
    for d in ["bin", "dev", "proc", "sys", "tmp", "run", "root", "etc"] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    copy_into(&stage, Path::new("/bin/busybox"), "/bin/busybox", false)?;
    let mut all = BTreeSet::new();
    for f in files {
        ensure!(
            f.is_absolute(),
            "guest files need absolute paths: {}",
            f.display()
        );
        all.insert(f.clone());
        all.extend(shared_libraries(f)?);
    }
    for f in &all {
        copy_into(&stage, f, &f.to_string_lossy(), true)?;
    }
    let init = stage.join("init");
    std::fs::write(&init, init_script(command))?;
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    run_cmd(
        Command::new("sh")
            .current_dir(&stage)
            .arg("-c")
            .arg(format!(
                "find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc > '{}'",
                out.display()
            )),
    )
    .context("cpio failed (apt-get install cpio)")?;
    std::fs::remove_dir_all(&stage)?;
    Ok(std::fs::metadata(out)?.len())
}

/// The shared libraries and the interpreter of an ELF file, as `ldd` names them (none for a
/// static binary or a file that is not ELF).
fn shared_libraries(file: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(file)
        .output()
        .context("ldd not found")?;
    if !out.status.success() {
        return Ok(Vec::new());
    }
    // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, `/lib64/ld-linux-x86-64.so.2 (0x…)`
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect())
}

/// Copies the host file `src` to `guest_path` under `stage` (following symlinks); ELF files are
/// stripped of their debug sections when `strip` is set.
fn copy_into(stage: &Path, src: &Path, guest_path: &str, strip: bool) -> anyhow::Result<()> {
    let dest = stage.join(guest_path.trim_start_matches('/'));
    std::fs::create_dir_all(dest.parent().expect("a file's directory"))?;
    let elf = std::fs::read(src)
        .with_context(|| format!("reading {}", src.display()))?
        .starts_with(b"\x7fELF");
    if strip && elf {
        let stripped = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&dest)
            .arg(src)
            .status()
            .is_ok_and(|s| s.success());
        if stripped {
            return Ok(());
        }
    }
    std::fs::copy(src, &dest).with_context(|| format!("copying {}", src.display()))?;
    Ok(())
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `/init`: first moves the files from the initramfs onto a tmpfs and switches to it (runc's
/// `pivot_root` refuses the initramfs as the old root), then mounts what the tests need (proc,
/// sysfs, devtmpfs, cgroup2, tracefs, bpffs), runs the command, prints its exit code and powers
/// off. `/tmp` and `/run` are directories of that tmpfs root, not mounts of their own: the
/// checkout (and so every file copied in) may itself live below `/tmp`.
fn init_script(command: &GuestCommand) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         if [ ! -e /.on-tmpfs ]; then\n\
         /bin/busybox mkdir -p /newroot\n\
         /bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot\n\
         for f in /*; do [ \"$f\" = /newroot ] || /bin/busybox cp -a \"$f\" /newroot/; done\n\
         /bin/busybox touch /newroot/.on-tmpfs\n\
         exec /bin/busybox switch_root /newroot /init\n\
         fi\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         exec 0</dev/console 1>/dev/console 2>&1\n\
         mkdir -p /tmp /run && chmod 1777 /tmp\n\
         mount -t cgroup2 cgroup2 /sys/fs/cgroup\n\
         mount -t tracefs tracefs /sys/kernel/tracing\n\
         mount -t bpf bpf /sys/fs/bpf\n\
         ip link set lo up 2>/dev/null\n\
         cd /\n",
    );
    for (k, v) in command.env {
        s.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    s.push_str(&format!("echo {START_MARKER} \"$(uname -r)\"\n"));
    let argv: Vec<String> = command.argv.iter().map(|a| shell_quote(a)).collect();
    s.push_str(&argv.join(" "));
    s.push_str(&format!(
        "\nrc=$?\necho\necho {EXIT_MARKER}$rc\npoweroff -f\n"
    ));
    s
}

/// How to run qemu.
pub struct GuestOptions {
    /// Killed (and failed) after this long.
    pub timeout: Duration,
    /// `-icount shift=0,sleep=off`: a virtual clock of one instruction per nanosecond, so
    /// timings are counted in instructions and repeatable (for benchmarks).
    pub icount: bool,
    /// Guest memory in MiB (the initramfs is unpacked into it).
    pub memory_mib: u32,
}

impl Default for GuestOptions {
    fn default() -> Self {
        GuestOptions {
            timeout: Duration::from_secs(1800),
            icount: false,
            memory_mib: 2048,
        }
    }
}

/// What a guest run gave.
pub struct GuestOutcome {
    /// The command's exit code, as `/init` printed it.
    pub exit_code: i32,
    /// The serial console (kernel messages and the command's output), `\r` removed.
    pub output: String,
    /// From starting qemu to `/init` starting the command.
    pub boot: Duration,
    /// From starting qemu to its exit.
    pub wall: Duration,
}

/// Builds an initramfs of `files` for `argv` and boots `kernel` on it (see [`build_initramfs`]
/// and [`boot`]). The matrix builds one initramfs for all kernels and calls [`boot`] itself;
/// this is the one-call form for other tasks (the benchmarks, with `icount`).
#[allow(dead_code)]
pub fn run_in_guest(
    kernel: &Kernel,
    files: &[PathBuf],
    env: &[(String, String)],
    argv: &[String],
    opts: &GuestOptions,
) -> anyhow::Result<GuestOutcome> {
    let initrd = kernels_dir().join(format!("initramfs-{}.cpio", kernel.name));
    build_initramfs(&initrd, files, &GuestCommand { env, argv })?;
    boot(kernel, &initrd, opts)
}

/// Boots `kernel` with `initrd` under qemu (TCG, one CPU), printing the serial console with
/// the kernel's name before each line. Fails when qemu exits or the timeout passes without
/// `/init`'s exit line (a panic, a hang, a crash of the guest's init).
pub fn boot(kernel: &Kernel, initrd: &Path, opts: &GuestOptions) -> anyhow::Result<GuestOutcome> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-cpu", "max", "-smp", "1"])
        .args(["-m", &opts.memory_mib.to_string()])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        // panic=-1: a panic reboots at once, and -no-reboot turns that into qemu exiting.
        .args(["-append", "console=ttyS0 panic=-1 quiet"]);
    if opts.icount {
        cmd.args(["-icount", "shift=0,sleep=off"]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .context("failed to start qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let tx2 = tx.clone();
    let readers = [
        std::thread::spawn(move || forward_lines(stdout, &tx)),
        std::thread::spawn(move || forward_lines(stderr, &tx2)),
    ];
    let deadline = start + opts.timeout;
    let mut output = String::new();
    let (mut boot, mut exit_code) = (None, None);
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((at, line)) => {
                println!("[{}] {line}", kernel.name);
                let _ = std::io::stdout().flush();
                // The firmware's screen clearing can precede a marker on its line.
                if line.contains(START_MARKER) && boot.is_none() {
                    boot = Some(at - start);
                }
                if let Some(i) = line.find(EXIT_MARKER) {
                    exit_code = line[i + EXIT_MARKER.len()..].trim().parse::<i32>().ok();
                }
                output.push_str(&line);
                output.push('\n');
            }
            // Both pipes closed: qemu has exited.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out {
        let _ = child.kill();
    }
    let status = child.wait().context("waiting for qemu")?;
    for r in readers {
        let _ = r.join();
    }
    let wall = start.elapsed();
    let tail = tail_lines(&output, 30);
    match exit_code {
        Some(exit_code) if !timed_out => Ok(GuestOutcome {
            exit_code,
            output,
            boot: boot.unwrap_or(wall),
            wall,
        }),
        _ if timed_out => bail!(
            "kernel {}: no exit line from the guest after {:?} (killed qemu); last lines:\n{tail}",
            kernel.name,
            opts.timeout
        ),
        _ => bail!(
            "kernel {}: qemu exited ({status}) without the guest's exit line (a panic or a \
             crash of /init?); last lines:\n{tail}",
            kernel.name
        ),
    }
}

/// Sends each line read from `from` (without `\r`) with the time it arrived.
fn forward_lines(from: impl std::io::Read, to: &mpsc::Sender<(Instant, String)>) {
    let mut reader = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = strip_escapes(&String::from_utf8_lossy(&buf));
                if to.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        }
    }
}

/// `line` without its end of line, carriage returns and terminal escape sequences (SeaBIOS
/// clears the screen).
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // CSI (parameters up to a final byte in @..~) or a two-character sequence
            // (`ESC c` resets the terminal).
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// The last `n` lines of `text`.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Seconds a guest may run before it is killed and fails.
pub const DEFAULT_TIMEOUT: u64 = 1800;

/// One row of the summary.
struct Row {
    kernel: String,
    package: String,
    result: String,
    ok: bool,
    boot: Option<Duration>,
    wall: Duration,
}

/// `cargo xtask kernels`: sets up, builds (debug) the `writepath` binary and the capture tests,
/// fetches the kernels, and runs the capture test binary in each guest (`CI=true`, one test
/// thread, `extra` appended), then prints a summary. Fails if any kernel fails.
pub fn run(names: &[String], timeout: u64, icount: bool, extra: &[String]) -> anyhow::Result<()> {
    for n in names {
        series(n)?;
    }
    // In the matrix's order, oldest first.
    let wanted: Vec<&Series> = SERIES
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .collect();
    let bin = crate::setup_and_build(false, &["writepath", "writepath-tests"])?;
    let capture = test_executables()?;
    let writepath = bin.join("writepath");
    ensure!(
        writepath.is_file(),
        "no {} after the build",
        writepath.display()
    );

    let t = Instant::now();
    let kernels = fetch(&wanted)?;
    println!(
        "xtask kernels: kernels ready in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    // First what the kernel offers and what each design costs there (`writepath kernel`, for
    // the record in the console), then the capture tests and the runc container test; the
    // guest fails if either does.
    let quoted = |p: &Path| shell_quote(&p.display().to_string());
    let extra: Vec<String> = extra.iter().map(|a| shell_quote(a)).collect();
    let argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "{wp} kernel; {capture} --test-threads=1 {extra}; c=$?; {container} --test-threads=1 {extra}; r=$?; [ $c = 0 ] && [ $r = 0 ]",
            wp = quoted(&writepath),
            capture = quoted(&capture.test),
            container = quoted(&capture.container),
            extra = extra.join(" "),
        ),
    ];
    // The test binaries, the recorder they run, the syscall driver (its path is compiled into
    // the capture tests) and runc. `mount`/`umount` are busybox's.
    let files = vec![
        capture.test.clone(),
        capture.container.clone(),
        writepath.clone(),
        capture.driver.clone(),
        PathBuf::from("/usr/sbin/runc"),
    ];
    // One initramfs per kernel: the design the tests expect differs.
    let initramfs = |series: &Series| -> anyhow::Result<PathBuf> {
        let env = vec![
            ("CI".to_string(), "true".to_string()),
            ("WRITEPATH_BIN".to_string(), writepath.display().to_string()),
            (
                "WRITEPATH_EXPECT_DESIGN".to_string(),
                series.design.to_string(),
            ),
        ];
        let initrd = kernels_dir().join(format!("initramfs-capture-{}.cpio", series.name));
        let t = Instant::now();
        let size = build_initramfs(
            &initrd,
            &files,
            &GuestCommand {
                env: &env,
                argv: &argv,
            },
        )?;
        println!(
            "xtask kernels: initramfs {} ({:.1} MiB) built in {:.1}s",
            initrd.display(),
            size as f64 / (1024.0 * 1024.0),
            t.elapsed().as_secs_f64()
        );
        Ok(initrd)
    };

    let opts = GuestOptions {
        timeout: Duration::from_secs(timeout),
        icount,
        ..GuestOptions::default()
    };
    let mut rows = Vec::new();
    for k in &kernels {
        println!(
            "xtask kernels: booting {} ({} {})",
            k.name, k.package, k.version
        );
        let t = Instant::now();
        let row = match initramfs(series(&k.name)?).and_then(|initrd| boot(k, &initrd, &opts)) {
            Ok(out) => {
                let (passed, failed) = test_counts(&out.output);
                let result = match (passed, failed) {
                    (Some(p), Some(f)) => format!("{p} passed, {f} failed"),
                    _ => "no `test result:` line".to_string(),
                };
                Row {
                    result: format!("{result} (exit {})", out.exit_code),
                    ok: out.exit_code == 0 && failed == Some(0),
                    boot: Some(out.boot),
                    wall: out.wall,
                    kernel: k.name.clone(),
                    package: k.package.clone(),
                }
            }
            Err(e) => {
                eprintln!("xtask kernels: {e:#}");
                Row {
                    result: format!("error: {}", e.to_string().lines().next().unwrap_or("")),
                    ok: false,
                    boot: None,
                    wall: t.elapsed(),
                    kernel: k.name.clone(),
                    package: k.package.clone(),
                }
            }
        };
        rows.push((row, k.version.clone()));
    }

    println!();
    println!(
        "{:<6} {:<48} {:<12} {:>6} {:>8}  result",
        "kernel", "package", "version", "boot", "wall"
    );
    for (r, version) in &rows {
        println!(
            "{:<6} {:<48} {:<12} {:>6} {:>8}  {}{}",
            r.kernel,
            r.package,
            version,
            r.boot
                .map(|b| format!("{:.1}s", b.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
            format!("{:.1}s", r.wall.as_secs_f64()),
            if r.ok { "ok: " } else { "FAILED: " },
            r.result
        );
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(r, _)| !r.ok)
        .map(|(r, _)| r.kernel.as_str())
        .collect();
    ensure!(
        failed.is_empty(),
        "the capture tests failed on kernel {}",
        failed.join(", ")
    );
    Ok(())
}

/// The capture test binary and the syscall driver, as cargo built them.
struct TestExecutables {
    test: PathBuf,
    container: PathBuf,
    driver: PathBuf,
}

/// Builds the capture and container tests (`--no-run`) and reads the executables from cargo's JSON messages.
fn test_executables() -> anyhow::Result<TestExecutables> {
    let out = Command::new("cargo")
        .current_dir(crate::workspace_root())
        .args([
            "test",
            "-p",
            "writepath-tests",
            "--test",
            "capture",
            "--test",
            "container",
            "--no-run",
        ])
        .arg("--message-format=json")
        .stderr(Stdio::inherit())
        .output()
        .context("failed to start cargo")?;
    ensure!(
        out.status.success(),
        "cargo test --no-run failed ({})",
        out.status
    );
    let (mut test, mut container, mut driver) = (None, None, None);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let is_test = msg["profile"]["test"] == true;
        match msg["target"]["name"].as_str() {
            Some("capture") if is_test => test = Some(PathBuf::from(exe)),
            Some("container") if is_test => container = Some(PathBuf::from(exe)),
            Some("syscall-driver") if !is_test => driver = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Ok(TestExecutables {
        test: test.context("cargo did not report the capture test executable")?,
        container: container.context("cargo did not report the container test executable")?,
        driver: driver.context("cargo did not report the syscall-driver executable")?,
    })
}

/// The passed and failed counts of libtest's `test result:` line
/// (`test result: FAILED. 3 passed; 6 failed; 0 ignored; …`).
fn test_counts(output: &str) -> (Option<u32>, Option<u32>) {
    let count = |line: &str, what: &str| -> Option<u32> {
        line.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(what)?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
    };
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("test result:"))
        .collect();
    if lines.is_empty() {
        return (None, None);
    }
    let sum = |what: &str| lines.iter().map(|l| count(l, what)).sum::<Option<u32>>();
    (sum(" passed"), sum(" failed"))
}
