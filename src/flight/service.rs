//! The Flight SQL service: plans in GetFlightInfo, streams in DoGet.
//!
//! The server keeps no per-client state: tickets and prepared-statement handles carry the SQL and
//! any bound values, DoGet plans the statement again and streams batches as DataFusion produces
//! them, so a large result is never held whole in memory.
//!
//! Binding parameters returns an updated handle (`DoPutPreparedStatementResult`), which clients
//! must use from then on: arrow-rs, the Go ADBC driver and the Java Flight SQL JDBC driver since
//! Arrow 15 do. A client that re-sends the original handle gets a clear "0 values bound" error.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt,
    SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::prelude::SessionContext;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::bound_dml;
use super::handle::Handle;
use super::ingest;
use super::metadata;
use super::params;
use super::wire::{to_wire, wire_schema};
use crate::error::{PersonaError, Result};
use crate::access::{Access, Authenticator, Caller};
use crate::query;

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

#[derive(Clone)]
pub struct PersonaFlightSql {
    ctx: Arc<SessionContext>,
    auth: Arc<Authenticator>,
    sql_info: Arc<SqlInfoData>,
    redeemed: Arc<std::sync::Mutex<Redeemed>>,
}

/// Ids of the run-once tickets already redeemed, the newest [`Redeemed::CAPACITY`] of them.
#[derive(Default)]
struct Redeemed {
    seen: std::collections::HashSet<u128>,
    order: std::collections::VecDeque<u128>,
}

impl Redeemed {
    /// A ticket is retried within moments; a million ids is 16 MB.
    const CAPACITY: usize = 1_000_000;

    /// Records `id`; false when it was already redeemed.
    fn redeem(&mut self, id: u128) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAPACITY {
            let oldest = self.order.pop_front().expect("not empty");
            self.seen.remove(&oldest);
        }
        true
    }
}

/// The caller the authentication interceptor attached to a request.
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("request reached the service without passing authentication"))
}

/// The caller's access, which must be at least `needed`.
fn access<T>(request: &Request<T>, needed: Access) -> Result<Access, Status> {
    Ok(caller(request)?.require(needed)?)
}

impl PersonaFlightSql {
    pub fn new(ctx: Arc<SessionContext>, auth: Arc<Authenticator>) -> Self {
        let sql_info = Arc::new(metadata::sql_info(!auth.allows_writes()));
        Self { ctx, auth, sql_info, redeemed: Arc::default() }
    }

    /// Whether the SQL changes data (DML or a CALL): such statements run once per ticket.
    fn changes_data(&self, sql: &str) -> bool {
        let statement = query::parse_one(&self.ctx.state(), sql);
        matches!(&statement, Ok(datafusion::sql::parser::Statement::Statement(s))
            if crate::dml::is_dml(s) || matches!(s.as_ref(), datafusion::sql::sqlparser::ast::Statement::Call(_)))
    }

    /// A run-once ticket may be redeemed once.
    fn redeem(&self, handle: &Handle) -> Result<(), Status> {
        match handle.once {
            Some(id) if !self.redeemed.lock().expect("redeemed lock").redeem(id) => Err(Status::failed_precondition(
                "this ticket already ran its statement: a ticket of INSERT, UPDATE, DELETE, MERGE or CALL runs once; \
                 execute the statement again to run it again",
            )),
            _ => Ok(()),
        }
    }

    /// Reads the parameter rows a client sent with a DoPut.
    async fn bound_rows(request: Request<PeekableFlightDataStream>) -> Result<Vec<RecordBatch>> {
        // A DoPut that binds nothing (arrow-flight's prepared executeUpdate after a bind) sends
        // only the descriptor, in a message with no Arrow data.
        let data = request.into_inner().try_filter(|d| std::future::ready(!d.data_header.is_empty()));
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(data.map_err(|status| FlightError::Tonic(Box::new(status))))
        .try_collect()
        .await
        .map_err(|e| PersonaError::InvalidArgument(format!("cannot read bound parameters: {e}")))
    }

    /// Plans a statement for a network client and returns its result schema as sent.
    async fn plan_schema(&self, handle: &Handle, access: Access) -> Result<SchemaRef> {
        let plan = self.plan(handle, access).await?;
        Ok(wire_schema(plan.schema().as_arrow()))
    }

