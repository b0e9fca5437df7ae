//! Identity resolution: accuracy on FEBRL with ground truth, stable master ids across runs, and
//! the identity tables served next to the events.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::DeltaTable;
use persona::config::{TableConfig, location_url};
use persona::identity::{Settings, febrl, job};

use crate::fixture::{TestServer, embedded_tables, row_strings, scalar, shared_data};

/// Floors held in CI. The README of the FEBRL folder gives the ground truth; rec_id is used only
/// for scoring.
#[test]
fn febrl_accuracy_floors() {
    let dir = shared_data().join("febrl");
    let threshold = Settings::default().threshold;
    for (task, floor) in [("febrl4", 0.999), ("febrl1", 0.995), ("febrl2", 0.997)] {
        let report = febrl::evaluate(&dir, febrl::task(task).unwrap(), threshold).unwrap();
        eprintln!("{report}");
        assert!(report.f1 >= floor, "{report}");
    }
}

async fn session(tables: &[TableConfig], persona_tables: &[TableConfig]) -> datafusion::prelude::SessionContext {
    let catalog = persona::catalog::build(tables, persona_tables).await.unwrap();
    persona::session::build(catalog, &Default::default()).unwrap()
}

#[tokio::test]
async fn rerunning_on_unchanged_profiles_changes_no_id() {
    let data = tempfile::tempdir().unwrap();
    let ctx = session(embedded_tables(), &[]).await;
    let first = job::run(&ctx, data.path(), &Settings::default()).await.unwrap();
    assert_eq!(first.profiles, 10_000);
    assert_eq!(first.new_ids, first.master_ids);
    let second = job::run(&ctx, data.path(), &Settings::default()).await.unwrap();
    assert_eq!((second.new_ids, second.aliases, second.master_ids), (0, 0, first.master_ids));

    // Served beside the events: a client joins purchases to golden records.
    let persona_tables = job::existing_tables(data.path()).unwrap();
    assert_eq!(persona_tables.len(), 3);
    let server = TestServer::start_with(embedded_tables(), &persona_tables).await;
    let joined = server
        .query(
            "SELECT count(DISTINCT c.master_customer_id) FROM events e \
             JOIN persona.identity_links l ON l.source = 'webshop' AND l.source_customer_id = e.customer_id \
             JOIN persona.customers c ON c.master_customer_id = l.master_customer_id",
        )
        .await;
    let webshop_masters = server
        .query("SELECT count(DISTINCT master_customer_id) FROM persona.identity_links WHERE source = 'webshop'")
        .await;
    assert_eq!(scalar(&joined), scalar(&webshop_masters));
    // FEBRL4 holds one web-shop and one point-of-sale record per person: nearly every golden
    // record merges exactly two profiles.
    let pairs = server.query("SELECT count(*) FROM persona.customers WHERE profile_count = 2").await;
    assert!(scalar(&pairs).parse::<usize>().unwrap() >= 4_950, "{}", scalar(&pairs));
}

fn profiles_batch(rows: &[[&str; 6]]) -> RecordBatch {
    let names = ["source", "source_customer_id", "given_name", "surname", "date_of_birth", "soc_sec_id"];
    let schema = Arc::new(Schema::new(names.map(|n| Field::new(n, DataType::Utf8, true)).to_vec()));
    let columns = (0..6).map(|c| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[c]))) as _).collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

#[tokio::test]
async fn new_records_join_their_person_and_keep_its_id() {
    let lake = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = lake.path().join("profiles");
    std::fs::create_dir_all(&dir).unwrap();
    let url = location_url(&dir.to_string_lossy(), std::path::Path::new("")).unwrap();
    let append = |rows: Vec<[&'static str; 6]>| {
        let url = url.clone();
        async move { DeltaTable::try_from_url(url).await.unwrap().write(vec![profiles_batch(&rows)]).await.unwrap() }
    };
    // FEBRL4 entity 1070 in the web shop and, misspelt, at the till; entity 1016 in the web shop.
    append(vec![
        ["webshop", "w1", "michaela", "neumann", "19151111", "5304218"],
        ["pos", "p1", "michafla", "neumann", "19151111", "5304218"],
        ["webshop", "w2", "courtney", "painter", "19161214", "4066625"],
    ])
    .await;
    let tables = [TableConfig { name: "profiles".into(), url: url.clone(), storage_options: Default::default() }];
    let ctx = session(&tables, &[]).await;
    let settings = Settings::default();
    job::run(&ctx, data.path(), &settings).await.unwrap();
    assert_eq!(links(&tables, data.path()).await, vec!["p1|M00000001", "w1|M00000001", "w2|M00000002"]);

    // The loyalty app sends Courtney under a typo: she keeps her id, nobody new appears.
    append(vec![["loyalty", "l1", "courtnee", "painter", "19161214", "4066625"]]).await;
    let run = job::run(&ctx, data.path(), &settings).await.unwrap();
    assert_eq!((run.new_ids, run.aliases), (0, 0));
    assert_eq!(
        links(&tables, data.path()).await,
        vec!["l1|M00000002", "p1|M00000001", "w1|M00000001", "w2|M00000002"]
    );
}

/// `source_customer_id|master_customer_id` rows of persona.identity_links, served over Flight SQL.
async fn links(tables: &[TableConfig], data: &std::path::Path) -> Vec<String> {
    let server = TestServer::start_with(tables, &job::existing_tables(data).unwrap()).await;
    row_strings(&server.query("SELECT source_customer_id, master_customer_id FROM persona.identity_links ORDER BY 1").await)
}
