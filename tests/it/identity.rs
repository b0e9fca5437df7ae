//! Identity resolution: accuracy on FEBRL with ground truth, stable master ids across runs, and
//! the identity tables served next to the events.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::DeltaTable;
use persona::config::{TableConfig, location_url};
use persona::identity::{Settings, febrl, job};

use crate::fixture::{TestServer, embedded_tables, query_with, row_strings, scalar, shared_data};

/// Floors held in CI. The README of the FEBRL folder gives the ground truth; rec_id is used only
/// for scoring.
#[tokio::test]
async fn febrl_accuracy_floors() {
    let dir = shared_data().join("febrl");
    for (task, floor) in [("febrl4", 0.999), ("febrl1", 0.995), ("febrl2", 0.997)] {
        let report = febrl::evaluate(&dir, febrl::task(task).unwrap(), &Settings::default()).await.unwrap();
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
    assert_eq!(persona_tables.len(), 4);
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
    // One golden record per person, from that person's profiles only: the values they share,
    // how many profiles and which sources.
    let server = TestServer::start_with(&tables, &job::existing_tables(data.path()).unwrap()).await;
    let golden = server
        .query(
            "SELECT master_customer_id, surname, date_of_birth, soc_sec_id, profile_count, array_to_string(sources, ',') \
             FROM persona.customers ORDER BY 1",
        )
        .await;
    assert_eq!(
        row_strings(&golden),
        vec!["M00000001|neumann|19151111|5304218|2|pos,webshop", "M00000002|painter|19161214|4066625|2|loyalty,webshop"]
    );
}

/// `source_customer_id|master_customer_id` rows of persona.identity_links, served over Flight SQL.
async fn links(tables: &[TableConfig], data: &std::path::Path) -> Vec<String> {
    let server = TestServer::start_with(tables, &job::existing_tables(data).unwrap()).await;
    row_strings(&server.query("SELECT source_customer_id, master_customer_id FROM persona.identity_links ORDER BY 1").await)
}

/// A Delta `profiles` table of `rows` (all columns text) under `dir`.
async fn profiles_table(dir: &std::path::Path, names: &[&str], rows: &[Vec<&str>]) -> TableConfig {
    let schema = Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>()));
    let columns = (0..names.len()).map(|c| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[c]))) as _).collect();
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let url = location_url(&dir.to_string_lossy(), std::path::Path::new("")).unwrap();
    DeltaTable::try_from_url(url.clone()).await.unwrap().write(vec![batch]).await.unwrap();
    TableConfig { name: "profiles".into(), url, storage_options: Default::default() }
}

/// Placeholders never pair profiles; a real shared value does.
#[tokio::test]
async fn blocked_values_never_pair_profiles() {
    let ctx = datafusion::prelude::SessionContext::new();
    persona_udfs::register_all(&ctx).unwrap();
    let names = ["email", "phone"];
    let rows = [
        ["test@test.com", "000 000 0000"],
        ["TEST@test.com", "0000000000"],
        ["N/A", "+44 20 7946 0000"],
        ["n/a", "0044 (0)20 7946-0000"],
        ["Ann.Lee+shop@gmail.com", ""],
        ["annlee@gmail.com", ""],
    ];
    let schema = Arc::new(Schema::new(names.map(|n| Field::new(n, DataType::Utf8, true)).to_vec()));
    let columns = (0..2).map(|c| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[c]))) as _).collect();
    ctx.register_batch("p", RecordBatch::try_new(schema, columns).unwrap()).unwrap();
    let profiles = persona::identity::profiles::load(ctx.table("p").await.unwrap(), &Settings::default(), None, &[]).await.unwrap();
    let pairs: Vec<(u32, u32)> = persona::identity::blocking::candidate_pairs(&profiles, false, 100, 10.0)
        .into_iter()
        .map(persona::identity::blocking::unpack)
        .collect();
    // Rows 2 and 3 share a real phone number (+442079460000, written two ways); rows 4 and 5 one Gmail mailbox.
    // The all-zero phones and the placeholder e-mails pair nobody.
    assert_eq!(pairs, vec![(2, 3), (4, 5)]);
    // A rule pairing more than `max_pairs_per_profile` per profile is too coarse and left out:
    // each rule here pairs 1 of 6 profiles (0.17 per profile).
    assert_eq!(persona::identity::blocking::candidate_pairs(&profiles, false, 100, 0.1), Vec::<u64>::new());
    assert_eq!(persona::identity::blocking::candidate_pairs(&profiles, false, 100, 0.2).len(), 2);
    // Only the rules whose columns exist are used; the others are reported as skipped.
    let rules: Vec<&str> = profiles.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rules, vec!["email", "phone"]);
    assert!(profiles.skipped.iter().any(|s| s.contains("soc_sec_id")), "{:?}", profiles.skipped);
}

