//! Copying user path strings into the staging payload, and hashing them for the dedup key.

use agent_common::{FNV_OFFSET, FNV_PRIME, MAX_PATH, PAYLOAD_MASK};
use aya_ebpf::helpers::generated::{bpf_probe_read_user, bpf_probe_read_user_str};

/// A string copied into the payload.
pub struct Copied {
    /// Bytes without the NUL.
    pub len: usize,
    /// Cut at `max` bytes.
    pub truncated: bool,
    /// The pointer could not be read.
    pub unreadable: bool,
}

/// Copies the NUL-terminated user string at `src` to `payload[off..]`, at most `max` bytes with
/// the NUL (`max` <= [`MAX_PATH`]).
#[inline(always)]
pub fn copy_user_str(payload: *mut u8, off: usize, src: u64, max: usize) -> Copied {
    // SAFETY: `off & PAYLOAD_MASK` + MAX_PATH stays inside payload + slack.
    let dst = unsafe { payload.add(off & PAYLOAD_MASK) };
    let n = unsafe { bpf_probe_read_user_str(dst.cast(), max as u32, src as *const _) };
    if n <= 0 {
        return Copied { len: 0, truncated: false, unreadable: true };
    }
    let len = (n as usize - 1) & (MAX_PATH - 1);
    let mut truncated = false;
    if n as usize == max {
        // The buffer is full: the string was exactly max-1 bytes, or longer. One more byte tells.
        let mut next = 0u8;
        // SAFETY: a user pointer read with the checked helper.
        let r = unsafe {
            bpf_probe_read_user((&mut next as *mut u8).cast(), 1, (src + (max as u64 - 1)) as *const _)
        };
        truncated = r == 0 && next != 0;
    }
    Copied { len, truncated, unreadable: false }
}

/// FNV-1a over `len` bytes at `payload[off..]`, eight bytes at a time (`off` is 8-aligned);
/// bytes past `len` in the last word are masked off, so stale bytes never change the hash.
#[inline(always)]
pub fn hash(payload: *const u8, off: usize, len: usize) -> u64 {
    let mut h = FNV_OFFSET;
    let words = (len + 7) / 8;
    for i in 0..(MAX_PATH / 8) {
        if i >= words {
            break;
        }
        // SAFETY: in range (see copy_user_str); aligned because `off` is.
        let mut w = unsafe { *(payload.add((off + i * 8) & PAYLOAD_MASK) as *const u64) };
        let rem = len - i * 8;
        if rem < 8 {
            w &= (1u64 << (rem * 8)) - 1;
        }
        h = (h ^ w).wrapping_mul(FNV_PRIME);
    }
    h ^ (len as u64)
}

/// Rounds a payload offset up to the next multiple of 8.
#[inline(always)]
pub const fn align8(off: usize) -> usize {
    (off + 7) & !7
}
