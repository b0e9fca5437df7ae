//! One error type for the server, and the single place that maps it to gRPC status codes.
//!
//! Errors are classified where they arise (a missing table is `TableNotFound`, a refused
//! statement is `PermissionDenied`), so the mapping below never has to guess from message text.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use deltalake::DeltaTableError;
use tonic::{Code, Status};

pub type Result<T, E = PersonaError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    /// The configuration file or a flag is wrong; the message names the key.
    #[error("configuration error: {0}")]
    Config(String),

    /// A table a query refers to is not in the catalog.
    #[error("table not found: {0}")]
    TableNotFound(String),

    /// Something else a request names does not exist: a segment, a check, a recorded run, a
    /// procedure. The message says what and lists the known names.
    #[error("not found: {0}")]
    NotFound(String),

    /// The request is well-formed but not allowed for this client (DDL, COPY, file paths, SET).
    #[error("permission denied: {0}")]
    PermissionDenied(String),

    /// The client sent no credentials where they are required, or wrong ones.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),

    /// The request itself is malformed: bad handle, wrong parameter count, several statements.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An input's columns do not fit the table's: the message names the column and both types.
    #[error("schema mismatch: {0}")]
    SchemaMismatch(String),

    /// A time-travel query asked for a version or a time the table's log does not have.
    #[error("version not found: {0}")]
    VersionNotFound(String),

    /// A load rejected more records than `--max-rejects` allows; nothing was committed.
    #[error("too many rejected records: {0}")]
    TooManyRejects(String),

    /// A write asked to create a table that exists already (Flight SQL ingest with "fail if
    /// exists").
    #[error("already exists: {0}")]
    AlreadyExists(String),

    /// Another writer committed first; nothing was written and the write can be run again.
    #[error("write conflict: {0}")]
    Conflict(String),

    /// The work was stopped before it finished (its consumer went away); nothing was committed.
    #[error("cancelled")]
    Cancelled,

    /// `persona forget` could not prove the customer gone: some data file still holds them.
    #[error("not forgotten: {0}")]
    NotForgotten(String),

    /// The embedded default data could not be materialized.
    #[error("embedded lakehouse: {0}")]
    Embedded(String),

    #[error(transparent)]
    DataFusion(#[from] DataFusionError),

    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: DeltaTableError,
    },

    #[error(transparent)]
    Arrow(#[from] ArrowError),

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl PersonaError {
    pub fn delta(table: impl Into<String>, source: DeltaTableError) -> Self {
        Self::Delta { table: table.into(), source }
    }
}

impl From<arrow_flight::error::FlightError> for PersonaError {
    fn from(e: arrow_flight::error::FlightError) -> Self {
        match e {
            arrow_flight::error::FlightError::Arrow(a) => PersonaError::Arrow(a),
            // Anything else is a malformed stream from the client.
            other => PersonaError::InvalidArgument(other.to_string()),
        }
    }
}

impl From<PersonaError> for DataFusionError {
    fn from(e: PersonaError) -> Self {
        match e {
            PersonaError::DataFusion(inner) => inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

impl From<PersonaError> for Status {
    fn from(e: PersonaError) -> Self {
        let code = code_of(&e);
        Status::new(code, e.to_string())
    }
}

/// The gRPC code for an error. Each arm says why; there is no catch-all arm so a new
/// variant must be classified on purpose.
fn code_of(e: &PersonaError) -> Code {
    match e {
        // The operator's own setup is broken: the client cannot fix it by retrying.
        PersonaError::Config(_) | PersonaError::Embedded(_) => Code::FailedPrecondition,
        PersonaError::TableNotFound(_) | PersonaError::NotFound(_) => Code::NotFound,
        PersonaError::PermissionDenied(_) => Code::PermissionDenied,
        // Distinct from PERMISSION_DENIED so clients know to (re-)authenticate rather than give up.
        PersonaError::Unauthenticated(_) => Code::Unauthenticated,
        PersonaError::InvalidArgument(_) => Code::InvalidArgument,
        // The input has to change to fit the table (or the table be allowed to grow).
        PersonaError::SchemaMismatch(_) | PersonaError::TooManyRejects(_) => Code::InvalidArgument,
        // The table exists, the requested state of it does not.
        PersonaError::VersionNotFound(_) => Code::NotFound,
        PersonaError::AlreadyExists(_) => Code::AlreadyExists,
        // gRPC's code for a concurrency conflict the client resolves by retrying the whole call.
        PersonaError::Conflict(_) => Code::Aborted,
        PersonaError::Cancelled => Code::Cancelled,
        // persona's own guarantee failed; nothing the client sent is at fault.
        PersonaError::NotForgotten(_) => Code::Internal,
        PersonaError::DataFusion(df) => datafusion_code(df),
        PersonaError::Delta { source, .. } => delta_code(source),
        PersonaError::Arrow(a) => arrow_code(a),
        // Local file system trouble is the server's problem, not the request's.
        PersonaError::Io(_) => Code::Internal,
    }
}

fn datafusion_code(e: &DataFusionError) -> Code {
    match e {
        // The SQL text does not parse, or names columns / functions that do not exist.
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            Code::InvalidArgument
        }
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::ArrowError(a, _) => arrow_code(a),
        DataFusionError::Context(_, inner) => datafusion_code(inner),
        DataFusionError::Shared(inner) => datafusion_code(inner),
        DataFusionError::Diagnostic(_, inner) => datafusion_code(inner),
        DataFusionError::Collection(errs) => errs.first().map_or(Code::Internal, datafusion_code),
        DataFusionError::External(inner) => {
            if let Some(p) = inner.downcast_ref::<PersonaError>() {
                code_of(p)
            } else if let Some(d) = inner.downcast_ref::<DeltaTableError>() {
                delta_code(d)
            } else if let Some(a) = inner.downcast_ref::<ArrowError>() {
                arrow_code(a)
            } else {
                Code::Internal
            }
        }
        // A storage read failed: usually transient (object store, disk), worth a retry.
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => Code::Unavailable,
        DataFusionError::ParquetError(_) | DataFusionError::Internal(_) => Code::Internal,
        DataFusionError::Execution(_) | DataFusionError::ExecutionJoin(_) => Code::Internal,
        DataFusionError::Configuration(_) => Code::InvalidArgument,
        DataFusionError::Substrait(_) => Code::InvalidArgument,
        DataFusionError::Ffi(_) => Code::Internal,
    }
}

fn arrow_code(e: &ArrowError) -> Code {
    match e {
        // Values in the query do not fit: bad cast, bad literal, division by zero.
        ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::DivideByZero
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::SchemaError(_)
        | ArrowError::ComputeError(_) => Code::InvalidArgument,
        ArrowError::NotYetImplemented(_) => Code::Unimplemented,
        ArrowError::MemoryError(_) => Code::ResourceExhausted,
        ArrowError::ExternalError(_)
        | ArrowError::IoError(..)
        | ArrowError::IpcError(_)
        | ArrowError::CsvError(_)
        | ArrowError::JsonError(_)
        | ArrowError::AvroError(_)
        | ArrowError::ParquetError(_)
        | ArrowError::CDataInterface(_)
        | ArrowError::DictionaryKeyOverflowError
        | ArrowError::RunEndIndexOverflowError
        | ArrowError::OffsetOverflowError(_) => Code::Internal,
    }
}

/// True when a commit lost a race with another writer (and wrote nothing).
pub fn is_conflict(e: &DeltaTableError) -> bool {
    use deltalake::kernel::transaction::TransactionError;
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::VersionAlreadyExists(_)
                    | TransactionError::CommitConflict(_)
                    | TransactionError::MaxCommitAttempts(_)
            }
    )
}

fn delta_code(e: &DeltaTableError) -> Code {
    if is_conflict(e) {
        // Another writer won the commit race: the client may run the whole call again.
        return Code::Aborted;
    }
    match e {
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_) => Code::NotFound,
        DeltaTableError::InvalidDateTimeString { .. } => Code::InvalidArgument,
        // The version we followed no longer exists in the log.
        DeltaTableError::InvalidVersion(_) => Code::NotFound,
        DeltaTableError::ChangeDataNotEnabled { .. }
        | DeltaTableError::ChangeDataNotRecorded { .. }
        | DeltaTableError::ChangeDataInvalidVersionRange { .. }
        | DeltaTableError::ChangeDataTimestampGreaterThanCommit { .. }
        | DeltaTableError::NoStartingVersionOrTimestamp => Code::InvalidArgument,
        // A data file removed under us (vacuum, deleted table) will not come back on retry.
        DeltaTableError::ObjectStore { source: object_store::Error::NotFound { .. } } => Code::NotFound,
        DeltaTableError::ObjectStore { .. } => Code::Unavailable,
        // The rest describe a log or data file the table itself got wrong, or a protocol
        // feature this reader lacks: the request was fine, the table is not readable here.
        _ => Code::Internal,
    }
}
