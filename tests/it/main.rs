//! Integration tests: one binary, one module per area.
//!
//! Servers bind 127.0.0.1:0 and are reached with arrow-flight's Flight SQL client; nothing
//! sleeps waiting for a server because binding happens before the test connects.

mod access;
mod conformance;
mod embedded_data;
mod fixture;
mod follow_versions;
mod identity;
mod ingest;
mod metadata;
mod prepared;
mod refusals;
mod s3;
mod segments;
mod slt;
mod statements;
mod time_travel;
mod upkeep;
mod writes;
