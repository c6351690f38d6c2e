//! Copying user path strings into the staging payload, and hashing them for the dedup key.

use agent_common::{FNV_OFFSET, FNV_PRIME, MAX_PATH, PAYLOAD_MASK};
use core::ffi::c_void;

use aya_ebpf::helpers::generated::{bpf_loop, bpf_probe_read_user, bpf_probe_read_user_str};

use crate::maps::{LOOP_STATE, SCRATCH};

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
        return Copied {
            len: 0,
            truncated: false,
            unreadable: true,
        };
    }
    let len = (n as usize - 1) & (MAX_PATH - 1);
    let mut truncated = false;
    if n as usize == max {
        // The buffer is full: the string was exactly max-1 bytes, or longer. One more byte tells.
        let mut next = 0u8;
        // SAFETY: a user pointer read with the checked helper.
        let r = unsafe {
            bpf_probe_read_user(
                (&mut next as *mut u8).cast(),
                1,
                (src + (max as u64 - 1)) as *const _,
            )
        };
        truncated = r == 0 && next != 0;
    }
    Copied {
        len,
        truncated,
        unreadable: false,
    }
}

/// FNV-1a over `len` bytes of the scratch payload at `off`, eight bytes at a time (`off` is
/// 8-aligned); bytes past `len` in the last word are masked off, so stale bytes never change
/// the hash. Paths of at most [`SHORT_PATH`] bytes (most of them) are hashed in a straight
/// loop. Longer ones: with `BOUNDED`, a bounded loop (every kernel since 5.3); otherwise under
/// `bpf_loop` (5.17+) with its state in `LOOP_STATE` (see there why). All give the same value.
#[inline(always)]
pub fn hash<const BOUNDED: bool>(off: usize, len: usize) -> u64 {
    if len <= SHORT_PATH {
        return wp_hash_short(off as u64, len as u64);
    }
    if BOUNDED {
        return wp_hash_bounded(off as u64, len as u64);
    }
    let Some(st) = LOOP_STATE.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU map value, ours while this program runs.
    unsafe {
        (*st).hash_off = off as u64;
        (*st).hash_len = len as u64;
        (*st).hash = FNV_OFFSET;
    }
    let words = len.div_ceil(8) as u32;
    // SAFETY: the callback takes its state from LOOP_STATE.
    unsafe { bpf_loop(words, hash_step as *mut c_void, core::ptr::null_mut(), 0) };
    // SAFETY: as above.
    unsafe { (*st).hash ^ (len as u64) }
}

/// [`hash`] of a long path in a bounded loop, as a global function: the verifier checks the
/// loop once, here, and its caller sees one unknown value. (Inlined, every iteration that can
/// leave the loop carries its own range of `len` into the rest of the caller, which the
/// verifier then checks once per iteration.)
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_hash_bounded(off: u64, len: u64) -> u64 {
    words_hash::<{ MAX_PATH / 8 }>(off as usize, len as usize)
}

/// [`hash`] of a path of at most [`SHORT_PATH`] bytes, as a global function for the same
/// reason as [`wp_hash_bounded`]: inlined twice in the path stage, the exits of the two loops
/// multiply.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn wp_hash_short(off: u64, len: u64) -> u64 {
    words_hash::<{ SHORT_PATH / 8 }>(off as usize, len as usize)
}

/// Paths up to this long are hashed in a straight loop: no `bpf_loop` call per word.
const SHORT_PATH: usize = 64;

/// [`hash`] in a plain loop of at most `WORDS` words. One data-dependent branch per word
/// (the full words), then the partial last word: a loop the verifier walks in linear time.
#[inline(always)]
fn words_hash<const WORDS: usize>(off: usize, len: usize) -> u64 {
    let Some(scratch) = SCRATCH.get_ptr(0) else {
        return 0;
    };
    // SAFETY: masked, 8-aligned offsets inside payload + slack.
    let word = |at: usize| unsafe {
        *((*scratch)
            .payload
            .as_ptr()
            .add((off + at) & PAYLOAD_MASK & !7) as *const u64)
    };
    let full = len / 8;
    let mut h = FNV_OFFSET;
    let mut i = 0;
    while i < WORDS {
        if i >= full {
            break;
        }
        h = (h ^ word(i * 8)).wrapping_mul(FNV_PRIME);
        i += 1;
    }
    let rem = len & 7;
    if rem != 0 && full < WORDS {
        let w = word(full * 8) & ((1u64 << (rem * 8)) - 1);
        h = (h ^ w).wrapping_mul(FNV_PRIME);
    }
    h ^ (len as u64)
}

#[inline(never)]
extern "C" fn hash_step(index: u64, _ctx: *mut c_void) -> i64 {
    let Some(st) = LOOP_STATE.get_ptr_mut(0) else {
        return 1;
    };
    let Some(scratch) = SCRATCH.get_ptr(0) else {
        return 1;
    };
    // SAFETY: per-CPU map values, ours while this program runs.
    let st = unsafe { &mut *st };
    let at = index * 8;
    if at >= st.hash_len || at >= MAX_PATH as u64 {
        return 1;
    }
    let pos = ((st.hash_off + at) as usize) & PAYLOAD_MASK & !7;
    // SAFETY: masked, 8-aligned offset inside payload + slack.
    let mut w = unsafe { *((*scratch).payload.as_ptr().add(pos) as *const u64) };
    let rem = st.hash_len - at;
    if rem < 8 {
        w &= (1u64 << (rem * 8)) - 1;
    }
    st.hash = (st.hash ^ w).wrapping_mul(FNV_PRIME);
    0
}

/// Rounds a payload offset up to the next multiple of 8.
#[inline(always)]
pub const fn align8(off: usize) -> usize {
    (off + 7) & !7
}
