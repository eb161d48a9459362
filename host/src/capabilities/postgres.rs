//! The `postgres` capability: parameterised statements for memory plugins over one connection
//! pool per (plugin, address), only to the plugin's allowed hosts (Spin's outbound-pg is the
//! model). A `connection` resource holds one pooled client for its whole life, so `BEGIN` ...
//! `COMMIT` spans calls; whatever it leaves open is rolled back before the client is pooled again.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row, Statement};
use wasmtime::component::Resource;

use super::dial::{DialError, Dialer};
use super::http::source_chain as chain;
use crate::runtime::HostState;
use crate::runtime::bindings::latest::memory::codexcontinue::plugin::postgres::{
    Column, DbValue, Host, HostConnection, PgError, RowSet,
};

/// Connections one plugin may hold to one address. Each plugin call holds at most one per
/// `connection` it opens, for the length of the call; 16 covers a busy host on a few cores
/// without crowding Postgres's default of 100.
const POOL_SIZE: usize = 16;
/// Longest wait for a free pooled connection or a new one.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for a TCP connection and the start-up handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What one plugin may do with Postgres: its allow-list and its pools, by address.
#[derive(Clone)]
pub struct PostgresCapability {
    dialer: Dialer,
    pools: Arc<Mutex<HashMap<String, (Pool, String)>>>,
}

impl fmt::Debug for PostgresCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCapability").field("dialer", &self.dialer).finish_non_exhaustive()
    }
}

impl PostgresCapability {
    /// The capability of the plugin `dialer` checks for. Nothing connects until `open`.
    pub fn new(dialer: Dialer) -> Self {
        Self { dialer, pools: Arc::default() }
    }

    /// Checks `address` and takes a client from its pool (creating the pool the first time).
    pub async fn open(&self, address: &str) -> Result<Connection, PgError> {
        let (pool, origin) = self.pool(address).await?;
        let client = pool.get().await.map_err(|e| PgError::Connection(format!("{origin}: {}", chain(&e))))?;
        Ok(Connection { client: Some(client), origin, used: false })
    }

    async fn pool(&self, address: &str) -> Result<(Pool, String), PgError> {
        if let Some(found) = self.pools.lock().unwrap_or_else(|e| e.into_inner()).get(address) {
            return Ok(found.clone());
        }
        let destination = self.dialer.check(address, &["postgres", "postgresql"]).await.map_err(|e| match e {
            DialError::Denied(m) => PgError::Denied(m),
            DialError::Invalid(m) => PgError::Other(m),
            DialError::Unresolved(m) => PgError::Connection(m),
        })?;
        let origin = destination.origin;
        let plugin = self.dialer.plugin();
        let mut config = tokio_postgres::Config::from_str(address)
            .map_err(|e| PgError::Other(format!("plugin {plugin}: {origin} is not a Postgres address: {e}")))?;
        // Query parameters (`?host=`, `?hostaddr=`, `?port=`) could send the connection somewhere
        // other than the origin that was checked.
        let host_matches = matches!(config.get_hosts(), [tokio_postgres::config::Host::Tcp(h)]
            if destination.url.host_str().is_some_and(|u| u.trim_matches(['[', ']']).eq_ignore_ascii_case(h.trim_matches(['[', ']']))));
        let port_matches =
            matches!(config.get_ports(), [] | [_]) && config.get_ports().iter().all(|p| *p == destination.addr.port());
        if !host_matches || !port_matches || !config.get_hostaddrs().is_empty() {
            tracing::warn!(plugin = %plugin, destination = %origin, "denied database connection: parameters name another host");
            return Err(PgError::Denied(format!(
                "plugin {plugin} may connect only to {origin}: the address's parameters name another host or port"
            )));
        }
        // Connect to the address that passed the check, not to whatever the name resolves to next.
        config.hostaddr(destination.addr.ip()).connect_timeout(CONNECT_TIMEOUT);
        if config.get_ports().is_empty() {
            config.port(destination.addr.port());
        }
        if config.get_application_name().is_none() {
            config.application_name(format!("codexcontinue {plugin}"));
        }
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::Other(format!("{origin}: {e}")))?;
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        // Two first calls may race here; both keep the pool that was stored first.
        Ok(pools.entry(address.to_string()).or_insert((pool, origin)).clone())
    }
}

