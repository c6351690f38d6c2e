//! Patch rendering: suggestions into manifests (`writepath patch`).
