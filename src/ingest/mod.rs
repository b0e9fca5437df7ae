//! Loading data into Delta tables: `persona load` from files, and Flight SQL ingest streams.
//!
//! Layout: `sources.rs` (the files a load names: folders, globs, content hashes), `formats.rs`
//! (CSV, JSON lines and Parquet read into Arrow batches in the table's types, bad rows set
//! aside), `columns.rs` (type inference and the table-vs-input schema check), `rejects.rs` (the
//! rejects file), `encoding.rs` (Parquet writer settings for a batch of rows), `progress.rs`
//! (the progress line), `writer.rs` (one atomic Delta commit per write: append, overwrite or
//! merge of a stream of Arrow batches), `watermark.rs` (`persona.load_watermarks`), `load.rs`
//! (the `persona load` job that ties them together), `stream.rs` (a client's DoPut stream
//! appended in micro-batches, one commit each).

pub mod columns;
pub mod encoding;
pub mod formats;
pub mod load;
pub mod progress;
pub mod rejects;
pub mod sources;
pub mod stream;
pub mod watermark;
pub mod writer;

pub use load::{LoadReport, LoadRequest, load};
pub use writer::{Mode, WriteRequest, Written, write};
