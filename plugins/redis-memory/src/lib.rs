//! Conversation memory in Redis, through the host's pooled `redis` capability. Writes that must
//! check ownership or assign seqs run as Lua scripts (EVAL), which Redis executes atomically, so
//! concurrent writers on any number of hosts get distinct, consecutive seqs.
//!
//! Key layout (`{p}` is the `prefix` config, default `cc`; see `docs/stores.md`): `{p}:session:{id}`
//! hash, `{p}:messages:{id}` list (seq n at index n-1), `{p}:user:{user}:sessions` sorted set by
//! last activity, `{p}:summary:{id}` string, `{p}:embeddings:{id}` hash (`{seq}:{model}` -> JSON).

mod codec;
mod keys;
mod scripts;

use codexcontinue_sdk::redis::{Command, Connection, RedisError, RedisParameter, RedisResult};
use codexcontinue_sdk::{
    Embedding, MemoryStore, NewMessage, Scope, SessionInfo, StoreError, StoredMessage, Summary, config,
    export_memory_store,
};

use keys::Keys;

/// Where Redis is when neither the manifest nor `REDIS_URL` says.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The store; state lives in Redis, the instance is fresh for every call.
struct RedisMemory;

/// A connection and the key names of this deployment.
struct Redis {
    connection: Connection,
    keys: Keys,
}

fn connect() -> Result<Redis, StoreError> {
    let url = config::get_or("redis_url", DEFAULT_URL);
    let keys = Keys::new(&config::get_or("prefix", keys::DEFAULT_PREFIX))?;
    let connection = Connection::open(&url).map_err(error)?;
    Ok(Redis { connection, keys })
}

/// Maps the capability's errors; the `CONFLICT` error the scripts raise becomes `conflict`.
fn error(e: RedisError) -> StoreError {
    match e {
        RedisError::Denied(m) | RedisError::Connection(m) => StoreError::Unavailable(m),
        RedisError::Command(m) if m.contains(scripts::CONFLICT) => {
            StoreError::Conflict(m.split_once(scripts::CONFLICT).map_or(m.clone(), |(_, rest)| rest.trim().to_string()))
        }
        RedisError::Command(m) | RedisError::Other(m) => StoreError::Other(m),
    }
}

fn bin(s: impl Into<Vec<u8>>) -> RedisParameter {
    RedisParameter::Binary(s.into())
}

fn int(i: u64) -> RedisParameter {
    RedisParameter::Int64(i64::try_from(i).unwrap_or(i64::MAX))
}

impl Redis {
    fn execute(&self, command: &str, arguments: &[RedisParameter]) -> Result<Vec<RedisResult>, StoreError> {
        self.connection.execute(command, arguments).map_err(error)
    }

    /// Runs `script` with `keys` and `args`.
    fn eval(&self, script: &str, keys: &[String], args: Vec<RedisParameter>) -> Result<Vec<RedisResult>, StoreError> {
        let mut arguments = vec![bin(script), int(keys.len() as u64)];
        arguments.extend(keys.iter().map(|k| bin(k.as_str())));
        arguments.extend(args);
        self.execute("EVAL", &arguments)
    }

    /// Reads several sessions in one MULTI/EXEC, so each is a consistent snapshot.
    fn sessions(&self, ids: &[String]) -> Result<Vec<Option<SessionInfo>>, StoreError> {
        let commands: Vec<Command> = ids
            .iter()
            .flat_map(|id| {
                [
                    Command {
                        name: "HMGET".into(),
                        arguments: ["user", "title", "created", "updated"].iter().fold(
                            vec![bin(self.keys.session(id))],
                            |mut a, f| {
                                a.push(bin(*f));
                                a
                            },
                        ),
                    },
                    Command { name: "LLEN".into(), arguments: vec![bin(self.keys.messages(id))] },
                ]
            })
            .collect();
        let replies = self.connection.transaction(&commands).map_err(error)?;
        ids.iter().zip(replies.chunks(2)).map(|(id, pair)| codec::session(id, &pair[0], &pair[1])).collect()
    }

    /// Runs `command` on `key` in one MULTI/EXEC with reading the session's owner: its reply,
    /// or `None` if `scope.user` does not own the session.
    fn read_owned(&self, scope: &Scope, command: &str, key: String) -> Result<Option<Vec<RedisResult>>, StoreError> {
        let mut replies = self
            .connection
            .transaction(&[
                Command { name: "HGET".into(), arguments: vec![bin(self.keys.session(&scope.session)), bin("user")] },
                Command { name: command.into(), arguments: vec![bin(key)] },
            ])
            .map_err(error)?;
        let reply = replies.pop().unwrap_or_default();
        let owner = codec::opt_string(&replies.pop().unwrap_or_default())?;
        Ok((owner.as_deref() == Some(scope.user.as_str())).then_some(reply))
    }
}

impl MemoryStore for RedisMemory {
    fn init() -> Result<(), StoreError> {
        connect()?.execute("PING", &[]).map(drop)
    }

