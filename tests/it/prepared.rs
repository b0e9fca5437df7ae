//! Prepared statements used the way JDBC and ADBC use them: prepare, bind, execute, close.
//! Expected values come from the same query with the value written as a literal.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::fixture::{TestServer, fetch, scalar};

fn one_string(value: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))]).unwrap()
}

const SPEND: &str = "SELECT count(*) AS lines FROM events WHERE customer_id = $1";

#[tokio::test]
async fn bound_parameter_selects_rows() {
    let server = TestServer::embedded().await;
    let expected = scalar(&server.query("SELECT count(*) FROM events WHERE customer_id = '17850'").await);
    assert_ne!(expected, "0");
    let mut client = server.client().await;
    let mut stmt = client.prepare(SPEND.into(), None).await.unwrap();
    assert_eq!(stmt.parameter_schema().unwrap().fields().len(), 1);
    assert_eq!(stmt.parameter_schema().unwrap().field(0).data_type(), &DataType::Utf8);
    assert_eq!(stmt.dataset_schema().unwrap().field(0).name(), "lines");
    stmt.set_parameters(one_string("17850")).unwrap();
    let info = stmt.execute().await.unwrap();
    assert_eq!(scalar(&fetch(&mut client, info).await), expected);
    stmt.close().await.unwrap();
}

#[tokio::test]
async fn jdbc_style_question_marks_bind_in_order() {
    let server = TestServer::embedded().await;
    let expected = scalar(&server.query("SELECT count(*) FROM events WHERE country = 'France' AND quantity > 10").await);
    let mut client = server.client().await;
    let mut stmt = client.prepare("SELECT count(*) FROM events WHERE country = ? AND quantity > ?".into(), None).await.unwrap();
    let params = stmt.parameter_schema().unwrap().clone();
    assert_eq!(params.fields().len(), 2);
    assert_eq!(params.field(1).data_type(), &DataType::Int32);
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("b", DataType::Int64, true)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec!["France"])), Arc::new(datafusion::arrow::array::Int64Array::from(vec![10]))],
    )
    .unwrap();
    stmt.set_parameters(batch).unwrap();
    let info = stmt.execute().await.unwrap();
    assert_eq!(scalar(&fetch(&mut client, info).await), expected);
}

#[tokio::test]
async fn statements_without_parameters_prepare_too() {
    // JDBC prepares every statement, parameters or not.
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let mut stmt = client.prepare("SELECT count(*) FROM profiles".into(), None).await.unwrap();
    assert_eq!(stmt.parameter_schema().unwrap().fields().len(), 0);
    let info = stmt.execute().await.unwrap();
    assert_eq!(scalar(&fetch(&mut client, info).await), "10000");
}

#[tokio::test]
async fn two_clients_preparing_the_same_sql_get_their_own_rows() {
    let server = TestServer::embedded().await;
    let customers = ["17850", "13085", "12347", "14911"];
    let mut expected = Vec::new();
    for c in customers {
        expected.push(scalar(&server.query(&format!("SELECT count(*) FROM events WHERE customer_id = '{c}'")).await));
    }
    assert!(expected.windows(2).any(|w| w[0] != w[1]), "pick customers with different counts");
    // Prepare everything first, then bind, then execute, interleaving the clients.
    let mut clients = Vec::new();
    let mut stmts = Vec::new();
    for _ in customers {
        let mut client = server.client().await;
        stmts.push(client.prepare(SPEND.into(), None).await.unwrap());
        clients.push(client);
    }
    for (stmt, c) in stmts.iter_mut().zip(customers) {
        stmt.set_parameters(one_string(c)).unwrap();
    }
    let mut infos = Vec::new();
    for stmt in stmts.iter_mut().rev() {
        infos.push(stmt.execute().await.unwrap());
    }
    infos.reverse();
    for ((client, info), want) in clients.iter_mut().zip(infos).zip(&expected) {
        assert_eq!(&scalar(&fetch(client, info).await), want);
    }
}

#[tokio::test]
async fn wrong_parameter_count_is_invalid_argument() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let mut stmt = client.prepare("SELECT count(*) FROM events WHERE country = $1 AND customer_id = $2".into(), None).await.unwrap();
    stmt.set_parameters(one_string("only one")).unwrap();
    let err = stmt.execute().await.unwrap_err().to_string();
    assert!(err.contains("invalid argument") && err.contains("2 parameter"), "{err}");
}

#[tokio::test]
async fn preparing_a_refused_statement_fails() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let err = client.prepare("DROP TABLE events".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("permission denied") && err.contains("DROP"), "{err}");
}