    async fn plan(&self, handle: &Handle, access: Access) -> Result<datafusion::logical_expr::LogicalPlan> {
        if !handle.parameters.is_empty() && self.is_dml(&handle.sql) {
            // A write evaluates no parameters: its bound row goes in as literals.
            let rows = bound_dml::rows(&params::decode_batches(&handle.parameters)?)?;
            let [row] = rows.as_slice() else {
                return Err(PersonaError::InvalidArgument(format!(
                    "{} rows are bound: a prepared DML query runs one row; run several with an update (executeUpdate / executeBatch)",
                    rows.len()
                )));
            };
            let sql = bound_dml::substitute(&self.ctx.state(), &handle.sql, row)?;
            return Ok(query::plan_sql(&self.ctx, &sql, access).await?.plan);
        }
        let values = params::decode(&handle.parameters)?;
        let planned = query::plan_sql(&self.ctx, &handle.sql, access).await?;
        query::bind(planned, values)
    }

    /// INSERT, UPDATE, DELETE or MERGE. SQL that does not parse as it stands (time travel's
    /// `VERSION AS OF` is rewritten first) is no DML; planning reports what is wrong with it.
    fn is_dml(&self, sql: &str) -> bool {
        let statement = query::parse_one(&self.ctx.state(), sql);
        matches!(&statement, Ok(datafusion::sql::parser::Statement::Statement(s)) if crate::dml::is_dml(s))
    }

    /// Executes a statement and streams it as Flight data with the announced schema.
    async fn execute(&self, handle: &Handle, access: Access) -> Result<DoGetStream> {
        let plan = self.plan(handle, access).await?;
        let schema = wire_schema(plan.schema().as_arrow());
        let df = self.ctx.execute_logical_plan(plan).await?;
        let batches = df.execute_stream().await?;
        let target = schema.clone();
        let wired = batches.map(move |batch| {
            let batch = batch.map_err(|e| FlightError::Tonic(Box::new(Status::from(PersonaError::from(e)))))?;
            to_wire(&batch, &target).map_err(FlightError::Arrow)
        });
        Ok(encode(schema, wired))
    }

    fn flight_info(&self, schema: &Schema, ticket: impl ProstMessageExt, descriptor: FlightDescriptor) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(ticket.as_any().encode_to_vec());
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }
}

fn encode(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> DoGetStream {
    // Setting the schema makes the encoder send it even when no batch follows.
    let stream = FlightDataEncoderBuilder::new().with_schema(schema).build(batches).map_err(|e| match e {
        FlightError::Tonic(status) => *status,
        other => Status::internal(other.to_string()),
    });
    Box::pin(stream)
}

fn one_batch(batch: RecordBatch) -> DoGetStream {
    let schema = batch.schema();
    encode(schema, stream::iter([Ok(batch)]))
}

fn schema_bytes(schema: &Schema) -> Result<Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?;
    Ok(message.0)
}

fn needs_write(what: &str) -> Status {
    Status::from(PersonaError::PermissionDenied(format!(
        "{what} is not allowed without write access: network clients are read-only unless [access] in persona.toml grants them write"
    )))
}

/// The name a client gave its ingest stream, if any.
fn ingest_id<T>(request: &Request<T>) -> Option<String> {
    request.metadata().get(ingest::INGEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Rows a statement changed: a DML answer's `count`, or the rows of any other answer.
fn affected_rows(batches: &[RecordBatch]) -> i64 {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    match batches.first().and_then(|b| b.column_by_name("count")) {
        Some(count) if count.data_type() == &datafusion::arrow::datatypes::DataType::Int64 && !count.is_empty() => {
            count.as_primitive::<Int64Type>().value(0)
        }
        _ => batches.iter().map(|b| b.num_rows() as i64).sum(),
    }
}

/// The metadata key of credentials, in requests and in the Handshake answer.
pub const AUTHORIZATION: &str = "authorization";

/// Authenticates every call before it reaches the service: the caller goes into the request's
/// extensions, wrong credentials end the call as UNAUTHENTICATED here.
pub fn authenticate(auth: Arc<Authenticator>) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let header = match request.metadata().get(AUTHORIZATION) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| Status::unauthenticated("the authorization header is not text"))?),
        };
        let who = auth.authenticate(header)?;
        request.extensions_mut().insert(who);
        Ok(request)
    }
}

