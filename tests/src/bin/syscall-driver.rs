//! Makes the syscalls named on its command line, in order, with raw `syscall(2)` so the test
//! knows exactly which syscall ran. Used by the privileged capture tests.
//!
//! Each argument is `OP:PATH[:PATH2]`. Ops taking a dirfd use the directory opened by the last
//! `dirfd:DIR` (AT_FDCWD before that). `cd:DIR` changes directory. Failures are printed and
//! ignored (the tests want failed calls too); the exit code is 0 unless an argument is bad.

use std::ffi::CString;

fn c(s: &str) -> CString {
    // Test arguments may carry non-UTF-8 bytes as \xNN escapes.
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b.get(i + 1) == Some(&b'x') {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    CString::new(out).expect("no NUL in test paths")
}

fn main() {
    let mut dirfd: libc::c_long = libc::AT_FDCWD as libc::c_long;
    for arg in std::env::args().skip(1) {
        let mut parts = arg.splitn(3, ':');
        let op = parts.next().unwrap_or_default();
        let p1 = c(parts.next().unwrap_or_default());
        let p2 = c(parts.next().unwrap_or_default());
        let (a, b) = (p1.as_ptr() as libc::c_long, p2.as_ptr() as libc::c_long);
        let wr = (libc::O_WRONLY | libc::O_CREAT) as libc::c_long;
        let cwd = libc::AT_FDCWD as libc::c_long;
        // SAFETY: raw syscalls with valid C strings and buffers that outlive each call.
        let ret: libc::c_long = unsafe {
            match op {
                "open" => libc::syscall(libc::SYS_open, a, wr, 0o644),
                "open-ro" => libc::syscall(libc::SYS_open, a, libc::O_RDONLY as libc::c_long, 0),
                "open-rdwr" => libc::syscall(libc::SYS_open, a, libc::O_RDWR as libc::c_long, 0),
                "open-trunc" => libc::syscall(
                    libc::SYS_open,
                    a,
                    (libc::O_WRONLY | libc::O_TRUNC) as libc::c_long,
                    0,
                ),
                "append" => libc::syscall(
                    libc::SYS_open,
                    a,
                    (libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT) as libc::c_long,
                    0o644,
                ),
                "openat" => libc::syscall(libc::SYS_openat, dirfd, a, wr, 0o644),
                "openat-ro" => libc::syscall(
                    libc::SYS_openat,
                    dirfd,
                    a,
                    libc::O_RDONLY as libc::c_long,
                    0,
                ),
                "openat2" => {
                    let how: [u64; 3] = [wr as u64, 0o644, 0];
                    libc::syscall(
                        libc::SYS_openat2,
                        dirfd,
                        a,
                        &how as *const _ as libc::c_long,
                        24,
                    )
                }
                "openat2-ro" => {
                    let how: [u64; 3] = [0, 0, 0];
                    libc::syscall(
                        libc::SYS_openat2,
                        dirfd,
                        a,
                        &how as *const _ as libc::c_long,
                        24,
                    )
                }
                "creat" => libc::syscall(libc::SYS_creat, a, 0o644),
                "tmpfile" => libc::syscall(
                    libc::SYS_openat,
                    dirfd,
                    a,
                    (libc::O_TMPFILE | libc::O_RDWR) as libc::c_long,
                    0o600,
                ),
                "mkdir" => libc::syscall(libc::SYS_mkdir, a, 0o755),
                "mkdirat" => libc::syscall(libc::SYS_mkdirat, dirfd, a, 0o755),
                "mknod" => libc::syscall(
                    libc::SYS_mknod,
                    a,
                    (libc::S_IFIFO | 0o644) as libc::c_long,
                    0,
                ),
                "mknodat" => libc::syscall(
                    libc::SYS_mknodat,
                    dirfd,
                    a,
                    (libc::S_IFIFO | 0o644) as libc::c_long,
                    0,
                ),
                "rename" => libc::syscall(libc::SYS_rename, a, b),
                "renameat" => libc::syscall(libc::SYS_renameat, dirfd, a, dirfd, b),
                "renameat2" => libc::syscall(libc::SYS_renameat2, dirfd, a, dirfd, b, 0),
                "link" => libc::syscall(libc::SYS_link, a, b),
                "linkat" => libc::syscall(libc::SYS_linkat, dirfd, a, dirfd, b, 0),
                "symlink" => libc::syscall(libc::SYS_symlink, a, b),
                "symlinkat" => libc::syscall(libc::SYS_symlinkat, a, dirfd, b),
                "unlink" => libc::syscall(libc::SYS_unlink, a),
                "unlinkat" => libc::syscall(libc::SYS_unlinkat, dirfd, a, 0),
                "unlinkat-dir" => libc::syscall(
                    libc::SYS_unlinkat,
                    dirfd,
                    a,
                    libc::AT_REMOVEDIR as libc::c_long,
                ),
                "rmdir" => libc::syscall(libc::SYS_rmdir, a),
                "truncate" => libc::syscall(libc::SYS_truncate, a, 0),
                "chmod" => libc::syscall(libc::SYS_chmod, a, 0o640),
                "fchmodat" => libc::syscall(libc::SYS_fchmodat, dirfd, a, 0o640),
                "chown" => libc::syscall(libc::SYS_chown, a, 0, 0),
                "lchown" => libc::syscall(libc::SYS_lchown, a, 0, 0),
                "fchownat" => libc::syscall(libc::SYS_fchownat, dirfd, a, 0, 0, 0),
                "utimensat" => libc::syscall(libc::SYS_utimensat, dirfd, a, 0, 0),
                "utimes" => libc::syscall(libc::SYS_utimes, a, 0),
                "setxattr" => {
                    let v = b"1";
                    libc::syscall(
                        libc::SYS_setxattr,
                        a,
                        c("user.writepath").as_ptr(),
                        v.as_ptr(),
                        1,
                        0,
                    )
                }
                "removexattr" => {
                    libc::syscall(libc::SYS_removexattr, a, c("user.writepath").as_ptr())
                }
                "bind" => bind_unix(p1.as_bytes(), false),
                "bind-abstract" => bind_unix(p1.as_bytes(), true),
                "repeat-open" => {
                    // repeat-open:PATH:N — the same write N times.
                    let n: u64 = p2.to_str().ok().and_then(|s| s.parse().ok()).unwrap_or(1);
                    let mut last = 0;
                    for _ in 0..n {
                        last = libc::syscall(libc::SYS_openat, cwd, a, wr, 0o644);
                        if last >= 0 {
                            libc::close(last as i32);
                        }
                    }
                    last
                }
                "cd" => libc::syscall(libc::SYS_chdir, a),
                "dirfd" => {
                    let fd = libc::syscall(
                        libc::SYS_open,
                        a,
                        (libc::O_RDONLY | libc::O_DIRECTORY) as libc::c_long,
                        0,
                    );
                    if fd >= 0 {
                        dirfd = fd;
                    }
                    fd
                }
                "sleep-ms" => {
                    let ms: u64 = p1.to_str().ok().and_then(|s| s.parse().ok()).unwrap_or(0);
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    0
                }
                other => {
                    eprintln!("syscall-driver: unknown op {other}");
                    std::process::exit(2);
                }
            }
        };
        if ret < 0 {
            let e = std::io::Error::last_os_error();
            eprintln!("syscall-driver: {op}: {e}");
        } else if op.starts_with("open")
            || op == "openat2"
            || op == "creat"
            || op == "append"
            || op == "tmpfile"
            || op.starts_with("openat")
        {
            // SAFETY: closing an fd we opened.
            unsafe { libc::close(ret as i32) };
        }
    }
}

/// bind(2) of a new AF_UNIX socket to `name`: a filesystem path, or (`abstract_name`) an
/// abstract name (leading NUL). Returns the syscall's result.
unsafe fn bind_unix(name: &[u8], abstract_name: bool) -> libc::c_long {
    // SAFETY: plain socket calls on a zeroed sockaddr_un filled within its bounds.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let start = usize::from(abstract_name);
        for (i, byte) in name.iter().take(107 - start).enumerate() {
            addr.sun_path[i + start] = *byte as libc::c_char;
        }
        let r = libc::syscall(
            libc::SYS_bind,
            fd,
            &addr as *const _ as libc::c_long,
            std::mem::size_of::<libc::sockaddr_un>(),
        );
        libc::close(fd);
        r
    }
}
