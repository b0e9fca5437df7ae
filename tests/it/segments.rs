//! Segments and checks end to end on small Delta tables whose answers are worked out by hand:
//! runs across a data change (who entered, who exited), immutable versions, gating checks, the
//! audience rule, broken files, replay at recorded versions, and the same over Flight SQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use persona::config::{Config, location_url};
use persona::runs::checks::Status;
use persona::runs::segments;
use persona::runs::{Runs, Trigger};
use tonic::Code;

use crate::fixture::{TestServer, query_with, row_strings};

/// A project folder: Delta tables under `lake/`, definitions under `sql/`, persona's own
/// tables under `state/`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let p = Self { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(p.path().join("sql/segments")).unwrap();
        std::fs::create_dir_all(p.path().join("sql/checks")).unwrap();
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join("sql").join(relative);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Appends (customer_id, amount) rows to the Delta table `name` (created on first use).
    async fn append(&self, name: &str, rows: &[(&str, f64)]) {
        let dir = self.path().join("lake").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap();
        let url = location_url(&dir.to_string_lossy(), Path::new("")).unwrap();
        DeltaTable::try_from_url(url).await.unwrap().write(vec![batch]).with_save_mode(SaveMode::Append).await.unwrap();
    }

    /// A persona.toml serving the lake's tables, with `extra` appended.
    fn config(&self, tables: &[&str], extra: &str) -> Config {
        let mut toml = String::from("data_dir = \"state\"\nsql_dir = \"sql\"\n[tables]\n");
        for t in tables {
            toml.push_str(&format!("{t} = \"lake/{t}\"\n"));
        }
        toml.push_str(extra);
        Config::from_toml(&toml, self.path()).unwrap()
    }

    async fn runs(&self, config: &Config) -> Runs {
        let ctx = persona::server::open(config).await.unwrap();
        persona::server::runs(config, &ctx, Trigger::Cli)
    }
}

const BIG_SPENDERS: &str = "-- segment: big_spenders\n-- version: 1\n-- description: net spend over 100\n\
    SELECT customer_id, sum(amount) AS spend FROM orders GROUP BY customer_id HAVING sum(amount) > 100\n";

fn keys(members: &[(String, String)]) -> Vec<&str> {
    members.iter().map(|(k, _)| k.as_str()).collect()
}

#[tokio::test]
async fn runs_across_a_data_change_record_who_entered_and_exited() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0), ("b", 120.0), ("c", 30.0)]).await;
    p.file("segments/big_spenders.sql", BIG_SPENDERS);
    let config = p.config(&["orders"], "");
    let runs = p.runs(&config).await;

    let first = segments::run(&runs, "big_spenders").await.unwrap();
    // a (150) and b (120) spend over 100; c (30) does not.
    assert_eq!((first.status, first.run_number, first.members), ("published", 1, Some(2)));
    assert_eq!(keys(&first.entered), ["a", "b"]);
    assert_eq!(first.input_versions.get("public.orders"), Some(&0));

    // b refunds 150 (net -30), c buys for 200 (net 230): c enters, b exits, a stays.
    p.append("orders", &[("b", -150.0), ("c", 200.0)]).await;
    let second = segments::run(&runs, "big_spenders").await.unwrap();
    assert_eq!((second.run_number, second.members), (2, Some(2)));
    assert_eq!((keys(&second.entered), keys(&second.exited)), (vec!["c"], vec!["b"]));
    assert_eq!(second.input_versions.get("public.orders"), Some(&1));
    assert_eq!(second.entered[0].1, r#"{"spend":230.0}"#);

    let diff = segments::diff(&runs, "big_spenders", None, None).await.unwrap();
    assert_eq!((keys(&diff.entered), keys(&diff.exited), diff.stayed), (vec!["c"], vec!["b"], 1));

    // Run 1 replayed at the version it recorded (orders@0) gives its members again, although
    // the table has moved on.
    let replay = segments::replay(&runs, "big_spenders", "1").await.unwrap();
    assert!(replay.same(), "{replay:?}");
    assert_eq!(keys(&replay.members), ["a", "b"]);

    // Everything is in the run tables, served to SQL clients.
    let server = TestServer::from_config(&config).await;
    let recorded = server
        .query("SELECT run_number, version, status, members, entered, exited, input_versions FROM persona.segment_runs ORDER BY run_number")
        .await;
    assert_eq!(
        row_strings(&recorded),
        ["1|1|published|2|2|0|{\"public.orders\":0}", "2|1|published|2|1|1|{\"public.orders\":1}"]
    );
    let changes = server.query("SELECT run_number, customer_id, change FROM persona.segment_changes ORDER BY run_number, customer_id").await;
    assert_eq!(row_strings(&changes), ["1|a|entered", "1|b|entered", "2|b|exited", "2|c|entered"]);
    let members = server.query("SELECT customer_id FROM persona.segment_members WHERE run_number = 2 ORDER BY 1").await;
    assert_eq!(row_strings(&members), ["a", "c"]);
}

