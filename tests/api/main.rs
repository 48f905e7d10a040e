//! herald's behaviour through its public surface: HTTP, GraphQL, the CLI and real deliveries
//! to receivers on loopback. Runs on SQLite, or on PostgreSQL when `HERALD_TEST_DATABASE_URL`
//! is set (a fresh database per test).

mod auth;
mod cli;
mod content;
mod delivery_log;
mod delivery_state;
mod graphiql;
mod helpers;
mod hostile;
mod ingest_hostile;
mod isolation;
mod listen;
mod outbox;
mod payloads;
mod queue;
mod receivers;
mod retries;
mod schema;
mod serve;
mod sources;
mod sources_api;
mod webhooks;