#[tonic::async_trait]
impl FlightSqlService for PersonaFlightSql {
    type FlightService = PersonaFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        // ADBC and JDBC send `Basic` credentials here and use the bearer token answered in the
        // `authorization` header from then on. Without credentials the handshake succeeds when
        // anonymous clients may connect, so clients that always handshake proceed.
        let who = caller(&request)?;
        who.require(Access::Read)?;
        let token = match (&who.user, who.by_password) {
            (Some(user), true) => Some(self.auth.issue(user)),
            _ => None,
        };
        let payload = token.clone().map(Bytes::from).unwrap_or_default();
        let response = HandshakeResponse { protocol_version: 0, payload };
        let mut answer = Response::new(Box::pin(stream::iter([Ok(response)])) as Pin<Box<dyn Stream<Item = _> + Send>>);
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().map_err(|_| Status::internal("token is not a valid header value"))?;
            answer.metadata_mut().insert(AUTHORIZATION, value);
        }
        Ok(answer)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let access = access(&request, Access::Read)?;
        let mut handle = Handle::new(query.query);
        let schema = self.plan_schema(&handle, access).await?;
        if self.changes_data(&handle.sql) {
            handle = handle.run_once();
        }
        let ticket = TicketStatementQuery { statement_handle: handle.encode() };
        self.flight_info(&schema, ticket, request.into_inner())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let access = access(&request, Access::Read)?;
        let mut handle = Handle::decode(&cmd.prepared_statement_handle)?;
        let schema = self.plan_schema(&handle, access).await?;
        if self.changes_data(&handle.sql) {
            handle = handle.run_once();
        }
        // The ticket carries the parameters so DoGet needs no server state.
        let ticket = CommandPreparedStatementQuery { prepared_statement_handle: handle.encode() };
        self.flight_info(&schema, ticket, request.into_inner())
    }

    async fn get_flight_info_catalogs(&self, q: CommandGetCatalogs, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        let schema = q.clone().into_builder().schema();
        self.flight_info(&schema, q, r.into_inner())
    }

    async fn get_flight_info_schemas(&self, q: CommandGetDbSchemas, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        let schema = q.clone().into_builder().schema();
        self.flight_info(&schema, q, r.into_inner())
    }

    async fn get_flight_info_tables(&self, q: CommandGetTables, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        let schema = q.clone().into_builder().schema();
        self.flight_info(&schema, q, r.into_inner())
    }

    async fn get_flight_info_table_types(&self, q: CommandGetTableTypes, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        let schema = q.clone().into_builder().schema();
        self.flight_info(&schema, q, r.into_inner())
    }

    async fn get_flight_info_sql_info(&self, q: CommandGetSqlInfo, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        let schema = q.clone().into_builder(&self.sql_info).schema();
        self.flight_info(&schema, q, r.into_inner())
    }

    async fn get_flight_info_xdbc_type_info(&self, q: CommandGetXdbcTypeInfo, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        let schema = q.clone().into_builder(&metadata::XDBC_TYPES).schema();
        self.flight_info(&schema, q, r.into_inner())
    }

    async fn get_flight_info_primary_keys(&self, q: CommandGetPrimaryKeys, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        self.flight_info(&metadata::primary_keys_schema(), q, r.into_inner())
    }

    async fn get_flight_info_exported_keys(&self, q: CommandGetExportedKeys, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        self.flight_info(&metadata::foreign_keys_schema(), q, r.into_inner())
    }

    async fn get_flight_info_imported_keys(&self, q: CommandGetImportedKeys, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        self.flight_info(&metadata::foreign_keys_schema(), q, r.into_inner())
    }

    async fn get_flight_info_cross_reference(&self, q: CommandGetCrossReference, r: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        access(&r, Access::Read)?;
        self.flight_info(&metadata::foreign_keys_schema(), q, r.into_inner())
    }

    async fn do_get_statement(&self, ticket: TicketStatementQuery, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        let access = access(&r, Access::Read)?;
        let handle = Handle::decode(&ticket.statement_handle)?;
        self.redeem(&handle)?;
        Ok(Response::new(self.execute(&handle, access).await?))
    }

    async fn do_get_prepared_statement(&self, cmd: CommandPreparedStatementQuery, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        let access = access(&r, Access::Read)?;
        let handle = Handle::decode(&cmd.prepared_statement_handle)?;
        self.redeem(&handle)?;
        Ok(Response::new(self.execute(&handle, access).await?))
    }

    async fn do_get_catalogs(&self, _q: CommandGetCatalogs, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(metadata::catalogs(&self.ctx)?)))
    }

    async fn do_get_schemas(&self, q: CommandGetDbSchemas, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(metadata::db_schemas(&self.ctx, q)?)))
    }

    async fn do_get_tables(&self, q: CommandGetTables, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(metadata::tables(&self.ctx, q).await?)))
    }

    async fn do_get_table_types(&self, _q: CommandGetTableTypes, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(metadata::table_types()?)))
    }

    async fn do_get_sql_info(&self, q: CommandGetSqlInfo, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        let batch = q.into_builder(&self.sql_info).build().map_err(PersonaError::from)?;
        Ok(Response::new(one_batch(batch)))
    }

    async fn do_get_xdbc_type_info(&self, q: CommandGetXdbcTypeInfo, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        let batch = q.into_builder(&metadata::XDBC_TYPES).build().map_err(PersonaError::from)?;
        Ok(Response::new(one_batch(batch)))
    }

    // persona declares no keys: Delta tables carry no primary or foreign key constraints.
    async fn do_get_primary_keys(&self, _q: CommandGetPrimaryKeys, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(RecordBatch::new_empty(metadata::primary_keys_schema()))))
    }

    async fn do_get_exported_keys(&self, _q: CommandGetExportedKeys, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(RecordBatch::new_empty(metadata::foreign_keys_schema()))))
    }

    async fn do_get_imported_keys(&self, _q: CommandGetImportedKeys, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(RecordBatch::new_empty(metadata::foreign_keys_schema()))))
    }

    async fn do_get_cross_reference(&self, _q: CommandGetCrossReference, r: Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        access(&r, Access::Read)?;
        Ok(Response::new(one_batch(RecordBatch::new_empty(metadata::foreign_keys_schema()))))
    }

    async fn do_put_statement_update(&self, cmd: CommandStatementUpdate, r: Request<PeekableFlightDataStream>) -> Result<i64, Status> {
        // JDBC's executeUpdate and ADBC's execute_update: DML for callers with write access
        // (query::plan_sql decides), answered with the number of rows it changed.
        let access = access(&r, Access::Read)?;
        // Only statements that change something: a query sent here would be collected whole.
        if !self.changes_data(&cmd.query) {
            return Err(Status::invalid_argument(
                "an update command takes INSERT, UPDATE, DELETE, MERGE or CALL; send queries as statement queries",
            ));
        }
        let handle = Handle::new(cmd.query);
        let plan = self.plan(&handle, access).await?;
        let batches = self.ctx.execute_logical_plan(plan).await.map_err(PersonaError::from)?.collect().await.map_err(PersonaError::from)?;
        Ok(affected_rows(&batches))
    }

    async fn do_put_statement_ingest(&self, cmd: CommandStatementIngest, r: Request<PeekableFlightDataStream>) -> Result<i64, Status> {
        access(&r, Access::Write).map_err(|s| if s.code() == tonic::Code::PermissionDenied { needs_write("bulk ingest") } else { s })?;
        let id = ingest_id(&r);
        Ok(ingest::statement_ingest(&self.ctx, cmd, id, r.into_inner()).await?)
    }

    async fn do_put_prepared_statement_update(&self, cmd: CommandPreparedStatementUpdate, r: Request<PeekableFlightDataStream>) -> Result<i64, Status> {
        // JDBC's PreparedStatement.executeUpdate / executeBatch: each bound row runs the
        // statement once (one commit each); the answer is the rows changed in all.
        let access = access(&r, Access::Read)?;
        let handle = Handle::decode(&cmd.prepared_statement_handle)?;
        if !self.is_dml(&handle.sql) {
            return Err(Status::invalid_argument(
                "a prepared update takes INSERT, UPDATE, DELETE or MERGE; execute queries as prepared queries",
            ));
        }
        let mut batches = Self::bound_rows(r).await?;
        if batches.iter().all(|b| b.num_rows() == 0) {
            // Bound earlier, with a DoPut of the prepared query: the rows are in the handle.
            batches = params::decode_batches(&handle.parameters)?;
        }
        let state = self.ctx.state();
        let mut rows = bound_dml::rows(&batches)?;
        let parameters = bound_dml::parameter_count(&state, &handle.sql)?;
        if rows.is_empty() {
            if parameters > 0 {
                return Err(Status::invalid_argument(format!("the statement has {parameters} parameter(s) and no row was bound")));
            }
            rows.push(Vec::new());
        }
        // Every row is checked before the first one runs, so a bad row writes nothing.
        let statements = rows.iter().map(|row| bound_dml::substitute(&state, &handle.sql, row)).collect::<Result<Vec<_>>>()?;
        let mut changed = 0;
        for (done, sql) in statements.iter().enumerate() {
            let run = async {
                let plan = query::plan_sql(&self.ctx, sql, access).await?.plan;
                Ok::<_, PersonaError>(self.ctx.execute_logical_plan(plan).await?.collect().await?)
            };
            match run.await {
                Ok(batches) => changed += affected_rows(&batches),
                // Each row is its own commit: say how far the batch got, so a retry can resume.
                Err(e) if done > 0 => {
                    let status = Status::from(e);
                    let message = format!("row {} of {} failed after {done} row(s) were committed: {}", done + 1, statements.len(), status.message());
                    return Err(Status::new(status.code(), message));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(changed)
    }

    async fn do_put_fallback(
        &self,
        mut request: Request<PeekableFlightDataStream>,
        message: arrow_flight::sql::Any,
    ) -> Result<Response<<Self as arrow_flight::flight_service_server::FlightService>::DoPutStream>, Status> {
        // A plain DoPut names its table by path: Arrow streams written by any Flight client.
        let descriptor = match request.get_mut().peek().await {
            Some(Ok(first)) => first.flight_descriptor.clone(),
            _ => None,
        };
        let Some(descriptor) = descriptor.filter(|d| d.r#type == arrow_flight::flight_descriptor::DescriptorType::Path as i32) else {
            return Err(Status::invalid_argument(format!(
                "DoPut with `{}`: send a Flight SQL command, or a PATH descriptor naming the table",
                message.type_url
            )));
        };
        access(&request, Access::Write).map_err(|s| if s.code() == tonic::Code::PermissionDenied { needs_write("DoPut") } else { s })?;
        let id = ingest_id(&request);
        let done = ingest::path_put(&self.ctx, &descriptor.path, id, request.into_inner()).await?;
        let summary = serde_json::json!({
            "rows": done.rows, "skipped_rows": done.skipped_rows, "commits": done.commits, "version": done.version,
        });
        let result = arrow_flight::PutResult { app_metadata: Bytes::from(summary.to_string()) };
        Ok(Response::new(Box::pin(stream::iter([Ok(result)]))))
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let access = access(&request, Access::Read)?;
        let handle = Handle::decode(&cmd.prepared_statement_handle)?;
        let batches = Self::bound_rows(request).await?;
        if self.is_dml(&handle.sql) {
            // Prepared DML may bind many rows (executeBatch); each must bind every parameter.
            let state = self.ctx.state();
            for row in bound_dml::rows(&batches)? {
                bound_dml::substitute(&state, &handle.sql, &row)?;
            }
            let updated = handle.with_parameters(params::encode_rows(&batches)?);
            return Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(updated.encode()) });
        }
        let ipc = params::encode(&batches)?;
        // Check now so a wrong count or type fails at bind time, where the client expects it.
        let updated = handle.with_parameters(ipc);
        self.plan(&updated, access).await?;
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(updated.encode()) })
    }

    async fn do_action_create_prepared_statement(
        &self,
        req: ActionCreatePreparedStatementRequest,
        r: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let access = access(&r, Access::Read)?;
        if self.is_dml(&req.query) {
            // Checked when a row is bound (with its values in place); until then, the statement's
            // answer and one text parameter per placeholder (bound values are cast as needed).
            let n = bound_dml::parameter_count(&self.ctx.state(), &req.query)?;
            let parameters = Schema::new((1..=n).map(|i| Field::new(format!("${i}"), DataType::Utf8, true)).collect::<Vec<_>>());
            return Ok(ActionCreatePreparedStatementResult {
                prepared_statement_handle: Handle::new(req.query).encode(),
                dataset_schema: schema_bytes(&crate::dml::result_schema())?,
                parameter_schema: schema_bytes(&parameters)?,
            });
        }
        let planned = query::plan_sql(&self.ctx, &req.query, access).await?;
        let dataset = wire_schema(planned.plan.schema().as_arrow());
        let handle = Handle::new(req.query);
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.encode(),
            dataset_schema: schema_bytes(&dataset)?,
            // Advertised in wire types: clients bind Utf8, and binding casts to what the plan reads.
            parameter_schema: schema_bytes(&wire_schema(&planned.parameters))?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        req: ActionClosePreparedStatementRequest,
        r: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        access(&r, Access::Read)?;
        // Handles hold everything they need, so the server has nothing to release; a handle it
        // never issued is still an error worth reporting.
        Handle::decode(&req.prepared_statement_handle)?;
        Ok(())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {
        // SQL info is fixed when the service is built (metadata::sql_info); nothing registers later.
    }
}
