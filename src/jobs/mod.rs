//! Jobs: the state machine, its runner, health checks and the status view.

pub mod health;
pub mod machine;
pub mod narrate;
pub mod runner;
pub mod status;
