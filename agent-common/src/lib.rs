//! Types shared between the kernel programs (`agent-ebpf`) and the userspace agent.
//!
//! Everything here is `#[repr(C)]`, has no hidden padding (sizes are pinned with `const`
//! assertions) and is read by both sides byte for byte.
#![cfg_attr(not(feature = "user"), no_std)]

pub mod event;
pub mod names;
pub mod offsets;
pub mod syscalls;

pub use event::*;
