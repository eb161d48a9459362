//! The shared [`Counter`]: the same sliding-window log kept in Redis, so every host behind a
//! load balancer counts against one budget. Each step is one Lua script, which Redis runs
//! atomically, and time is Redis's own `TIME`, so hosts with skewed clocks still agree.
//!
//! Per key: a sorted set of entry ids scored by time, and a hash of their amounts; both expire
//! with the window, so an idle key leaves nothing behind.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use async_trait::async_trait;

use super::Error;
use super::counter::{Counter, Taken};

/// Drops expired entries, sums the rest and adds the new entry if it fits. Returns
/// `{fitted, used, retry_after_ms, reset_ms}`.
const TAKE: &str = r"
local z, h = KEYS[1], KEYS[2]
local amount, limit, window, id = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - window)
for _, e in ipairs(old) do redis.call('HDEL', h, e) end
redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
local used, amounts = 0, {}
for i = 1, #entries, 2 do
  local a = tonumber(redis.call('HGET', h, entries[i])) or 0
  amounts[#amounts + 1] = a
  used = used + a
end
if used + amount <= limit then
  redis.call('ZADD', z, now, id)
  redis.call('HSET', h, id, amount)
  redis.call('PEXPIRE', z, window)
  redis.call('PEXPIRE', h, window)
  return {1, used + amount, 0, window}
end
local freed, wait = 0, window
for i = 1, #amounts do
  freed = freed + amounts[i]
  if used - freed + amount <= limit then
    wait = tonumber(entries[2 * i]) + window - now
    break
  end
end
local reset = 0
if #entries > 0 then reset = tonumber(entries[#entries]) + window - now end
return {0, used, wait, reset}
";

/// Changes an entry's amount, or removes it for 0; an expired entry is left alone.
const SET: &str = r"
local z, h, id, amount = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
if not redis.call('ZSCORE', z, id) then return 0 end
if amount == 0 then
  redis.call('ZREM', z, id)
  redis.call('HDEL', h, id)
else
  redis.call('HSET', h, id, amount)
end
return 1
";

/// A pooled connection to the Redis given in `[limits] shared`, and the prefix of its keys.
#[derive(Clone)]
pub struct RedisCounter {
    connection: ConnectionManager,
    prefix: String,
}

/// Connecting and each reply: a limit check sits on every request's path, so it must fail fast.
const TIMEOUT: Duration = Duration::from_secs(2);

impl RedisCounter {
    /// Connects to `url` (`redis://host:port/db`); keys start with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Error> {
        let client =
            ::redis::Client::open(url).map_err(|e| Error::Shared(format!("not a Redis address ({:?})", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2);
        let connection =
            ConnectionManager::new_with_config(client, config).await.map_err(|e| Error::Shared(e.to_string()))?;
        Ok(Self { connection, prefix: prefix.to_string() })
    }

    fn keys(&self, key: &str) -> (String, String) {
        let z = format!("{}{key}", self.prefix);
        let h = format!("{z}:amounts");
        (z, h)
    }
}

#[async_trait]
impl Counter for RedisCounter {
    async fn take(&self, key: &str, amount: u64, limit: u64, window: Duration) -> Result<Taken, Error> {
        let (z, h) = self.keys(key);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let reply: (u8, u64, u64, u64) = ::redis::cmd("EVAL")
            .arg(TAKE)
            .arg(2)
            .arg(&z)
            .arg(&h)
            .arg(amount)
            .arg(limit)
            .arg(window.as_millis() as u64)
            .arg(&id)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| Error::Shared(e.to_string()))?;
        let (fitted, used, retry_after, reset) = reply;
        Ok(Taken {
            entry: (fitted == 1).then_some(id),
            used,
            retry_after: Duration::from_millis(retry_after),
            reset: Duration::from_millis(reset),
        })
    }

    async fn set(&self, key: &str, entry: &str, amount: u64) -> Result<(), Error> {
        let (z, h) = self.keys(key);
        let _: u8 = ::redis::cmd("EVAL")
            .arg(SET)
            .arg(2)
            .arg(&z)
            .arg(&h)
            .arg(entry)
            .arg(amount)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| Error::Shared(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two connections (two hosts) share one budget; settling makes room in it. Needs the
    /// Redis at 127.0.0.1:6379 that runs on development machines.
    #[tokio::test]
    async fn shares_one_budget() {
        let prefix = format!("codexcontinue-test:{}:", uuid::Uuid::new_v4().simple());
        let a = RedisCounter::connect("redis://127.0.0.1:6379", &prefix).await.unwrap();
        let b = RedisCounter::connect("redis://127.0.0.1:6379", &prefix).await.unwrap();
        let minute = Duration::from_secs(60);
        let first = a.take("k", 2, 3, minute).await.unwrap();
        assert_eq!((first.entry.is_some(), first.used), (true, 2));
        let refused = b.take("k", 2, 3, minute).await.unwrap();
        assert_eq!((refused.entry.is_none(), refused.used), (true, 2));
        assert!(refused.retry_after > Duration::from_secs(58) && refused.retry_after <= minute, "{refused:?}");
        b.set("k", first.entry.as_deref().unwrap(), 1).await.unwrap();
        assert_eq!(b.take("k", 2, 3, minute).await.unwrap().used, 3);
        a.set("k", first.entry.as_deref().unwrap(), 0).await.unwrap();
        assert_eq!(a.take("k", 0, 3, minute).await.unwrap().used, 2);
    }
}
