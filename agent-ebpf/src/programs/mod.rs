//! The programs of every design (docs/kernels.md) and the benchmark floor.
mod enter;
mod exit;
mod fexit;
mod floor;
mod paths;