/// Rules declared in persona.toml drive the run, and `CALL persona.resolve()` over Flight SQL
/// builds the identity tables the same server then serves.
#[tokio::test]
async fn declared_rules_and_resolve_from_the_server() {
    let lake = tempfile::tempdir().unwrap();
    let names = ["source", "source_customer_id", "given_name", "surname", "email"];
    let rows = vec![
        vec!["webshop", "w1", "Ann", "Lee", "ann.lee@example.com"],
        vec!["loyalty", "l1", "Anne", "Lee", "Ann.Lee@Example.com "],
        vec!["webshop", "w2", "Bob", "Stone", "bob@example.org"],
        vec!["pos", "p1", "Robert", "Stone", "rstone@example.net"],
    ];
    let table = profiles_table(&lake.path().join("profiles"), &names, &rows).await;
    let toml = format!(
        "data_dir = \"{data}\"\n[tables]\nprofiles = \"{loc}\"\n\
         [[access.users]]\nname = \"ops\"\npassword = \"pw\"\naccess = \"write\"\n\
         [identity]\nthreshold = 0.5\nprior = 0.1\n\
         [[identity.compare]]\nname = \"email\"\nsql = \"lower(trim(email))\"\nmethod = \"exact\"\nm = [0.9, 0.1]\nu = [0.01, 0.99]\n\
         [[identity.compare]]\nname = \"surname\"\nmethod = \"jaro_winkler\"\nm = [0.9, 0.05, 0.03, 0.02]\nu = [0.05, 0.05, 0.1, 0.8]\n\
         [[identity.block]]\nname = \"surname\"\nsql = \"lower(surname)\"\n",
        data = lake.path().join("state").display(),
        loc = table.url
    );
    let config = persona::config::Config::from_toml(&toml, lake.path()).unwrap();
    let server = TestServer::from_config(&config).await;

    // Nothing resolved yet: the identity tables are not there.
    assert_eq!(server.status_of("SELECT * FROM persona.identity_links").await.code(), tonic::Code::NotFound);
    // Resolving rewrites persona's tables: anonymous (read) clients may not, a writer may.
    assert_eq!(server.status_of("CALL persona.resolve()").await.code(), tonic::Code::PermissionDenied);
    let figures = query_with(&mut server.client_as("ops", "pw").await, "CALL persona.resolve()").await;
    assert_eq!(row_strings(&figures)[0].split('|').take(4).collect::<Vec<_>>(), vec!["4", "2", "1", "3"], "{figures:?}");
    // Blocking on surname pairs (w1, l1) and (w2, p1); both agree exactly on surname. With the
    // declared weights, Ann's pair (e-mails equal after lower(trim())) has odds
    // (0.1/0.9) * (0.9/0.01) * (0.9/0.05) = 180, probability 180/181; Bob's (e-mails differ)
    // (0.1/0.9) * (0.1/0.99) * (0.9/0.05) = 0.2020, probability 0.168, below 0.5. Only Ann's
    // profiles become one person. Ids go out in the order of each person's smallest
    // (source, id): loyalty/l1, pos/p1, webshop/w2.
    let links = server.query("SELECT source_customer_id, master_customer_id, rule FROM persona.identity_links ORDER BY 1").await;
    assert_eq!(row_strings(&links), vec!["l1|M00000001|surname", "p1|M00000002|singleton", "w1|M00000001|surname", "w2|M00000003|singleton"]);
    let pairs = server.query("SELECT source_customer_id_a, source_customer_id_b, rule, probability FROM persona.identity_pairs").await;
    let pair = row_strings(&pairs);
    assert_eq!(pair.len(), 1, "{pair:?}");
    let fields: Vec<&str> = pair[0].split('|').collect();
    // Profiles are read in (source, id) order, so the loyalty profile is the pair's first side.
    assert_eq!(fields[..3], ["l1", "w1", "surname"]);
    assert!((fields[3].parse::<f64>().unwrap() - 180.0 / 181.0).abs() < 1e-9, "{pair:?}");

    // A declared rule the profiles cannot answer is an error naming it.
    let bad = persona::config::Config::from_toml(
        &format!("{toml}[[identity.block]]\nname = \"dob\"\nsql = \"date_of_birth\"\n"),
        lake.path(),
    )
    .unwrap();
    let ctx = persona::server::open(&bad).await.unwrap();
    let err = job::run(&ctx, &bad.data_dir, &bad.identity).await.unwrap_err().to_string();
    assert!(err.contains("identity rule `dob`"), "{err}");
    assert_eq!(server.status_of("CALL persona.nope()").await.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn the_order_rows_arrive_in_changes_no_id() {
    // The embedded profiles, written once in their order and then rewritten reversed (same
    // rows, another file layout): a resolution must not depend on the order it reads them.
    let ctx = session(embedded_tables(), &[]).await;
    let mut rows: Vec<RecordBatch> = ctx.sql("SELECT * FROM profiles").await.unwrap().collect().await.unwrap();
    let lake = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = lake.path().join("profiles");
    std::fs::create_dir_all(&dir).unwrap();
    let url = location_url(&dir.to_string_lossy(), std::path::Path::new("")).unwrap();
    let table = TableConfig { name: "profiles".into(), url: url.clone(), storage_options: Default::default() };
    DeltaTable::try_from_url(url.clone()).await.unwrap().write(rows.clone()).await.unwrap();
    let first = job::run(&session(std::slice::from_ref(&table), &[]).await, data.path(), &Settings::default()).await.unwrap();

    rows.reverse();
    let reversed: Vec<RecordBatch> = rows
        .iter()
        .map(|b| {
            let idx = datafusion::arrow::array::UInt32Array::from_iter_values((0..b.num_rows() as u32).rev());
            datafusion::arrow::compute::take_record_batch(b, &idx).unwrap()
        })
        .collect();
    DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .write(reversed)
        .with_save_mode(deltalake::protocol::SaveMode::Overwrite)
        .await
        .unwrap();
    let second = job::run(&session(std::slice::from_ref(&table), &[]).await, data.path(), &Settings::default()).await.unwrap();
    assert_eq!((second.links, second.master_ids), (first.links, first.master_ids));
    assert_eq!((second.new_ids, second.aliases), (0, 0));
}
