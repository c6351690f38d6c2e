//! [`EventStream`]: what the programs send, read back: the ring buffer of records, the dedup
//! LRU whose hit counts complete them, and the kernel counters. `record` and the agent drain
//! it the same way, through [`EventStream::drain`].

use agent_common::{Counter, DedupKey, DedupValue, COUNTERS};
use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use tokio::io::unix::AsyncFd;

use super::loader::{Error, Result};
use crate::record::Recorder;
use crate::report::Counters;
use agent_common::names;

/// The record stream of a loaded [`super::loader::Capture`].
pub struct EventStream {
    ring: AsyncFd<RingBuf<MapData>>,
    dedup: HashMap<MapData, DedupKey, DedupValue>,
    stats: PerCpuArray<MapData, u64>,
}

impl EventStream {
    /// Wraps the maps; needs a tokio runtime (the ring's fd is registered with its reactor).
    pub(super) fn new(
        ring: RingBuf<MapData>,
        dedup: HashMap<MapData, DedupKey, DedupValue>,
        stats: PerCpuArray<MapData, u64>,
    ) -> Result<EventStream> {
        // SAFETY: the ring buffer owns its fd and lives inside the AsyncFd, which deregisters
        // it before the fd is closed.
        let ring = unsafe { AsyncFd::register(ring) }.map_err(|e| Error::Poll(e.into()))?;
        Ok(EventStream { ring, dedup, stats })
    }

    /// Waits until the kernel woke the reader (it does so once a batch is waiting; between
    /// wake-ups, drain on a timer).
    pub async fn readable(&mut self) -> Result<()> {
        let mut guard = self.ring.readable_mut().await.map_err(Error::Poll)?;
        guard.clear_ready();
        Ok(())
    }

    /// Reads every waiting record into `recorder`, folding the dedup hit counts in whenever
    /// enough keys piled up (bounded memory under a flood of distinct paths).
    pub fn drain(&mut self, recorder: &mut Recorder) -> Result<()> {
        loop {
            let ring = self.ring.get_mut();
            while let Some(item) = ring.next() {
                recorder.add_record(&item);
                if recorder.needs_hits() {
                    break;
                }
            }
            if !recorder.needs_hits() {
                return Ok(());
            }
            self.fold_hits(recorder)?;
        }
    }

    /// Folds the hit counts the kernel added to live dedup entries into `recorder`.
    pub fn fold_hits(&self, recorder: &mut Recorder) -> Result<()> {
        recorder.apply_hits(&self.dedup_hits());
        Ok(())
    }

    /// Hit counts folded into each live dedup entry since it was emitted. Entries evicted
    /// while we iterate are skipped, not fatal.
    pub fn dedup_hits(&self) -> Vec<(DedupKey, DedupValue)> {
        self.dedup.iter().filter_map(|r| r.ok()).collect()
    }

    /// The kernel counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let mut sums = [0u64; COUNTERS as usize];
        for (i, sum) in sums.iter_mut().enumerate() {
            let values = self
                .stats
                .get(&(i as u32), 0)
                .map_err(|source| Error::Map {
                    action: "read",
                    map: names::STATS_MAP,
                    source,
                })?;
            *sum = values.iter().sum();
        }
        let c = |k: Counter| sums[k as usize];
        Ok(Counters {
            seen: c(Counter::Seen),
            filtered: c(Counter::Filtered),
            deduplicated: c(Counter::Deduplicated),
            emitted: c(Counter::Emitted),
            dropped: c(Counter::Dropped),
            pending_full: c(Counter::PendingFull),
            pending_missing: c(Counter::PendingMissing),
            path_errors: c(Counter::PathErrors),
            base_errors: c(Counter::BaseErrors),
            not_a_path: c(Counter::NotAPath),
            probe_errors: c(Counter::ProbeErrors),
            decode_errors: 0,
            collapsed: 0,
            runtime_setup: 0,
        })
    }
}
