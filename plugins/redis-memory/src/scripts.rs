//! The Lua scripts behind every write. Redis runs a script atomically, so the ownership check
//! and the write it guards can never be split by another client, and `append` numbers messages
//! from the list's length under that same guarantee. Scripts return `CONFLICT ...` errors for
//! another user's session; everything else is plain Redis.

/// Prefix of the error a script raises when the session belongs to someone else.
pub const CONFLICT: &str = "CONFLICT";

/// KEYS: session, messages, user's sessions. ARGV: user, session id, has title ("1"/"0"), title,
/// created ms, latest message ms, then one JSON message each. Returns the first new seq.
///
/// Times stay strings: Lua numbers are doubles, and a round trip through one could reformat
/// them; they are compared as numbers only.
pub const APPEND: &str = r#"
local owner = redis.call('HGET', KEYS[1], 'user')
if owner and owner ~= ARGV[1] then
  return redis.error_reply('CONFLICT session ' .. ARGV[2] .. ' belongs to another user')
end
if not owner then
  redis.call('HSET', KEYS[1], 'user', ARGV[1], 'created', ARGV[5], 'updated', '0')
  if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'title', ARGV[4]) end
end
local first = redis.call('LLEN', KEYS[2]) + 1
for i = 7, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
local updated = redis.call('HGET', KEYS[1], 'updated')
if tonumber(ARGV[6]) > tonumber(updated) then updated = ARGV[6] end
redis.call('HSET', KEYS[1], 'updated', updated)
redis.call('ZADD', KEYS[3], updated, ARGV[2])
return first
"#;

/// KEYS: session, messages, summary, embeddings, user's sessions. ARGV: user, session id.
/// Returns 1 if the user's session existed and is gone with every key of it, else 0.
pub const DELETE: &str = r#"
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[2])
return 1
"#;

/// KEYS: session, summary. ARGV: user, session id, summary JSON, its through_seq. A stored
/// summary that reaches further is kept.
pub const PUT_SUMMARY: &str = r#"
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then
  return redis.error_reply('CONFLICT no session ' .. ARGV[2] .. ' for this user')
end
local stored = redis.call('GET', KEYS[2])
if stored and cjson.decode(stored).through_seq > tonumber(ARGV[4]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[3])
return 1
"#;

/// KEYS: session, embeddings. ARGV: user, session id, then field and JSON pairs.
pub const PUT_EMBEDDINGS: &str = r#"
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then
  return redis.error_reply('CONFLICT no session ' .. ARGV[2] .. ' for this user')
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"#;
