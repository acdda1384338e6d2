//! Per-node pipelines: each node runs its own steps with its own retries
//! and ends with its own outcome; one node's failure never stops or hides
//! another's. The runner knows nothing about gRPC: steps return
//! [`StepError`]s that carry their retry class.

pub(crate) mod events;
pub(crate) mod outcome;
pub(crate) mod retry;
pub(crate) mod runner;

pub(crate) use events::{Event, EventSink};
pub use outcome::{ErrorKind, NodeOutcome, NodeRef, NodeStatus, StepError, StepRecord, StepStatus};
pub(crate) use retry::RetryPolicy;
pub(crate) use runner::{Done, LAST_SEEN, NodeCtx, RunContext, run_nodes};