#[tokio::test]
async fn a_changed_body_under_a_recorded_version_is_refused() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0)]).await;
    let path = p.file("segments/big_spenders.sql", BIG_SPENDERS);
    let config = p.config(&["orders"], "");
    let runs = p.runs(&config).await;
    segments::run(&runs, "big_spenders").await.unwrap();
    // The same body again is fine: re-running a version is what schedules do.
    segments::run(&runs, "big_spenders").await.unwrap();

    std::fs::write(&path, BIG_SPENDERS.replace("> 100", "> 50")).unwrap();
    let err = segments::run(&runs, "big_spenders").await.unwrap_err().to_string();
    assert!(err.contains("version 1 was already run") && err.contains("bump `-- version:` to 2"), "{err}");
    assert!(err.contains("big_spenders.sql"), "{err}");

    std::fs::write(&path, BIG_SPENDERS.replace("> 100", "> 50").replace("version: 1", "version: 2")).unwrap();
    let bumped = segments::run(&runs, "big_spenders").await.unwrap();
    assert_eq!((bumped.version, bumped.run_number, bumped.status), (2, 3, "published"));
}

#[tokio::test]
async fn a_failing_error_check_blocks_publication_and_a_warning_does_not() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0), ("b", -5.0), ("", 10.0)]).await;
    p.file(
        "checks/orders_no_negative.sql",
        "-- check: orders_no_negative\n-- version: 1\n-- severity: warn\nSELECT * FROM orders WHERE amount < 0\n",
    );
    p.file(
        "checks/orders_have_customers.sql",
        "-- check: orders_have_customers\n-- version: 1\n-- severity: error\nSELECT * FROM orders WHERE customer_id = ''\n",
    );
    p.file("segments/big_spenders.sql", &BIG_SPENDERS.replace("-- description", "-- requires: orders_no_negative\n-- description"));
    p.file(
        "segments/gated.sql",
        "-- segment: gated\n-- version: 1\n-- requires: orders_have_customers, orders_no_negative\nSELECT DISTINCT customer_id FROM orders\n",
    );
    let config = p.config(&["orders"], "");
    let runs = p.runs(&config).await;

    let warned = segments::run(&runs, "big_spenders").await.unwrap();
    assert_eq!(warned.status, "published");
    assert_eq!(warned.checks[0].status, Status::Warn);

    let blocked = segments::run(&runs, "gated").await.unwrap();
    assert_eq!((blocked.status, blocked.members), ("blocked", None));
    let message = blocked.message.unwrap();
    assert!(message.contains("`orders_have_customers` (fail: 1 failing row)"), "{message}");

    let server = TestServer::from_config(&config).await;
    let runs_table = server.query("SELECT segment, status FROM persona.segment_runs ORDER BY segment").await;
    assert_eq!(row_strings(&runs_table), ["big_spenders|published", "gated|blocked"]);
    // The blocked run published no members.
    let members = server.query("SELECT DISTINCT segment FROM persona.segment_members").await;
    assert_eq!(row_strings(&members), ["big_spenders"]);
    // The gate's check results are recorded against the segment run, with a sample row.
    let gate = server
        .query("SELECT c.\"check\", c.status FROM persona.check_runs c JOIN persona.segment_runs s ON c.segment_run_id = s.run_id WHERE s.segment = 'gated' ORDER BY 1")
        .await;
    assert_eq!(row_strings(&gate), ["orders_have_customers|fail", "orders_no_negative|warn"]);
    let sample = server.query("SELECT row FROM persona.check_failures WHERE \"check\" = 'orders_have_customers' LIMIT 1").await;
    assert_eq!(row_strings(&sample), [r#"{"amount":10.0,"customer_id":""}"#]);
}

#[tokio::test]
async fn the_audience_rule_applies_to_every_segment() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0), ("b", 120.0), ("c", 300.0), ("d", 500.0)]).await;
    // Consent for a, b, d; d is on the suppression list.
    p.append("consent", &[("a", 1.0), ("b", 1.0), ("d", 1.0)]).await;
    p.append("suppression", &[("d", 0.0)]).await;
    p.file("segments/big_spenders.sql", BIG_SPENDERS);
    let rule = "[audience]\nallow = \"SELECT customer_id FROM consent\"\nsuppress = [\"SELECT customer_id FROM suppression\"]\n";
    let config = p.config(&["orders", "consent", "suppression"], rule);
    let runs = p.runs(&config).await;

    let preview = segments::preview(&runs, "big_spenders").await.unwrap();
    // All four spend over 100; c has no consent and d is suppressed.
    assert_eq!((preview.evaluated.rows, preview.evaluated.suppressed), (4, 2));
    assert_eq!(keys(&preview.evaluated.members), ["a", "b"]);
    let last = preview.steps.last().unwrap();
    assert_eq!((last.members, last.removed), (2, 2));

    let run = segments::run(&runs, "big_spenders").await.unwrap();
    assert_eq!((run.rows, run.suppressed, run.members), (Some(4), Some(2), Some(2)));
    // The rule's tables are pinned and recorded with the run.
    assert_eq!(run.input_versions.keys().collect::<Vec<_>>(), ["public.consent", "public.orders", "public.suppression"]);
}

