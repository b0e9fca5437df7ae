//! Writes over DoPut: Flight SQL bulk ingest (`CommandStatementIngest`, what ADBC's
//! `adbc_ingest` sends) and a plain DoPut whose descriptor is a table path (`["events"]`), both
//! appended to a Delta table in micro-batches by `ingest/stream.rs`.

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::CommandStatementIngest;
use arrow_flight::sql::{TableExistsOption, TableNotExistOption};
use arrow_flight::sql::server::PeekableFlightDataStream;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};

use crate::catalog::{CATALOG, PERSONA_SCHEMA};
use crate::error::{PersonaError, Result};
use crate::ingest::stream::{self, IfExists, IfMissing, IngestRequest, Ingested};
use crate::procedures::ProcedureEnv;

/// The request header (or ingest option) a client names a stream with, so a retry of it is
/// recognised even when its rows are batched differently.
pub const INGEST_ID_HEADER: &str = "x-persona-ingest-id";
pub const INGEST_ID_OPTION: &str = "persona.ingest_id";

/// Flight SQL bulk ingest; answers the number of rows the stream carried.
pub async fn statement_ingest(
    ctx: &SessionContext,
    cmd: CommandStatementIngest,
    header_id: Option<String>,
    data: PeekableFlightDataStream,
) -> Result<i64> {
    if cmd.temporary {
        return Err(PersonaError::InvalidArgument("temporary tables are not supported: every ingest is a Delta commit".into()));
    }
    if cmd.transaction_id.is_some() {
        return Err(PersonaError::InvalidArgument(
            "transactions are not supported: each micro-batch of an ingest is its own Delta commit".into(),
        ));
    }
    if let Some(catalog) = cmd.catalog.as_deref().filter(|c| *c != CATALOG) {
        return Err(PersonaError::TableNotFound(format!("catalog `{catalog}`: the only catalog is `{CATALOG}`")));
    }
    let options = cmd.table_definition_options.unwrap_or_default();
    // ADBC's modes: create = (create, fail), append = (fail, append), replace = (create,
    // replace), create_append = (create, append).
    let if_missing = match TableNotExistOption::try_from(options.if_not_exist).unwrap_or(TableNotExistOption::Unspecified) {
        TableNotExistOption::Create => IfMissing::Create,
        TableNotExistOption::Fail => IfMissing::Fail,
        TableNotExistOption::Unspecified => IfMissing::Create,
    };
    let if_exists = match TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified) {
        TableExistsOption::Fail => IfExists::Fail,
        TableExistsOption::Append | TableExistsOption::Unspecified => IfExists::Append,
        TableExistsOption::Replace => IfExists::Replace,
    };
    let ingest_id = header_id.or_else(|| cmd.options.get(INGEST_ID_OPTION).cloned());
    let name = match cmd.schema.as_deref() {
        None => cmd.table.clone(),
        Some(schema) => format!("{schema}.{}", cmd.table),
    };
    let done = write(ctx, &name, if_exists, if_missing, ingest_id, data).await?;
    Ok((done.rows + done.skipped_rows) as i64)
}

/// A plain DoPut to a table path: appends, creating the table on first use.
pub async fn path_put(ctx: &SessionContext, path: &[String], header_id: Option<String>, data: PeekableFlightDataStream) -> Result<Ingested> {
    let name = match path {
        [table] => table.clone(),
        [schema, table] => format!("{schema}.{table}"),
        _ => {
            return Err(PersonaError::InvalidArgument(format!(
                "DoPut path {path:?}: give the table as [\"events\"] or [\"public\", \"events\"]"
            )));
        }
    };
    write(ctx, &name, IfExists::Append, IfMissing::Create, header_id, data).await
}

async fn write(
    ctx: &SessionContext,
    name: &str,
    if_exists: IfExists,
    if_missing: IfMissing,
    ingest_id: Option<String>,
    data: PeekableFlightDataStream,
) -> Result<Ingested> {
    // `into_peekable`: the first message (descriptor and schema) was peeked to route the call
    // and must not be lost.
    let env = ctx
        .state()
        .config()
        .get_extension::<ProcedureEnv>()
        .ok_or_else(|| PersonaError::InvalidArgument("writes are not available in this session".into()))?;
    let entry = crate::lakehouse::resolve_among(&env.tables, &env.data_dir, name)?;
    if entry.schema == PERSONA_SCHEMA {
        return Err(PersonaError::PermissionDenied(format!("`{name}` is one of persona's own tables, which only persona writes")));
    }
    let request = IngestRequest { table: entry.table.clone(), display: entry.display_name(), if_exists, if_missing, ingest_id };

    let mut batches = FlightRecordBatchStream::new_from_flight_data(data.into_peekable().map_err(|s| FlightError::Tonic(Box::new(s))))
        .map_err(|e| PersonaError::InvalidArgument(format!("cannot read the ingest stream: {e}")));
    // The schema arrives before the first batch; a stream with no batch at all still has one.
    let first = batches.next().await.transpose()?;
    let schema = match (&first, batches.get_ref().schema()) {
        (Some(b), _) => b.schema(),
        (None, Some(s)) => s.clone(),
        (None, None) => return Err(PersonaError::InvalidArgument("the ingest stream carried no schema".into())),
    };
    let rest = futures::stream::iter(first.map(Ok)).chain(batches);
    stream::ingest(&request, &env.ingest, schema, Box::pin(rest)).await
}