/// Host side of the WIT `connection` resource: one pooled client, held until the guest drops
/// the resource or the call's `Store` goes away.
pub struct Connection {
    client: Option<Object>,
    origin: String,
    /// Whether a statement ran, so a transaction may be open.
    used: bool,
}

impl Connection {
    fn client(&mut self) -> &Object {
        self.used = true;
        self.client.as_ref().expect("the client is only taken on drop")
    }

    async fn prepare(&mut self, statement: &str, params: Vec<DbValue>) -> Result<(Statement, Vec<Param>), PgError> {
        let prepared = self.client().prepare_cached(statement).await.map_err(|e| self.error(e))?;
        let types = prepared.params();
        if types.len() != params.len() {
            return Err(PgError::Conversion(format!(
                "the statement takes {} parameters but {} were given",
                types.len(),
                params.len()
            )));
        }
        let params = params
            .into_iter()
            .zip(types)
            .enumerate()
            .map(|(i, (v, ty))| Param::convert(i + 1, v, ty))
            .collect::<Result<_, _>>()?;
        Ok((prepared, params))
    }

    /// Runs `statement` and returns its rows converted to `db-value`s.
    pub async fn query(&mut self, statement: &str, params: Vec<DbValue>) -> Result<RowSet, PgError> {
        let (prepared, params) = self.prepare(statement, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.client().query(&prepared, &refs).await.map_err(|e| self.error(e))?;
        let columns: Vec<Column> = prepared
            .columns()
            .iter()
            .map(|c| Column { name: c.name().to_string(), type_name: c.type_().name().to_string() })
            .collect();
        let rows = rows.iter().map(|row| from_row(row, &prepared)).collect::<Result<_, _>>()?;
        Ok(RowSet { columns, rows })
    }

    /// Runs `statement` and returns the number of rows it affected.
    pub async fn execute(&mut self, statement: &str, params: Vec<DbValue>) -> Result<u64, PgError> {
        let (prepared, params) = self.prepare(statement, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.client().execute(&prepared, &refs).await.map_err(|e| self.error(e))
    }

    fn error(&self, e: tokio_postgres::Error) -> PgError {
        match e.as_db_error() {
            Some(db) => PgError::Query(format!("{} (SQLSTATE {})", db.message(), db.code().code())),
            None if e.is_closed() => PgError::Connection(format!("{}: the connection closed", self.origin)),
            None => PgError::Other(chain(&e)),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        if !self.used {
            return;
        }
        // The guest may have left a transaction open (it dropped the resource, trapped or timed
        // out mid-way). Roll it back before the client returns to the pool, so row locks are
        // released now and the next user never runs inside someone else's transaction. If the
        // rollback cannot run or fails, the connection is closed instead of pooled.
        let guard = DiscardUnlessClean(Some(client));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(guard.rollback());
            }
            Err(_) => drop(guard),
        }
    }
}

/// Holds a client whose transaction state is unknown; dropped without `clean`, it closes the
/// connection rather than returning it to the pool.
struct DiscardUnlessClean(Option<Object>);

impl DiscardUnlessClean {
    async fn rollback(mut self) {
        if let Some(client) = &self.0
            && client.batch_execute("ROLLBACK").await.is_ok()
        {
            // Clean: let it go back to the pool.
            self.0.take();
        }
    }
}

impl Drop for DiscardUnlessClean {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// A parameter converted for the type the statement declares.
#[derive(Debug)]
enum Param {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    Oid(u32),
    F32(f32),
    F64(f64),
    /// Text, and any type whose binary form is its text (varchar, name, enums, citext...).
    Text(String),
    Bytes(Vec<u8>),
    Json(serde_json::Value),
    Uuid(uuid::Uuid),
    Timestamp(OffsetDateTime),
    F32Array(Vec<f32>),
    F64Array(Vec<f64>),
}

fn is_textual(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN)
        || matches!(ty.kind(), Kind::Enum(_))
        || ty.name() == "citext"
}

fn kind_of(value: &DbValue) -> &'static str {
    match value {
        DbValue::Null => "null",
        DbValue::Boolean(_) => "boolean",
        DbValue::Int32(_) => "int32",
        DbValue::Int64(_) => "int64",
        DbValue::Float64(_) => "float64",
        DbValue::Text(_) => "text",
        DbValue::Bytes(_) => "bytes",
        DbValue::Float32Array(_) => "float32-array",
    }
}

