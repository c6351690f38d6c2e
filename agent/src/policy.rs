//! The admission policy (`writepath policy`).
