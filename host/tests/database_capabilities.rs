//! The `redis` and `postgres` capabilities, built from an inline allow-list and called directly
//! against the local Redis and Postgres: denials before connecting, command and transaction
//! results, parameter conversions, and no transaction leaking back into the pool.

mod common;

use std::time::Duration;

use codexcontinue::capabilities::dial::Dialer;
use codexcontinue::capabilities::hosts::AllowedHosts;
use codexcontinue::capabilities::{PluginLabel, PostgresCapability, RedisCapability};
use codexcontinue::runtime::bindings::latest::memory::codexcontinue::plugin::postgres::{DbValue, PgError};
use codexcontinue::runtime::bindings::latest::memory::codexcontinue::plugin::redis::{
    Command, RedisError, RedisParameter, RedisResult,
};
use common::databases::{self, DATABASE_URL, REDIS_URL, unique};
use tokio::net::TcpListener;

const UUID: &str = "6f1c2a3e-1b2c-4d5e-8f90-123456789abc";
const TIME: &str = "2026-11-25T16:17:29.806Z";

fn dialer(allowed: &[&str]) -> Dialer {
    Dialer::new(PluginLabel { id: "db-test".into(), version: "0.1.0".into() }, AllowedHosts::parse(allowed).unwrap())
}

fn bin(s: &str) -> RedisParameter {
    RedisParameter::Binary(s.as_bytes().to_vec())
}

/// A listener standing in for a server the plugin is not allowed to reach; returns whether
/// anything connected to it within a moment.
async fn nobody_connects(listener: TcpListener) -> bool {
    tokio::time::timeout(Duration::from_millis(300), listener.accept()).await.is_err()
}