impl Param {
    /// Converts parameter `$index` to `ty`, or says why it cannot be.
    fn convert(index: usize, value: DbValue, ty: &Type) -> Result<Self, PgError> {
        let fail = |why: String| PgError::Conversion(format!("parameter ${index} ({}): {why}", ty.name()));
        let kind = kind_of(&value);
        let mismatch = || fail(format!("a {kind} value cannot be sent as {}", ty.name()));
        let int = |i: i64| -> Result<Self, PgError> {
            let range = |_| fail(format!("{i} is out of range"));
            Ok(match *ty {
                Type::INT2 => Param::I16(i16::try_from(i).map_err(range)?),
                Type::INT4 => Param::I32(i32::try_from(i).map_err(range)?),
                Type::INT8 => Param::I64(i),
                Type::OID => Param::Oid(u32::try_from(i).map_err(range)?),
                Type::FLOAT4 => Param::F32(i as f32),
                Type::FLOAT8 => Param::F64(i as f64),
                _ => return Err(mismatch()),
            })
        };
        match value {
            DbValue::Null => Ok(Param::Null),
            DbValue::Boolean(b) if *ty == Type::BOOL => Ok(Param::Bool(b)),
            DbValue::Int32(i) => int(i.into()),
            DbValue::Int64(i) => int(i),
            DbValue::Float64(f) if *ty == Type::FLOAT8 => Ok(Param::F64(f)),
            DbValue::Float64(f) if *ty == Type::FLOAT4 => Ok(Param::F32(f as f32)),
            DbValue::Text(s) if is_textual(ty) => Ok(Param::Text(s)),
            DbValue::Text(s) if matches!(*ty, Type::JSON | Type::JSONB) => {
                serde_json::from_str(&s).map(Param::Json).map_err(|e| fail(format!("not valid JSON: {e}")))
            }
            DbValue::Text(s) if *ty == Type::UUID => {
                uuid::Uuid::parse_str(&s).map(Param::Uuid).map_err(|e| fail(format!("not a UUID: {e}")))
            }
            DbValue::Text(s) if *ty == Type::TIMESTAMPTZ => OffsetDateTime::parse(&s, &Rfc3339)
                .map(Param::Timestamp)
                .map_err(|e| fail(format!("not an RFC 3339 timestamp: {e}"))),
            DbValue::Bytes(b) if *ty == Type::BYTEA => Ok(Param::Bytes(b)),
            DbValue::Float32Array(v) if *ty == Type::FLOAT4_ARRAY => Ok(Param::F32Array(v)),
            DbValue::Float32Array(v) if *ty == Type::FLOAT8_ARRAY => {
                Ok(Param::F64Array(v.into_iter().map(f64::from).collect()))
            }
            _ => Err(mismatch()),
        }
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::I16(v) => v.to_sql(ty, out),
            Param::I32(v) => v.to_sql(ty, out),
            Param::I64(v) => v.to_sql(ty, out),
            Param::Oid(v) => v.to_sql(ty, out),
            Param::F32(v) => v.to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
            Param::Json(v) => v.to_sql(ty, out),
            Param::Uuid(v) => v.to_sql(ty, out),
            Param::Timestamp(v) => v.to_sql(ty, out),
            Param::F32Array(v) => v.to_sql(ty, out),
            Param::F64Array(v) => v.to_sql(ty, out),
        }
    }

    /// `convert` already chose the variant for the statement's type.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One row as `db-value`s, by the column types of `statement`.
