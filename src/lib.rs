//! persona: a Delta Lake lakehouse of customer data served as SQL over Arrow Flight SQL.
//!
//! Layout: `config` (persona.toml and overrides), `embedded` (the default lakehouse),
//! `catalog` (Delta tables that follow new versions), `session` (the DataFusion session), `optimizer` (planner rules persona adds), `windows`
//! (window functions over many small partitions in one pass),
//! `query` (SQL -> checked plan, time travel), `identity` (identity resolution), `ingest`
//! (loading files into Delta tables), `lakehouse` (table names, upkeep, forgetting a customer),
//! `flight` (the Flight SQL service), `server` (start-up), `cli` (the command line), `error`
//! (errors and their gRPC codes), `access` (who may do what), `procedures` (what `CALL` runs),
//! `runs` (segments and checks), `store` (persona's own tables).

pub mod access;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dml;
pub mod embedded;
pub mod error;
pub mod flight;
pub mod identity;
pub mod ingest;
pub mod lakehouse;
pub mod optimizer;
pub mod planner;
pub mod procedures;
pub mod query;
pub mod runs;
pub mod server;
pub mod session;
pub mod store;
pub mod windows;

pub use error::{PersonaError, Result};