    fn get_session(session: String) -> Result<Option<SessionInfo>, StoreError> {
        Ok(connect()?.sessions(&[session])?.pop().flatten())
    }

    fn list_sessions(user: String, limit: u32) -> Result<Vec<SessionInfo>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let redis = connect()?;
        // Newest activity first; equal scores order by id, descending, like the sled store.
        let ids =
            redis.execute("ZREVRANGE", &[bin(redis.keys.user_sessions(&user)), int(0), int(u64::from(limit) - 1)])?;
        let ids: Vec<String> = ids.iter().map(codec::string).collect::<Result<_, _>>()?;
        // A session deleted between the two reads is skipped.
        Ok(redis.sessions(&ids)?.into_iter().flatten().collect())
    }

    fn append(
        scope: Scope,
        messages: Vec<NewMessage>,
        title: Option<String>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let redis = connect()?;
        let k = &redis.keys;
        let created = messages.first().map_or_else(codec::now_ms, |m| m.created_at_ms);
        let updated = messages.iter().map(|m| m.created_at_ms).max().unwrap_or(0);
        let mut args = vec![
            bin(scope.user.as_str()),
            bin(scope.session.as_str()),
            bin(if title.is_some() { "1" } else { "0" }),
            bin(title.unwrap_or_default()),
            bin(created.to_string()),
            bin(updated.to_string()),
        ];
        args.extend(messages.iter().map(|m| bin(codec::encode_message(m))));
        let keys = [k.session(&scope.session), k.messages(&scope.session), k.user_sessions(&scope.user)];
        let reply = redis.eval(scripts::APPEND, &keys, args)?;
        let first = codec::count(&reply)?;
        Ok(messages.into_iter().zip(first..).map(|(m, seq)| StoredMessage::new(seq, m)).collect())
    }

    fn list_messages(scope: Scope, before: Option<u64>, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
        let redis = connect()?;
        let Some(len) = redis.read_owned(&scope, "LLEN", redis.keys.messages(&scope.session))? else {
            return Ok(Vec::new());
        };
        let len = codec::count(&len)?;
        // Seqs are 1..=len with no gaps (messages are never removed one by one), so the page is
        // an index range of the list.
        let last = before.map_or(len, |b| b.saturating_sub(1).min(len));
        let first = last.saturating_sub(u64::from(limit)) + 1;
        if limit == 0 || last == 0 {
            return Ok(Vec::new());
        }
        let items =
            redis.execute("LRANGE", &[bin(redis.keys.messages(&scope.session)), int(first - 1), int(last - 1)])?;
        items.iter().zip(first..).map(|(item, seq)| codec::decode_message(item, seq)).collect()
    }

    fn delete_session(scope: Scope) -> Result<bool, StoreError> {
        let redis = connect()?;
        let k = &redis.keys;
        let id = &scope.session;
        let keys = [k.session(id), k.messages(id), k.summary(id), k.embeddings(id), k.user_sessions(&scope.user)];
        let reply = redis.eval(scripts::DELETE, &keys, vec![bin(scope.user.as_str()), bin(id.as_str())])?;
        Ok(codec::count(&reply)? == 1)
    }

    fn put_summary(scope: Scope, summary: Summary) -> Result<(), StoreError> {
        let redis = connect()?;
        let keys = [redis.keys.session(&scope.session), redis.keys.summary(&scope.session)];
        let args = vec![
            bin(scope.user.as_str()),
            bin(scope.session.as_str()),
            bin(codec::encode_summary(&summary)),
            bin(summary.through_seq.to_string()),
        ];
        redis.eval(scripts::PUT_SUMMARY, &keys, args).map(drop)
    }

    fn get_summary(scope: Scope) -> Result<Option<Summary>, StoreError> {
        let redis = connect()?;
        match redis.read_owned(&scope, "GET", redis.keys.summary(&scope.session))? {
            Some(reply) => codec::decode_summary(&reply),
            None => Ok(None),
        }
    }

    fn put_embeddings(scope: Scope, items: Vec<Embedding>) -> Result<(), StoreError> {
        let redis = connect()?;
        let keys = [redis.keys.session(&scope.session), redis.keys.embeddings(&scope.session)];
        let mut args = vec![bin(scope.user.as_str()), bin(scope.session.as_str())];
        for item in &items {
            args.push(bin(format!("{}:{}", item.seq, item.model)));
            args.push(bin(codec::encode_embedding(item)));
        }
        redis.eval(scripts::PUT_EMBEDDINGS, &keys, args).map(drop)
    }

    fn list_embeddings(scope: Scope) -> Result<Vec<Embedding>, StoreError> {
        let redis = connect()?;
        let Some(values) = redis.read_owned(&scope, "HVALS", redis.keys.embeddings(&scope.session))? else {
            return Ok(Vec::new());
        };
        let mut items: Vec<Embedding> = values.iter().map(codec::decode_embedding).collect::<Result<_, _>>()?;
        items.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.model.cmp(&b.model)));
        Ok(items)
    }
}

export_memory_store!(RedisMemory);
