//! herald: self-hosted delivery of signed webhooks, wire-compatible with Rewatch's webhooks.
#![forbid(unsafe_code)]

pub mod domain;
