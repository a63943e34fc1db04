//! Jobs: the state machine, its runner, health checks, the status view and
//! the registry interface the runner calls.

pub mod health;
pub mod machine;
pub mod narrate;
pub mod registry;
pub mod runner;
pub mod status;
