//! Per-node pipelines: each node runs its own steps with its own retries
//! and ends with its own outcome; one node's failure never stops or hides
//! another's. The runner knows nothing about gRPC: steps return
//! [`StepError`]s that carry their retry class.

pub mod events;
pub mod outcome;
pub mod retry;
pub mod runner;

pub use events::{Event, EventSink};
pub use outcome::{ErrorKind, NodeOutcome, NodeRef, NodeStatus, StepError, StepRecord, StepStatus};
pub use retry::RetryPolicy;
pub use runner::{Done, LAST_SEEN, NodeCtx, RunContext, run_nodes};
