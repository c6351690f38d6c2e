//! The cluster side: the `WritePathReport` custom resource ([`crd`]), the agent's publisher
//! ([`publish`]) and the CLI's reader ([`gather`]).

pub mod crd;
pub mod gather;
pub mod publish;
#[cfg(any(test, feature = "test-server"))]
pub mod testserver;
