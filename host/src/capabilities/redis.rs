//! The `redis` capability: outbound Redis for memory plugins through one multiplexed, reconnecting
//! client per (plugin, address), only to the plugin's allowed hosts (Spin's outbound-redis is the
//! model). Every `open` checks the address before connecting; a refusal is a WIT error value
//! naming the plugin and the origin, never the credentials in the address.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ConnectionAddr, IntoConnectionInfo, Value};
use wasmtime::component::Resource;

use super::dial::{DialError, Dialer};
use crate::runtime::HostState;
use crate::runtime::bindings::latest::memory::codexcontinue::plugin::redis::{
    Command, Host, HostConnection, RedisError, RedisParameter, RedisResult,
};

/// Longest wait for a TCP connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one reply; the plugin call's own wall clock applies on top.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Reconnection attempts after the connection drops, before a command fails.
const RECONNECT_RETRIES: usize = 2;

/// Commands a plugin may not send. The connection is shared by every call of the plugin, so a
/// command that changes connection state (MULTI, SELECT, SUBSCRIBE...) would leak into other
/// calls, and a blocking one would stall them all. Atomic groups go through `transaction` or a
/// Lua script (EVAL).
const REFUSED: &[&str] = &[
    "AUTH",
    "BLMOVE",
    "BLMPOP",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BZMPOP",
    "BZPOPMAX",
    "BZPOPMIN",
    "CLIENT",
    "DISCARD",
    "EXEC",
    "HELLO",
    "MONITOR",
    "MULTI",
    "PSUBSCRIBE",
    "PUNSUBSCRIBE",
    "QUIT",
    "RESET",
    "SELECT",
    "SSUBSCRIBE",
    "SUBSCRIBE",
    "SUNSUBSCRIBE",
    "SYNC",
    "PSYNC",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
    "WAITAOF",
    "WATCH",
];

/// What one plugin may do with Redis: its allow-list and its clients, by address.
#[derive(Clone)]
pub struct RedisCapability {
    dialer: Dialer,
    clients: Arc<tokio::sync::Mutex<HashMap<String, ConnectionManager>>>,
}

impl fmt::Debug for RedisCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCapability").field("dialer", &self.dialer).finish_non_exhaustive()
    }
}

/// Host side of the WIT `connection` resource: a handle on the plugin's shared client.
pub struct Connection {
    client: ConnectionManager,
}

impl RedisCapability {
    /// The capability of the plugin `dialer` checks for. Nothing connects until `open`.
    pub fn new(dialer: Dialer) -> Self {
        Self { dialer, clients: Arc::default() }
    }

