//! writepath: finds where containers write, and proposes the volumes that let them run with
//! `readOnlyRootFilesystem: true`.
//!
//! Data flow (see DESIGN.md): [`capture`] loads the eBPF programs and reads their records,
//! [`decode`] checks them, [`path`] resolves them as the container sees them, [`record`]
//! aggregates them per target into a [`report::Report`]; the suggestion engine and the patch
//! renderer read reports.

pub mod attribution;
pub mod capture;
pub mod cli;
pub mod cluster;
pub mod daemon;
pub mod decode;
pub mod fsutil;
pub mod patch;
pub mod path;
pub mod policy;
pub mod record;
pub mod report;
pub mod robustness;
pub mod suggest;
pub mod verify;
