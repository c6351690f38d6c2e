//! The benchmark workload: one tight loop of raw syscalls, timed, printed as `ns/op`.
//!
//! `bench-load MODE N DIR [RATE]` — modes: `repeat` (open O_CREAT|O_WRONLY|O_TRUNC + close of one
//! path), `unique` (the same on N distinct names), `readonly` (open O_RDONLY + close), `mkdir`
//! (mkdir + rmdir), `getppid` (a syscall no hook watches). With RATE (ops per second) the loop
//! is paced instead of running flat out. Prints `<ns per op> <total ns>`.

use std::ffi::CString;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: bench-load repeat|unique|readonly|mkdir|getppid N DIR [RATE]");
        std::process::exit(2);
    }
    let (mode, n, dir) = (
        args[1].as_str(),
        args[2].parse::<u64>().expect("N"),
        args[3].as_str(),
    );
    let rate: Option<f64> = args.get(4).map(|r| r.parse().expect("RATE"));
    let hot = CString::new(format!("{dir}/hot")).unwrap();
    let sub = CString::new(format!("{dir}/sub")).unwrap();
    std::fs::write(format!("{dir}/hot"), b"").expect("dir writable");
    // Names for `unique`, made before the clock starts.
    let names: Vec<CString> = if mode == "unique" {
        (0..n)
            .map(|i| CString::new(format!("{dir}/u{i:08}")).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    let wr = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC;
    let start = Instant::now();
    for i in 0..n {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / r);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        // SAFETY: valid C strings; every fd opened is closed.
        unsafe {
            match mode {
                "repeat" => close(libc::open(hot.as_ptr(), wr, 0o644)),
                "unique" => close(libc::open(names[i as usize].as_ptr(), wr, 0o644)),
                "readonly" => close(libc::open(hot.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)),
                "mkdir" => {
                    libc::mkdir(sub.as_ptr(), 0o755);
                    libc::rmdir(sub.as_ptr());
                }
                "getppid" => {
                    libc::syscall(libc::SYS_getppid);
                }
                other => {
                    eprintln!("bench-load: unknown mode {other}");
                    std::process::exit(2);
                }
            }
        }
    }
    let total = start.elapsed().as_nanos() as f64;
    println!("{:.1} {}", total / n as f64, total as u64);
}

unsafe fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing an fd this process opened.
        unsafe { libc::close(fd) };
    }
}