#[tokio::test]
async fn preview_counts_what_each_condition_removes() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0), ("b", 20.0), ("c", 300.0), ("dd", 500.0), ("e", 5.0)]).await;
    p.file(
        "segments/picky.sql",
        "-- segment: picky\n-- version: 1\nSELECT customer_id, sum(amount) AS spend FROM orders\n\
         WHERE amount > 10 AND length(customer_id) = 1\nGROUP BY customer_id HAVING sum(amount) < 400\n",
    );
    let runs = p.runs(&p.config(&["orders"], "")).await;
    let preview = segments::preview(&runs, "picky").await.unwrap();
    // 5 customers; amount > 10 drops e; length = 1 drops dd; spend < 400 keeps a, b, c.
    assert_eq!(preview.unfiltered, Some(5));
    let steps: Vec<(&str, u64, u64)> = preview.steps.iter().map(|s| (s.condition.as_str(), s.members, s.removed)).collect();
    assert_eq!(steps, [("amount > 10", 4, 1), ("length(customer_id) = 1", 3, 1), ("sum(amount) < 400", 3, 0)]);
    // A preview writes nothing.
    assert!(!persona::store::exists(&runs.data_dir, "segment_runs"));
}

#[tokio::test]
async fn broken_files_are_named_with_their_line_and_the_others_still_run() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0)]).await;
    p.file("segments/big_spenders.sql", BIG_SPENDERS);
    p.file("segments/typo.sql", "-- segment: typo\n-- verison: 1\nSELECT 1 AS customer_id\n");
    p.file("segments/no_table.sql", "-- segment: no_table\n-- version: 1\n\nSELECT customer_id FROM order_lines\n");
    p.file("segments/no_key.sql", "-- segment: no_key\n-- version: 1\nSELECT amount FROM orders\n");
    p.file("segments/needs_ghost.sql", "-- segment: needs_ghost\n-- version: 1\n-- requires: ghost_check\nSELECT customer_id FROM orders\n");
    p.file("segments/misnamed.sql", "-- description: copied from another file\n-- segment: other_name\n-- version: 1\nSELECT customer_id FROM orders\n");
    p.file("checks/misnamed_check.sql", "-- check: orders_fine\n-- version: 1\nSELECT * FROM orders WHERE amount < 0\n");
    let runs = p.runs(&p.config(&["orders"], "")).await;

    let listed = segments::list(&runs).await.unwrap();
    let broken: Vec<(&str, &str)> = listed.iter().filter_map(|l| l.error.as_deref().map(|e| (l.name.as_str(), e))).collect();
    assert_eq!(broken.len(), 3, "{broken:?}");
    assert_eq!(broken[0].0, "misnamed", "{broken:?}");
    assert!(
        broken[0].1.ends_with("misnamed.sql:2: segment `other_name` is declared in misnamed.sql: the name must match the file name misnamed"),
        "{broken:?}"
    );
    assert!(broken[1].0 == "needs_ghost" && broken[1].1.ends_with("needs_ghost.sql:3: requires check `ghost_check`, that no file in checks/ defines"), "{broken:?}");
    assert!(broken[2].0 == "typo" && broken[2].1.contains("typo.sql:2: unknown header key `verison`"), "{broken:?}");
    // Neither name runs: the file's own name gives its error, the declared one is unknown.
    let err = segments::run(&runs, "misnamed").await.unwrap_err().to_string();
    assert!(err.contains("misnamed.sql:2:") && err.contains("the name must match the file name misnamed"), "{err}");
    let err = segments::run(&runs, "other_name").await.unwrap_err();
    assert!(matches!(err, persona::PersonaError::NotFound(_)), "{err}");
    // A misnamed check is reported by a run of all checks, with its file and line.
    let checks = persona::runs::checks::run(&runs, &[]).await.unwrap();
    let got: Vec<(&str, Status)> = checks.iter().map(|c| (c.name.as_str(), c.status)).collect();
    assert_eq!(got, [("misnamed_check", Status::Error)]);
    assert!(checks[0].message.contains("misnamed_check.sql:1: check `orders_fine` is declared in misnamed_check.sql: the name must match the file name misnamed_check"), "{}", checks[0].message);

    let err = segments::run(&runs, "no_table").await.unwrap_err().to_string();
    assert!(err.contains("no_table.sql:4:") && err.contains("public.order_lines"), "{err}");
    let failed = segments::run(&runs, "no_key").await.unwrap();
    assert_eq!(failed.status, "failed");
    assert!(failed.message.unwrap().contains("no_key.sql:3: the segment returns no `customer_id` column (it returns amount)"));
    let err = segments::run(&runs, "typo").await.unwrap_err().to_string();
    assert!(err.contains("typo.sql:2"), "{err}");
    // No such segment, and a segment that never ran, are told apart.
    let err = segments::diff(&runs, "nosuch", None, None).await.unwrap_err();
    assert!(matches!(err, persona::PersonaError::NotFound(_)), "{err}");
    let err = err.to_string();
    assert!(err.starts_with("not found: segment `nosuch` (no file in") && err.contains("known: big_spenders, no_key, no_table"), "{err}");
    let err = segments::replay(&runs, "big_spenders", "1").await.unwrap_err().to_string();
    assert!(err.contains("segment `big_spenders` has no recorded runs yet"), "{err}");
    assert_eq!(segments::run(&runs, "big_spenders").await.unwrap().status, "published");
}

