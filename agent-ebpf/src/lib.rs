//! Host-side stub: the programs live in `main.rs` and are only built for the BPF target. This
//! library exists so `agent` can declare a build dependency and be rebuilt when they change.
#![no_std]
