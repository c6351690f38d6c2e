//! The suggestion engine: from a report's writes to the smallest set of volumes that works.
//!
//! [`suggest`] is a pure function of the reports: [`aggregate`] merges them per (workload,
//! container), [`alias`] gives every path one canonical name, [`classify`] separates
//! root-filesystem writes from writes that need no volume, [`layout`] picks the directories to
//! mount, and [`describe`] says what each one is for. [`table`] renders the result for people.
//! The rules are documented in `docs/suggestions.md`.

pub mod aggregate;
pub mod alias;
pub mod classify;
pub mod describe;
pub mod layout;
pub mod model;
pub mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::Path;

pub use model::*;

use crate::report::Report;
use aggregate::WriteSet;
use classify::{Classified, Placement};
use layout::DirIndex;

/// Current version of the [`Suggestions`] document.
pub const SUGGESTIONS_VERSION: u32 = 1;

/// Errors of the suggestion engine's input side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A report could not be read or parsed.
    #[error(transparent)]
    Report(#[from] crate::report::Error),
    /// A report holds no target at all.
    #[error("{path}: report has no targets (nothing was recorded)")]
    Empty {
        /// The file.
        path: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads report files for [`suggest`], refusing files that hold no target.
pub fn load_reports(paths: &[impl AsRef<Path>]) -> Result<Vec<Report>> {
    paths
        .iter()
        .map(|p| {
            let p = p.as_ref();
            let report = Report::load(p)?;
            if report.targets.is_empty() {
                return Err(Error::Empty {
                    path: p.display().to_string(),
                });
            }
            Ok(report)
        })
        .collect()
}

/// Computes the suggestions for every container in the reports (merged per workload and
/// container). Pure: the same reports always give the same answer.
pub fn suggest(reports: &[Report]) -> Suggestions {
    let containers = aggregate::aggregate(reports)
        .iter()
        .map(suggest_container)
        .collect();
    Suggestions {
        version: SUGGESTIONS_VERSION,
        containers,
    }
}

/// Computes the suggestions for one container's merged evidence.
pub fn suggest_container(set: &WriteSet) -> ContainerSuggestions {
    let aliases = alias::Aliases::new(set.writes.values(), &set.symlinks);
    let classified = classify::classify_all(set, &aliases);
    let index = DirIndex::new(&set.directories, &classified, &aliases);
    let rootfs: Vec<&Classified<'_>> = classified
        .iter()
        .filter(|c| c.placement == Placement::Rootfs)
        .collect();
    let layout = layout::layout(&rootfs, &index);
    let mut names = BTreeSet::new();
    let volumes: Vec<VolumeSuggestion> = layout
        .anchors
        .iter()
        .map(|a| describe::volume(a, &index, &mut names))
        .collect();
    let excluded = classified
        .iter()
        .filter_map(|c| match &c.placement {
            Placement::Excluded(reason) => Some(ExcludedWrite {
                path: c.write.path.clone(),
                reason: reason.clone(),
                count: c.write.count,
            }),
            Placement::Rootfs => None,
        })
        .collect();
    let unresolved = layout
        .unplaced
        .iter()
        .map(|u| UnresolvedWrite {
            path: u.write.write.path.clone(),
            directory: u.directory.clone(),
            reason: u.reason.clone(),
            count: u.write.write.count,
            failed_writes: u.write.write.results.get("EROFS").copied().unwrap_or(0),
        })
        .collect();
    let env = describe::env(&volumes, &classified);
    ContainerSuggestions {
        workload: set.workload.clone(),
        container: set.container.clone(),
        container_kind: set.kind.clone(),
        cgroups: if set.workload.is_none() {
            set.cgroups.iter().cloned().collect()
        } else {
            Vec::new()
        },
        volumes,
        excluded,
        env,
        partial: set.partial,
        unresolved,
        warnings: warnings(set),
    }
}

/// Sentences for the recorder counters that mean writes may be missing or misplaced.
fn warnings(set: &WriteSet) -> Vec<String> {
    let mut out = Vec::new();
    let c = &set.counters;
    let lost = c.dropped.saturating_add(c.pending_full);
    if lost > 0 {
        out.push(format!(
            "the recorder lost {lost} events: some writes may be missing, record again"
        ));
    }
    let unplaced = c.path_errors.saturating_add(c.base_errors);
    if unplaced > 0 {
        out.push(format!(
            "{unplaced} recorded paths were cut or had no known directory"
        ));
    }
    out
}
