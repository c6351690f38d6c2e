//! The capture engine: loads the eBPF programs, attaches them to every write syscall, keeps the
//! watched-cgroup set, and reads records and counters back.
pub mod events;
pub mod loader;
pub mod offsets;
pub mod probe;
