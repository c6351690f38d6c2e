//! The suggestion engine: from a report's writes to the smallest set of volumes that works.
pub mod model;

pub use model::*;