fn from_row(row: &Row, statement: &Statement) -> Result<Vec<DbValue>, PgError> {
    statement.columns().iter().enumerate().map(|(i, column)| value(row, i, column.name(), column.type_())).collect()
}

fn value(row: &Row, i: usize, name: &str, ty: &Type) -> Result<DbValue, PgError> {
    let fail = |why: String| PgError::Conversion(format!("column {name} ({}): {why}", ty.name()));
    macro_rules! get {
        ($t:ty, $map:expr) => {
            row.try_get::<_, Option<$t>>(i)
                .map_err(|e| fail(chain(&e)))?
                .map($map)
                .transpose()?
                .unwrap_or(DbValue::Null)
        };
    }
    Ok(match *ty {
        Type::BOOL => get!(bool, |v| Ok(DbValue::Boolean(v))),
        Type::INT2 => get!(i16, |v| Ok(DbValue::Int32(v.into()))),
        Type::INT4 => get!(i32, |v| Ok(DbValue::Int32(v))),
        Type::INT8 => get!(i64, |v| Ok(DbValue::Int64(v))),
        Type::OID => get!(u32, |v| Ok(DbValue::Int64(v.into()))),
        Type::FLOAT4 => get!(f32, |v| Ok(DbValue::Float64(v.into()))),
        Type::FLOAT8 => get!(f64, |v| Ok(DbValue::Float64(v))),
        Type::BYTEA => get!(Vec<u8>, |v| Ok(DbValue::Bytes(v))),
        Type::JSON | Type::JSONB => get!(serde_json::Value, |v| Ok(DbValue::Text(v.to_string()))),
        Type::UUID => get!(uuid::Uuid, |v| Ok(DbValue::Text(v.to_string()))),
        Type::TIMESTAMPTZ => {
            get!(OffsetDateTime, |v| v.format(&Rfc3339).map(DbValue::Text).map_err(|e| fail(e.to_string())))
        }
        Type::FLOAT4_ARRAY => get!(Vec<Option<f32>>, |v| floats(v, fail)),
        Type::FLOAT8_ARRAY => {
            get!(Vec<Option<f64>>, |v| floats(v.into_iter().map(|f| f.map(|f| f as f32)).collect(), fail))
        }
        _ if is_textual(ty) => get!(String, |v| Ok(DbValue::Text(v))),
        _ => return Err(fail(format!("this type is not supported; cast it in the query, e.g. {name}::text"))),
    })
}

fn floats(values: Vec<Option<f32>>, fail: impl Fn(String) -> PgError) -> Result<DbValue, PgError> {
    values
        .into_iter()
        .collect::<Option<Vec<f32>>>()
        .map(DbValue::Float32Array)
        .ok_or_else(|| fail("an array with NULL elements cannot be a float32-array".into()))
}

impl Host for HostState {}

impl HostConnection for HostState {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<Connection>, PgError>> {
        self.meter.host_call();
        let caps = self.caps.clone();
        match caps.postgres.open(&address).await {
            Ok(connection) => Ok(Ok(self.table.push(connection)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn query(
        &mut self,
        r: Resource<Connection>,
        statement: String,
        params: Vec<DbValue>,
    ) -> wasmtime::Result<Result<RowSet, PgError>> {
        self.meter.host_call();
        Ok(self.table.get_mut(&r)?.query(&statement, params).await)
    }

    async fn execute(
        &mut self,
        r: Resource<Connection>,
        statement: String,
        params: Vec<DbValue>,
    ) -> wasmtime::Result<Result<u64, PgError>> {
        self.meter.host_call();
        Ok(self.table.get_mut(&r)?.execute(&statement, params).await)
    }

    async fn drop(&mut self, r: Resource<Connection>) -> wasmtime::Result<()> {
        // Dropping the host value rolls back and returns the client (see `Connection`'s Drop).
        self.table.delete(r)?;
        Ok(())
    }
}