#[tokio::test]
async fn builtin_checks_and_metric_thresholds() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0), ("a", 150.0), ("b", -5.0), ("c", 7.0)]).await;
    p.append("customers", &[("a", 0.0), ("b", 0.0)]).await;
    let check = |name: &str, body: &str| p.file(&format!("checks/{name}.sql"), &format!("-- check: {name}\n-- version: 1\n{body}"));
    check("orders_unique", "-- severity: warn\n-- kind: unique\n-- table: orders\n-- columns: customer_id, amount\n");
    check("orders_known_customers", "-- severity: error\n-- kind: relationships\n-- table: orders\n-- column: customer_id\n-- to: customers.customer_id\n");
    check("orders_count", "-- severity: error\n-- kind: row_count\n-- table: orders\n-- fail_if: < 5\n");
    check("orders_dupes", "-- severity: warn\n-- kind: duplicate_count\n-- table: orders\n-- columns: customer_id\n-- fail_if: > 1\n");
    check("orders_schema", "-- severity: error\n-- kind: schema\n-- table: orders\n-- columns: customer_id string, amount integer, placed_at timestamp\n");
    check("orders_total", "-- severity: warn\n-- fail_if_change: > 50%\nSELECT sum(amount) FROM orders\n");
    let runs = p.runs(&p.config(&["orders", "customers"], "")).await;

    let results = persona::runs::checks::run(&runs, &[]).await.unwrap();
    let got: Vec<(&str, Status, Option<u64>, Option<f64>)> =
        results.iter().map(|c| (c.name.as_str(), c.status, c.failing_rows, c.value)).collect();
    assert_eq!(
        got,
        [
            // c has no customer row: one failing value.
            ("orders_count", Status::Fail, None, Some(4.0)),
            ("orders_dupes", Status::Pass, None, Some(1.0)),
            ("orders_known_customers", Status::Fail, Some(1), None),
            // amount is a float, not an integer, and placed_at is missing.
            ("orders_schema", Status::Fail, Some(2), None),
            // First run: no baseline for the change.
            ("orders_total", Status::Pass, None, Some(302.0)),
            // (a, 150) twice.
            ("orders_unique", Status::Warn, Some(1), None),
        ]
    );
    let schema = &results.iter().find(|c| c.name == "orders_schema").unwrap().sample;
    assert_eq!(schema[0], r#"{"actual_type":"float","column_name":"amount","data_type":"Float64","expected_type":"integer"}"#);

    // Sum 302 -> 1302 is +331%: the relative threshold trips against the recorded 302.
    p.append("orders", &[("a", 1000.0)]).await;
    let again = persona::runs::checks::run(&runs, &["orders_total".to_string()]).await.unwrap();
    assert_eq!(again[0].status, Status::Warn, "{:?}", again[0]);
    assert!(again[0].message.contains("changed by 331.1% from 302"), "{}", again[0].message);
}

