//! Shared test fixture: the embedded lakehouse built once per test run, and a Flight SQL server
//! per test over any set of tables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::{FlightDescriptor, FlightInfo};
use datafusion::arrow::array::RecordBatch;
use futures::TryStreamExt;
use persona::config::TableConfig;
use persona::flight::BoundServer;
use prost::Message;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// The embedded default lakehouse, materialized once into a temporary folder that lives as
/// long as the test process.
pub fn embedded_tables() -> &'static [TableConfig] {
    static TABLES: OnceLock<(tempfile::TempDir, Vec<TableConfig>)> = OnceLock::new();
    &TABLES
        .get_or_init(|| {
            // Its own thread and runtime: the caller may already be inside a test's runtime.
            std::thread::spawn(|| {
                let dir = tempfile::tempdir().expect("temp dir");
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                let tables = rt.block_on(persona::embedded::materialize(dir.path())).expect("materialize embedded lakehouse");
                (dir, tables)
            })
            .join()
            .expect("materialize thread")
        })
        .1
}

pub fn shared_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(tables: &[TableConfig]) -> Self {
        Self::try_start(tables).await.expect("start server")
    }

    /// A server over user tables and persona's own tables.
    pub async fn start_with(tables: &[TableConfig], persona_tables: &[TableConfig]) -> Self {
        Self::try_start_with(tables, persona_tables).await.expect("start server")
    }

    /// A server over `tables` deciding who may do what with `auth`.
    pub async fn start_with_access(tables: &[TableConfig], auth: persona::access::Authenticator) -> Self {
        let catalog = persona::catalog::build(tables, &[]).await.expect("catalog");
        Self::serve_with(persona::session::build(catalog, &Default::default()).expect("session"), auth).await.expect("serve")
    }

    /// Starts a server unless a table cannot be opened.
    pub async fn try_start(tables: &[TableConfig]) -> persona::Result<Self> {
        Self::try_start_with(tables, &[]).await
    }

    async fn try_start_with(tables: &[TableConfig], persona_tables: &[TableConfig]) -> persona::Result<Self> {
        let catalog = persona::catalog::build(tables, persona_tables).await?;
        Self::serve(persona::session::build(catalog, &Default::default())?).await
    }

    /// A server opened exactly as `persona serve` opens one: procedures, identity settings and
    /// persona's own tables included.
    pub async fn from_config(config: &persona::config::Config) -> Self {
        let ctx = persona::server::open(config).await.expect("open");
        let auth = persona::access::Authenticator::new(&config.access).expect("access rules");
        Self::serve_with(ctx, auth).await.expect("serve")
    }

    async fn serve(ctx: datafusion::prelude::SessionContext) -> persona::Result<Self> {
        Self::serve_with(ctx, Default::default()).await
    }

    async fn serve_with(ctx: datafusion::prelude::SessionContext, auth: persona::access::Authenticator) -> persona::Result<Self> {
        let bound = BoundServer::bind("127.0.0.1:0".parse().unwrap(), Arc::new(ctx)).await.expect("bind").with_access(auth);
        let addr = bound.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(bound.run_until(async move {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop: Some(stop) })
    }

    pub async fn embedded() -> Self {
        Self::start(embedded_tables()).await
    }

    pub async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.expect("connect");
        FlightSqlServiceClient::new(channel)
    }

    /// A client that has authenticated as `user` with a Handshake and holds its bearer token.
    pub async fn client_as(&self, user: &str, password: &str) -> FlightSqlServiceClient<Channel> {
        let mut client = self.client().await;
        client.handshake(user, password).await.unwrap_or_else(|e| panic!("handshake as {user}: {e}"));
        client
    }

    /// Runs a statement query and collects every batch of every endpoint.
    pub async fn query(&self, sql: &str) -> Vec<RecordBatch> {
        query_with(&mut self.client().await, sql).await
    }

    /// The gRPC status GetFlightInfo answers for a statement (the raw client keeps the code).
    pub async fn status_of(&self, sql: &str) -> tonic::Status {
        Self::status_with(&mut self.client().await, sql).await
    }

    /// Like [`status_of`](Self::status_of), for a user authenticated by Handshake.
    pub async fn status_of_as(&self, sql: &str, (user, password): (&str, &str)) -> tonic::Status {
        Self::status_with(&mut self.client_as(user, password).await, sql).await
    }

    async fn status_with(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> tonic::Status {
        let cmd = CommandStatementQuery { query: sql.to_string(), transaction_id: None };
        let mut request = tonic::Request::new(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()));
        if let Some(token) = client.token() {
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        match client.inner_mut().get_flight_info(request).await {
            Ok(_) => panic!("expected `{sql}` to fail"),
            Err(status) => status,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs a statement query with `client` and collects every batch.
pub async fn query_with(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    fetch(client, info).await
}

pub async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        out.extend(stream.try_collect::<Vec<_>>().await.expect("stream"));
    }
    out
}

/// The single value of a one-row, one-column result, formatted as text.
pub fn scalar(batches: &[RecordBatch]) -> String {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 1, "expected one row");
    let batch = batches.iter().find(|b| b.num_rows() == 1).unwrap();
    datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0).unwrap()
}

pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// Every row as `a|b|c` text, in result order.
pub fn row_strings(batches: &[RecordBatch]) -> Vec<String> {
    use datafusion::arrow::util::display::array_value_to_string;
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b.columns().iter().map(|c| array_value_to_string(c, r).unwrap()).collect();
            out.push(cells.join("|"));
        }
    }
    out
}

/// A configuration whose data folder is `dir` (plus any extra `persona.toml` text).
pub fn config_in(dir: &std::path::Path, extra: &str) -> persona::config::Config {
    persona::config::Config::from_toml(&format!("data_dir = {:?}\n{extra}", dir.display().to_string()), dir).expect("config")
}

/// A load request with the defaults of `persona load TABLE FILES...` (progress off).
pub fn load_request(table: &str, inputs: &[&str]) -> persona::ingest::LoadRequest {
    persona::ingest::LoadRequest {
        table: table.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        format: None,
        mode: persona::ingest::Mode::Append,
        partition_by: Vec::new(),
        allow_new_columns: false,
        max_rejects: None,
        rejects_path: None,
        quiet: true,
    }
}

pub async fn load(config: &persona::config::Config, table: &str, inputs: &[&str]) -> persona::ingest::LoadReport {
    persona::ingest::load(config, &load_request(table, inputs)).await.unwrap_or_else(|e| panic!("load {table}: {e}"))
}

impl TestServer {
    /// A server over the configured tables and every table under the data folder, as
    /// `persona serve` with a `persona.toml` would serve them (without the embedded data).
    pub async fn over(config: &persona::config::Config) -> Self {
        let folders = persona::catalog::Folders {
            user: Some(persona::lakehouse::user_folder(&config.data_dir)),
            persona: Some(persona::lakehouse::persona_folder(&config.data_dir)),
        };
        persona::lakehouse::register_object_stores();
        let catalog = persona::catalog::build_watching(&config.tables, &[], &folders).await.expect("catalog");
        Self::serve(persona::session::build(catalog, &Default::default()).expect("session")).await.expect("serve")
    }
}

/// The Online Retail monthly CSV files (`online_retail_YYYY-MM.csv.gz`, 541,909 rows in all).
pub fn retail_csvs() -> Vec<PathBuf> {
    let dir = shared_data().join("online-retail/csv");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("online-retail/csv")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("online_retail_2"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 13);
    files
}

/// Data records of a gzip CSV file, counted here with the csv crate, independently of persona.
pub fn csv_gz_records(path: &std::path::Path, keep: impl Fn(&csv::StringRecord) -> bool) -> usize {
    let reader = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap());
    csv::Reader::from_reader(reader).records().map(|r| r.unwrap()).filter(|r| keep(r)).count()
}
