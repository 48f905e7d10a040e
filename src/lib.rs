//! herald: self-hosted delivery of signed webhooks, wire-compatible with Rewatch's webhooks.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod listen;
pub mod metrics;
pub mod outbox;
pub mod retention;
pub mod secrets;
pub mod store;
pub mod sys;
pub mod worker;