#[tokio::test]
async fn segments_and_checks_over_flight_sql() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0), ("b", 120.0), ("c", 30.0)]).await;
    p.file("segments/big_spenders.sql", BIG_SPENDERS);
    p.file("checks/orders_positive.sql", "-- check: orders_positive\n-- version: 1\n-- severity: error\nSELECT * FROM orders WHERE amount <= 0\n");
    p.file("checks/orders_small.sql", "-- check: orders_small\n-- version: 1\n-- severity: warn\nSELECT * FROM orders WHERE amount < 50\n");
    let users = "[[access.users]]\nname = \"crm\"\npassword = \"pw\"\naccess = \"write\"\n";
    let config = p.config(&["orders"], users);
    let server = TestServer::from_config(&config).await;

    // A reader may preview; the answer lists each condition with what it removes.
    let preview = server.query("CALL persona.preview_segment('big_spenders')").await;
    assert_eq!(row_strings(&preview), ["(no conditions)|3|", "sum(amount) > 100|2|1", "members|2|"]);
    assert_eq!(server.status_of("CALL persona.run_segment('big_spenders')").await.code(), Code::PermissionDenied);

    let mut crm = server.client_as("crm", "pw").await;
    let run = query_with(&mut crm, "CALL persona.run_segment('big_spenders')").await;
    assert_eq!(row_strings(&run), ["big_spenders|1|1|published|2|2|0|0|0|"]);
    p.append("orders", &[("c", 100.0)]).await;
    let run = query_with(&mut crm, "CALL persona.run_segment('big_spenders')").await;
    assert_eq!(row_strings(&run), ["big_spenders|1|2|published|3|1|0|0|1|"]);
    let entered = query_with(&mut crm, "SELECT customer_id FROM persona.segment_changes WHERE run_number = 2 AND change = 'entered'").await;
    assert_eq!(row_strings(&entered), ["c"]);

    let checks = query_with(&mut crm, "CALL persona.run_checks('orders_positive')").await;
    assert_eq!(row_strings(&checks), ["orders_positive|error|pass|0||"]);
    // Several checks: as an array literal (as the README writes it), ARRAY[...], make_array or
    // one argument each. Only c's 30 is under 50; no amount is <= 0.
    for call in [
        "CALL persona.run_checks(['orders_positive', 'orders_small'])",
        "CALL persona.run_checks(ARRAY['orders_positive', 'orders_small'])",
        "CALL persona.run_checks(make_array('orders_positive', 'orders_small'))",
        "CALL persona.run_checks('orders_positive', 'orders_small')",
    ] {
        let rows = row_strings(&query_with(&mut crm, call).await);
        let statuses: Vec<String> = rows.iter().map(|r| r.split('|').take(4).collect::<Vec<_>>().join("|")).collect();
        assert_eq!(statuses, ["orders_positive|error|pass|0", "orders_small|warn|warn|1"], "{call}: {rows:?}");
    }
    let recorded = query_with(&mut crm, "SELECT count(*) FROM persona.check_runs WHERE \"check\" = 'orders_small'").await;
    assert_eq!(row_strings(&recorded), ["4"]);
    let status = server.status_of_as("CALL persona.run_checks(['orders_positive', 'nope'])", ("crm", "pw")).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("not found: check `nope`") && status.message().contains("known: orders_positive, orders_small"), "{}", status.message());
    let status = server.status_of_as("CALL persona.run_checks([42])", ("crm", "pw")).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("such as 'events_not_in_future'"), "{}", status.message());
    let status = server.status_of("CALL persona.run_everything()").await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("not found: procedure `persona.run_everything`; available: persona.resolve()"), "{}", status.message());
    let status = server.status_of("CALL persona.preview_segment('nope')").await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("known: big_spenders"), "{}", status.message());
    let status = server.status_of("CALL persona.preview_segment(42)").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[test]