/// An address outside the allow-list is refused with a denial naming plugin and origin (never
/// the password), before any connection is made.
#[tokio::test]
async fn redis_refuses_addresses_outside_the_allow_list() {
    let redis = RedisCapability::new(dialer(&["redis://127.0.0.1:6379"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    for address in [
        format!("redis://:hunter2@127.0.0.1:{port}/0"),
        format!("redis://localhost:{port}"),
        "redis://10.1.2.3:6379".to_string(),
        "rediss://127.0.0.1:6379".to_string(),
    ] {
        let Err(RedisError::Denied(message)) = redis.open(&address).await else { panic!("{address} was not denied") };
        assert!(message.contains("db-test@0.1.0") && message.contains("allowed_hosts"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert!(nobody_connects(listener).await, "a denied address was connected to");
    assert!(matches!(redis.open("http://127.0.0.1:6379").await, Err(RedisError::Other(_))));
}

/// Commands run with binary and integer arguments, nested replies come back flat, a transaction
/// applies all its commands atomically, and connection-state commands are refused.
#[tokio::test]
async fn redis_commands_and_transactions() {
    let prefix = unique("cap");
    let redis = RedisCapability::new(dialer(&["redis://127.0.0.1:6379"]));
    let mut c = redis.open(REDIS_URL).await.unwrap();
    let key = format!("{prefix}:h");
    assert_eq!(
        c.execute("hset", vec![bin(&key), bin("a"), bin("1"), bin("b"), bin("2")]).await.unwrap(),
        [RedisResult::Int64(2)]
    );
    let mut all = c.execute("HGETALL", vec![bin(&key)]).await.unwrap();
    all.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(c.execute("GET", vec![bin(&format!("{prefix}:none"))]).await.unwrap(), [RedisResult::Nil]);
    assert_eq!(c.execute("PING", vec![]).await.unwrap(), [RedisResult::Status("PONG".into())]);

    let counter = format!("{prefix}:n");
    let replies = c
        .transaction(vec![
            Command { name: "INCRBY".into(), arguments: vec![bin(&counter), RedisParameter::Int64(5)] },
            Command { name: "INCRBY".into(), arguments: vec![bin(&counter), RedisParameter::Int64(-2)] },
            Command {
                name: "LRANGE".into(),
                arguments: vec![bin(&key), RedisParameter::Int64(0), RedisParameter::Int64(-1)],
            },
        ])
        .await;
    // LRANGE on a hash fails inside EXEC; the error is reported, and Redis still applied the rest.
    assert!(matches!(replies, Err(RedisError::Command(_))), "{replies:?}");
    let replies = c
        .transaction(vec![
            Command { name: "INCRBY".into(), arguments: vec![bin(&counter), RedisParameter::Int64(1)] },
            Command { name: "GET".into(), arguments: vec![bin(&counter)] },
        ])
        .await
        .unwrap();
    assert_eq!(replies, [vec![RedisResult::Int64(4)], vec![RedisResult::Binary(b"4".to_vec())]]);

    for refused in ["MULTI", "select", "SUBSCRIBE", "BLPOP", "WATCH"] {
        assert!(matches!(c.execute(refused, vec![bin("x")]).await, Err(RedisError::Other(_))), "{refused}");
    }
    assert!(matches!(c.execute("NOSUCHCOMMAND", vec![]).await, Err(RedisError::Command(_))));
    databases::redis_cleanup(&prefix).await;
}

/// A Postgres address outside the allow-list, or one whose parameters name another host, is
/// refused before connecting, without its password in the message.
#[tokio::test]
async fn postgres_refuses_addresses_outside_the_allow_list() {
    let pg = PostgresCapability::new(dialer(&["postgres://127.0.0.1:5432"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    for address in [
        format!("postgres://postgres:hunter2@127.0.0.1:{port}/test"),
        format!("postgresql://postgres@localhost:{port}/test"),
        format!("postgres://postgres:hunter2@127.0.0.1:5432/test?host=127.0.0.2&port={port}"),
        format!("postgres://postgres@127.0.0.1:5432/test?hostaddr=127.0.0.1&port={port}"),
    ] {
        let Err(PgError::Denied(message)) = pg.open(&address).await else { panic!("{address} was not denied") };
        assert!(message.contains("db-test@0.1.0"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert!(nobody_connects(listener).await, "a denied address was connected to");
    // `postgresql://` is the same origin as an allowed `postgres://`.
    let mut c = pg.open("postgresql://postgres@127.0.0.1:5432/test").await.unwrap();
    assert_eq!(c.execute("SELECT 1", vec![]).await.unwrap(), 1);
}

/// A transaction left open by a connection that is dropped mid-way is rolled back: its write is
/// gone and the next user of the pooled connection is not inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_open_transaction_does_not_leak_into_the_pool() {
    let schema = unique("leak");
    let admin = databases::postgres().await;
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id int PRIMARY KEY)"))
        .await
        .unwrap();
    let pg = PostgresCapability::new(dialer(&["postgres://127.0.0.1:5432"]));

    let mut c = pg.open(DATABASE_URL).await.unwrap();
    c.execute("BEGIN", vec![]).await.unwrap();
    c.execute(&format!("INSERT INTO {schema}.t VALUES ($1)"), vec![DbValue::Int32(1)]).await.unwrap();
    c.query(&format!("SELECT id FROM {schema}.t FOR UPDATE"), vec![]).await.unwrap();
    drop(c);

    // The rollback runs as the connection goes back to the pool: wait until no connection of
    // this plugin is idle inside a transaction.
    let idle_in_transaction = "SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'codexcontinue db-test@0.1.0' AND state LIKE 'idle in transaction%'";
    let mut left: i64 = 1;
    for _ in 0..60 {
        left = admin.query_one(idle_in_transaction, &[]).await.unwrap().get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "a dropped connection stayed inside its transaction");
    // The next user of the pool (the same connection, the only one) sees neither the
    // uncommitted row nor an open transaction.
    let mut c = pg.open(DATABASE_URL).await.unwrap();
    let rows = c.query(&format!("SELECT count(*) FROM {schema}.t"), vec![]).await.unwrap();
    assert_eq!(rows.rows, [vec![DbValue::Int64(0)]]);
    // Inside the leaked transaction, which wrote, a transaction id would be assigned already.
    let rows = c.query("SELECT pg_current_xact_id_if_assigned() IS NULL", vec![]).await.unwrap();
    assert_eq!(rows.rows, [vec![DbValue::Boolean(true)]], "the connection is still inside a transaction");
    drop(c);

    // The row lock is gone too: another session can take it at once.
    admin.batch_execute(&format!("SET lock_timeout = '2s'; INSERT INTO {schema}.t VALUES (1)")).await.unwrap();
    databases::postgres_cleanup(&schema).await;
}

/// `db-value`s convert to the statement's parameter types (text to jsonb, uuid and timestamptz;
/// integers across widths; float32 arrays to real[] and float8[]) and rows convert back; values
/// that do not fit are `conversion` errors naming the parameter.
#[tokio::test]
async fn postgres_parameter_conversions() {
    let schema = unique("conv");
    let pg = PostgresCapability::new(dialer(&["postgres://127.0.0.1:5432"]));
    let mut c = pg.open(DATABASE_URL).await.unwrap();
    c.execute(&format!("CREATE SCHEMA {schema}"), vec![]).await.unwrap();
    // (column type, value sent, value read back, type name reported)
    let columns = [
        ("int2", DbValue::Int32(7), DbValue::Int32(7), "int2"),
        ("int4", DbValue::Int64(70_000), DbValue::Int32(70_000), "int4"),
        ("int8", DbValue::Int32(-5), DbValue::Int64(-5), "int8"),
        ("float4", DbValue::Float64(1.5), DbValue::Float64(1.5), "float4"),
        ("float8", DbValue::Int64(3), DbValue::Float64(3.0), "float8"),
        ("bool", DbValue::Boolean(true), DbValue::Boolean(true), "bool"),
        ("text", DbValue::Text("héllo 🦀".into()), DbValue::Text("héllo 🦀".into()), "text"),
        ("varchar(20)", DbValue::Text("short".into()), DbValue::Text("short".into()), "varchar"),
        (
            "jsonb",
            DbValue::Text(r#"{"a": [1, 2], "b": "ü"}"#.into()),
            DbValue::Text(r#"{"a":[1,2],"b":"ü"}"#.into()),
            "jsonb",
        ),
        ("uuid", DbValue::Text(UUID.into()), DbValue::Text(UUID.into()), "uuid"),
        ("timestamptz", DbValue::Text(TIME.into()), DbValue::Text(TIME.into()), "timestamptz"),
        ("bytea", DbValue::Bytes(vec![0, 1, 255]), DbValue::Bytes(vec![0, 1, 255]), "bytea"),
        (
            "real[]",
            DbValue::Float32Array(vec![0.1, -2.5, 1e-30]),
            DbValue::Float32Array(vec![0.1, -2.5, 1e-30]),
            "_float4",
        ),
        ("float8[]", DbValue::Float32Array(vec![0.5]), DbValue::Float32Array(vec![0.5]), "_float8"),
        ("text", DbValue::Null, DbValue::Null, "text"),
    ];
    let table = format!("{schema}.v");
    let definitions: Vec<String> = columns.iter().enumerate().map(|(i, c)| format!("c{i} {}", c.0)).collect();
    c.execute(&format!("CREATE TABLE {table} ({})", definitions.join(", ")), vec![]).await.unwrap();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = format!("INSERT INTO {table} VALUES ({})", placeholders.join(", "));
    assert_eq!(c.execute(&insert, columns.iter().map(|c| c.1.clone()).collect()).await.unwrap(), 1);

    let rows = c.query(&format!("SELECT * FROM {table}"), vec![]).await.unwrap();
    let types: Vec<&str> = rows.columns.iter().map(|c| c.type_name.as_str()).collect();
    assert_eq!(types, columns.iter().map(|c| c.3).collect::<Vec<_>>());
    assert_eq!(rows.rows, [columns.iter().map(|c| c.2.clone()).collect::<Vec<_>>()]);

    let one = |v: DbValue| vec![v];
    let cases = [
        ("SELECT $1::int2", one(DbValue::Int32(70_000)), "$1 (int2)"),
        ("SELECT $1::jsonb", one(DbValue::Text("{not json".into())), "not valid JSON"),
        ("SELECT $1::uuid", one(DbValue::Text("nope".into())), "not a UUID"),
        ("SELECT $1::bool", one(DbValue::Text("true".into())), "text value cannot be sent as bool"),
        ("SELECT $1::int4, $2::text", vec![DbValue::Int32(1)], "2 parameters but 1"),
        ("SELECT 1::numeric", vec![], "cast it"),
    ];
    for (sql, params, expected) in cases {
        match c.query(sql, params).await {
            Err(PgError::Conversion(m)) => assert!(m.contains(expected), "{sql}: {m}"),
            other => panic!("{sql}: expected a conversion error, got {other:?}"),
        }
    }
    match c.execute("SELEC 1", vec![]).await {
        Err(PgError::Query(m)) => assert!(m.contains("SQLSTATE 42601"), "{m}"),
        other => panic!("expected a query error, got {other:?}"),
    }
    drop(c);
    databases::postgres_cleanup(&schema).await;
}
