//! herald's behaviour through its public surface: HTTP, GraphQL, the CLI and real deliveries
//! to receivers on loopback. Runs on SQLite, or on PostgreSQL when `HERALD_TEST_DATABASE_URL`
//! is set (a fresh database per test).

mod auth;
mod channel_events;
mod cli;
mod connections;
mod content;
mod dashboard;
mod delivery_log;
mod delivery_state;
mod fuzz;
mod graphiql;
mod helpers;
mod hostile;
mod ingest_hostile;
mod isolation;
mod listen;
mod metrics;
mod outbox;
mod payloads;
mod queue;
mod receivers;
mod replay;
mod retention;
mod retries;
mod rewatch_api;
mod rewatch_schema;
mod schema;
mod secrets;
mod serve;
mod shutdown;
mod sources;
mod sources_api;
mod unavailable;
mod video_details;
mod webhooks;
