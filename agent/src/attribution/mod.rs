//! Attribution: cgroup id → cgroup path → container id and runtime ([`cgroup`]) → pod and
//! container name ([`pods`]) → owning workload ([`owners`]).

pub mod cgroup;
pub mod owners;
pub mod pods;
