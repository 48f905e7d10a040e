//! herald's behaviour through its public surface: HTTP, GraphQL, the CLI and real deliveries
//! to receivers on loopback. Runs on SQLite, or on PostgreSQL when `HERALD_TEST_DATABASE_URL`
//! is set (a fresh database per test).

mod auth;
mod cli;
mod content;
mod delivery;
mod graphiql;
mod helpers;
mod hostile;
mod listen;
mod receivers;
mod schema;
mod webhooks;
