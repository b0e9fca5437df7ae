//! Who may do what: credentials by Handshake (Basic -> bearer token) or a fixed token, anonymous
//! access switched off, and the codes a refused caller gets.

use arrow_flight::sql::SqlInfo;
use datafusion::arrow::array::AsArray;
use tonic::Code;

use crate::fixture::{TestServer, embedded_tables, fetch, query_with, scalar};

async fn guarded() -> TestServer {
    let toml = "[access]\nanonymous = \"none\"\n\
                [[access.users]]\nname = \"analyst\"\npassword = \"correct horse\"\naccess = \"read\"\n\
                [[access.users]]\nname = \"etl\"\ntoken = \"etl-token-1\"\naccess = \"write\"\n";
    let config = persona::config::Config::from_toml(toml, std::path::Path::new("/")).unwrap();
    let auth = persona::access::Authenticator::new(&config.access).unwrap();
    TestServer::start_with_access(embedded_tables(), auth).await
}

#[tokio::test]
async fn without_credentials_nothing_is_served() {
    let server = guarded().await;
    let status = server.status_of("SELECT 1").await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("requires credentials"), "{}", status.message());
    // Metadata too: a BI tool browsing the catalog must authenticate first.
    let mut client = server.client().await;
    let err = client.get_catalogs().await.unwrap_err().to_string();
    assert!(err.contains("requires credentials"), "{err}");
}

#[tokio::test]
async fn handshake_issues_a_token_the_client_then_uses() {
    let server = guarded().await;
    let mut client = server.client_as("analyst", "correct horse").await;
    let rows = query_with(&mut client, "SELECT count(*) FROM events").await;
    // The two-year Online Retail stream (shared data README): 1,044,847 invoice lines.
    assert_eq!(scalar(&rows), "1044847");

    let mut wrong = server.client().await;
    let err = wrong.handshake("analyst", "incorrect horse").await.unwrap_err().to_string();
    assert!(err.contains("wrong user name or password"), "{err}");
}

#[tokio::test]
async fn fixed_tokens_and_access_levels() {
    let server = guarded().await;
    // A script with a configured token sends it as a bearer token on every call.
    let mut etl = server.client().await;
    etl.set_header("authorization", "Bearer etl-token-1");
    assert_eq!(scalar(&query_with(&mut etl, "SELECT 40 + 2").await), "42");
    let mut forged = server.client().await;
    forged.set_header("authorization", "Bearer etl-token-2");
    let err = forged.execute("SELECT 1".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("unknown or expired bearer token"), "{err}");

    // A reader may not run what writes; the refusal says who has which access.
    let mut analyst = server.client_as("analyst", "correct horse").await;
    let err = analyst.execute("CALL persona.resolve()".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("needs write access"), "{err}");

    // With a writer declared, the server no longer calls itself read-only.
    let info = analyst.get_sql_info(vec![SqlInfo::FlightSqlServerReadOnly]).await.unwrap();
    let batches = fetch(&mut analyst, info).await;
    let value = batches[0].column(1).as_union().value(0);
    assert!(!value.as_boolean().value(0), "FlightSqlServerReadOnly should be false");
}

#[tokio::test]
async fn default_rules_keep_anonymous_clients_read_only() {
    let server = TestServer::embedded().await;
    assert_eq!(scalar(&server.query("SELECT 1").await), "1");
    let status = server.status_of("CALL persona.resolve()").await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("needs write access"), "{}", status.message());
}

#[tokio::test]
async fn statements_refused_for_everyone_say_so_to_a_writer() {
    let server = guarded().await;
    let mut etl = server.client().await;
    etl.set_header("authorization", "Bearer etl-token-1");
    for (sql, what) in [("CREATE TABLE t AS SELECT 1", "CREATE TABLE"), ("DROP TABLE events", "DROP"), ("SET datafusion.execution.batch_size = 1", "SET")] {
        let err = etl.execute(sql.into(), None).await.unwrap_err().to_string();
        assert!(err.contains("PermissionDenied") || err.contains("permission denied"), "{sql}: {err}");
        assert!(err.contains(&format!("{what} is not allowed over Flight SQL, whatever the user's access")), "{sql}: {err}");
        assert!(err.contains("writes go through INSERT, UPDATE, DELETE, MERGE and bulk ingest"), "{sql}: {err}");
        assert!(!err.contains("read-only"), "a writer is not told it is read-only: {err}");
    }
}