    /// Checks `address` and returns a connection on the client for it, connecting the first time.
    pub async fn open(&self, address: &str) -> Result<Connection, RedisError> {
        let destination = self.dialer.check(address, &["redis", "rediss"]).await.map_err(|e| match e {
            DialError::Denied(m) => RedisError::Denied(m),
            DialError::Invalid(m) => RedisError::Other(m),
            DialError::Unresolved(m) => RedisError::Connection(m),
        })?;
        let origin = &destination.origin;
        if destination.url.scheme() == "rediss" {
            return Err(RedisError::Connection(format!("{origin}: TLS (rediss://) is not supported by this host")));
        }
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(address) {
            return Ok(Connection { client: client.clone() });
        }
        let info = address
            .into_connection_info()
            .map_err(|e| RedisError::Other(format!("{origin}: not a Redis address ({:?})", e.kind())))?
            // Connect to the address that passed the check, not to whatever the name resolves to next.
            .set_addr(ConnectionAddr::Tcp(destination.addr.ip().to_string(), destination.addr.port()));
        let client = ::redis::Client::open(info).map_err(|e| RedisError::Connection(format!("{origin}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES);
        let client = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| RedisError::Connection(format!("{origin}: {e}")))?;
        clients.insert(address.to_string(), client.clone());
        Ok(Connection { client })
    }
}

impl Connection {
    /// Runs one command; nested replies are flattened in order.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, RedisError> {
        let cmd = build(command, arguments)?;
        let value: Value = cmd.query_async(&mut self.client).await.map_err(error)?;
        Ok(flatten(value))
    }

    /// Runs `commands` as one MULTI/EXEC pipeline: Redis applies all of them or none, and no other
    /// client's command runs in between.
    pub async fn transaction(&mut self, commands: Vec<Command>) -> Result<Vec<Vec<RedisResult>>, RedisError> {
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        let count = commands.len();
        for command in commands {
            pipe.add_command(build(&command.name, command.arguments)?);
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let values: Vec<Value> = pipe.query_async(&mut self.client).await.map_err(error)?;
        Ok(values.into_iter().map(flatten).collect())
    }
}

fn build(command: &str, arguments: Vec<RedisParameter>) -> Result<::redis::Cmd, RedisError> {
    let name = command.trim().to_ascii_uppercase();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(RedisError::Other(format!("{command:?} is not a command name; pass arguments separately")));
    }
    if REFUSED.contains(&name.as_str()) {
        return Err(RedisError::Other(format!(
            "{name} is not available to plugins: the connection is shared; use `transaction` or EVAL for atomic groups"
        )));
    }
    let mut cmd = ::redis::cmd(&name);
    for argument in arguments {
        match argument {
            RedisParameter::Int64(i) => cmd.arg(i),
            RedisParameter::Binary(bytes) => cmd.arg(bytes),
        };
    }
    Ok(cmd)
}

/// A reply as the flat list the WIT promises: arrays, sets and maps contribute their elements
/// in order; RESP3-only types map to the nearest RESP2 one.
fn flatten(value: Value) -> Vec<RedisResult> {
    let mut out = Vec::new();
    flatten_into(value, &mut out);
    out
}

fn flatten_into(value: Value, out: &mut Vec<RedisResult>) {
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(i) => out.push(RedisResult::Int64(i)),
        Value::BulkString(bytes) => out.push(RedisResult::Binary(bytes)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".into())),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            items.into_iter().for_each(|v| flatten_into(v, out))
        }
        Value::Map(pairs) => pairs.into_iter().for_each(|(k, v)| {
            flatten_into(k, out);
            flatten_into(v, out);
        }),
        Value::Attribute { data, .. } => flatten_into(*data, out),
        Value::Double(d) => out.push(RedisResult::Status(d.to_string())),
        Value::Boolean(b) => out.push(RedisResult::Int64(i64::from(b))),
        Value::VerbatimString { text, .. } => out.push(RedisResult::Binary(text.into_bytes())),
        Value::ServerError(e) => out.push(RedisResult::Status(format!("ERR {e}"))),
        other => out.push(RedisResult::Status(format!("{other:?}"))),
    }
}

/// Maps a client error: Redis's own refusals are `command`, lost connections `connection`.
fn error(e: ::redis::RedisError) -> RedisError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        RedisError::Connection(e.to_string())
    } else {
        RedisError::Command(e.to_string())
    }
}

impl Host for HostState {}

impl HostConnection for HostState {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<Connection>, RedisError>> {
        self.meter.host_call();
        let caps = self.caps.clone();
        match caps.redis.open(&address).await {
            Ok(connection) => Ok(Ok(self.table.push(connection)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn execute(
        &mut self,
        r: Resource<Connection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, RedisError>> {
        self.meter.host_call();
        Ok(self.table.get_mut(&r)?.execute(&command, arguments).await)
    }

    async fn transaction(
        &mut self,
        r: Resource<Connection>,
        commands: Vec<Command>,
    ) -> wasmtime::Result<Result<Vec<Vec<RedisResult>>, RedisError>> {
        self.meter.host_call();
        Ok(self.table.get_mut(&r)?.transaction(commands).await)
    }

    async fn drop(&mut self, r: Resource<Connection>) -> wasmtime::Result<()> {
        // The client stays in the capability's map for the plugin's next call.
        self.table.delete(r)?;
        Ok(())
    }
}