fn a_schedule_naming_an_unknown_definition_stops_start_up() {
    let p = Project::new();
    p.file("segments/big_spenders.sql", BIG_SPENDERS);
    p.file("checks/orders_positive.sql", "-- check: orders_positive\n-- version: 1\nSELECT * FROM orders WHERE amount <= 0\n");
    let sql = p.path().join("sql");
    let entry = |segments: &[&str], checks: &[&str]| persona::runs::schedule::ScheduleConfig {
        segments: segments.iter().map(|s| s.to_string()).collect(),
        checks: checks.iter().map(|s| s.to_string()).collect(),
        cron: Some("0 6 * * *".into()),
        on_new_version: false,
    };
    persona::runs::schedule::check_names(&sql, &[entry(&["big_spenders"], &["orders_positive"])]).unwrap();
    let err = persona::runs::schedule::check_names(&sql, &[entry(&["big_spenders"], &[]), entry(&["big_spender"], &[])]).unwrap_err();
    assert!(matches!(err, persona::PersonaError::Config(_)), "{err}");
    let err = err.to_string();
    assert!(err.contains("schedule[1]: not found: segment `big_spender`") && err.contains("known: big_spenders"), "{err}");
    let err = persona::runs::schedule::check_names(&sql, &[entry(&[], &["orders_postive"])]).unwrap_err().to_string();
    assert!(err.contains("schedule[0]: not found: check `orders_postive`") && err.contains("known: orders_positive"), "{err}");
    // No schedule, nothing to check (not even a sql folder).
    persona::runs::schedule::check_names(&p.path().join("nowhere"), &[]).unwrap();
}

#[tokio::test]
async fn a_new_input_version_triggers_a_scheduled_run() {
    let p = Project::new();
    p.append("orders", &[("a", 150.0)]).await;
    p.file("segments/big_spenders.sql", BIG_SPENDERS);
    let config = p.config(&["orders"], "[[schedule]]\nsegments = [\"big_spenders\"]\non_new_version = true\n");
    let runs = p.runs(&config).await;
    let scheduler = tokio::spawn(persona::runs::schedule::serve(runs.clone(), config.schedule.clone(), std::time::Duration::from_millis(50)));

    let runs_of = |runs: Runs| async move { persona::runs::record::segment_runs(&runs, "big_spenders").await.unwrap() };
    let wait_for = |n: usize| {
        let runs = runs.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let recorded = runs_of(runs.clone()).await;
                if recorded.len() >= n || std::time::Instant::now() > deadline {
                    return recorded;
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    // Never run before: the first tick runs it.
    let first = wait_for(1).await;
    assert_eq!((first.len(), first[0].trigger.as_str()), (1, "new_version"));
    p.append("orders", &[("b", 500.0)]).await;
    let second = wait_for(2).await;
    assert_eq!(second.len(), 2);
    assert_eq!((second[1].members, second[1].entered), (Some(2), Some(1)));
    // No new version, no new run: after ten more ticks there are still two runs.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    scheduler.abort();
    assert_eq!(runs_of(runs.clone()).await.len(), 2);
}
