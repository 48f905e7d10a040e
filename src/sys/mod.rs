//! What herald asks of the operating system beyond what tokio and std give.

pub mod files;
pub mod priority;
