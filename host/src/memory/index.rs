//! Recall: per-session indexes of earlier messages, ranked by embeddings when the provider
//! offers them and by BM25 otherwise. Indexes live in a bounded in-process cache and catch up
//! from the store by `seq`, so a session written through another host is indexed here too.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::lexical::Lexical;
use super::vectors::Vectors;
use crate::store::{self, Message, Role, Scope, Session, Store};
use crate::tokens;

/// Sessions whose indexes stay in memory, and the messages they may hold together (an index
/// costs a few hundred bytes a message): beyond either, the least recently used are dropped.
/// Cross-session recall reads a user's 20 latest chats each turn, so this is a few hundred
/// active users' worth rather than a few dozen sessions.
const CACHED_SESSIONS: usize = 4096;
const CACHED_MESSAGES: usize = 500_000;
/// Messages read per store call while catching up.
const PAGE: usize = 1000;

/// One recalled message.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub seq: u64,
    pub role: Role,
    pub content: String,
    pub created_at_ms: u64,
    /// Where it came from, for the prompt (`file notes.md` for workspace chunks).
    pub source: Option<String>,
    /// The title of the chat it was said in, when that is not the current one.
    pub chat: Option<String>,
    /// For a fact: the statement it replaced.
    pub replaces: Option<String>,
    pub score: f32,
    /// The [`fingerprint`](super::lexical::fingerprint) of its text: copies of a line are
    /// recalled once.
    pub same: u64,
}

/// The index of one session.
pub struct SessionIndex {
    /// Identifies the session's incarnation: an id deleted and created again (on another host,
    /// say) must never recall the old one's messages.
    created_at_ms: u64,
    indexed_through: u64,
    /// What recall searches: text of users, replies and workspace chunks.
    messages: BTreeMap<u64, Message>,
    /// Tool results and replies that only call tools: part of the window, never recalled.
    tool_turns: BTreeMap<u64, Message>,
    /// Prompt tokens of messages, computed when a window first needs them.
    costs: HashMap<u64, usize>,
    lexical: Lexical,
    vectors: Vectors,
    /// Versioned groups of messages, where only the latest version is recalled: a workspace
    /// file's chunks by upload, a fact's statements. Each group's latest version and its seqs.
    versions: HashMap<String, (String, Vec<u64>)>,
    /// For a fact: the statement its newest version replaced.
    replaced: HashMap<u64, String>,
    /// For the facts session: messages of chats (seqs by session) that recall leaves out.
    forgotten: HashMap<String, std::collections::HashSet<u64>>,
}

impl SessionIndex {
    fn new() -> Self {
        Self {
            created_at_ms: 0,
            indexed_through: 0,
            messages: BTreeMap::new(),
            tool_turns: BTreeMap::new(),
            costs: HashMap::new(),
            lexical: Lexical::default(),
            vectors: Vectors::default(),
            versions: HashMap::new(),
            replaced: HashMap::new(),
            forgotten: Default::default(),
        }
    }

    /// The newest messages (oldest first) that fit `budget` tokens, at most `limit` of them,
    /// stopping at the first that does not fit so the window is always a contiguous, most recent
    /// slice. Tool calls and their results come with it (a tool call counts its arguments), and
    /// the window opens on a user message: results whose call slid out, or a reply whose
    /// question did, would be refused by vendors.
    pub fn window(&mut self, limit: usize, mut budget: usize) -> Vec<Message> {
        let mut window = Vec::new();
        let (mut text, mut tools) =
            (self.messages.values().rev().peekable(), self.tool_turns.values().rev().peekable());
        let newest = std::iter::from_fn(|| match (text.peek(), tools.peek()) {
            (Some(a), Some(b)) if b.seq > a.seq => tools.next(),
            (Some(_), _) => text.next(),
            (None, _) => tools.next(),
        });
        for m in newest.filter(|m| m.role != Role::System).take(limit) {
            let cost = *self.costs.entry(m.seq).or_insert_with(|| {
                let calls = m.metadata.as_ref().and_then(|meta| meta.get("tool_calls")).map(|c| c.to_string());
                tokens::count_prompt([m.content.as_str(), calls.as_deref().unwrap_or_default()])
                    - tokens::count_prompt([])
            });
            if cost > budget {
                break;
            }
            budget -= cost;
            window.push(m.clone());
        }
        while window.last().is_some_and(|m| m.role != Role::User) {
            window.pop();
        }
        window.reverse();
        window
    }

    /// The model the vectors were made with.
    pub fn vector_model(&self) -> Option<&str> {
        self.vectors.model()
    }

    /// The newest `limit` messages with no vector yet, newest first.
    pub fn unembedded(&self, limit: usize) -> Vec<(u64, String)> {
        self.messages
            .iter()
            .rev()
            .filter(|(seq, _)| !self.vectors.contains(**seq))
            .take(limit)
            .map(|(seq, m)| (*seq, m.content.clone()))
            .collect()
    }

    fn add(&mut self, message: Message) {
        // Workspace chunks of an older upload and older versions of a fact are kept out of recall.
        for seq in self.supersede(&message) {
            if let Some(old) = self.messages.remove(&seq) {
                self.lexical.remove(seq, &old.content);
                if super::facts::id_of_message(&message).is_some() {
                    self.replaced.insert(message.seq, old.content);
                }
            }
            self.replaced.remove(&seq);
            self.costs.remove(&seq);
            self.vectors.remove(seq);
        }
        self.indexed_through = self.indexed_through.max(message.seq);
        for (session, seq) in super::facts::forgotten_of(&message) {
            self.forgotten.entry(session).or_default().insert(seq);
        }
        if matches!(message.role, Role::User | Role::Assistant | Role::System) && !message.content.trim().is_empty() {
            self.lexical.insert(message.seq, &message.content);
            self.messages.insert(message.seq, message);
        } else if message.role == Role::Tool || message.metadata.as_ref().is_some_and(|m| m.get("tool_calls").is_some())
        {
            self.tool_turns.insert(message.seq, message);
        }
    }

    /// For a versioned message (a workspace chunk, a fact): records it under its group and
    /// returns the messages of the group's older version it replaces. Messages arrive in `seq`
    /// order, so a new version is a newer one; each statement of a fact is a version of its own.
    fn supersede(&mut self, message: &Message) -> Vec<u64> {
        let meta = message.metadata.as_ref();
        let field = |name| meta.and_then(|m| m.get(name)).and_then(|v| v.as_str());
        let (group, version) = match (field("file"), field("upload"), super::facts::id_of_message(message)) {
            (Some(file), Some(upload), _) => (format!("file:{file}"), upload.to_string()),
            (_, _, Some(fact)) => (format!("fact:{fact}"), message.seq.to_string()),
            _ => return Vec::new(),
        };
        match self.versions.get_mut(&group) {
            Some((current, seqs)) if *current == version => {
                seqs.push(message.seq);
                Vec::new()
            }
            Some((current, seqs)) => {
                *current = version;
                std::mem::replace(seqs, vec![message.seq])
            }
            None => {
                self.versions.insert(group, (version, vec![message.seq]));
                Vec::new()
            }
        }
    }

    /// A workspace's files as indexed: name, chunks and when uploaded, by name.
    pub fn files(&self) -> Vec<(String, usize, u64)> {
        let mut files: Vec<(String, usize, u64)> = self
            .versions
            .iter()
            .filter_map(|(group, (_, seqs))| {
                let name = group.strip_prefix("file:")?;
                let at = seqs.first().and_then(|seq| self.messages.get(seq)).map_or(0, |m| m.created_at_ms);
                Some((name.to_string(), seqs.len(), at))
            })
            .collect();
        files.sort();
        files
    }

    /// Whether a workspace holds a file `name`.
    pub fn has_file(&self, name: &str) -> bool {
        self.versions.contains_key(&format!("file:{name}"))
    }

    /// The chunks of a workspace's files other than `name`, in order: what is kept when `name`
    /// is replaced or removed.
    pub fn chunks_except(&self, name: &str) -> Vec<Message> {
        let field = |m: &Message| m.metadata.as_ref()?.get("file")?.as_str().map(str::to_string);
        self.messages.values().filter(|m| field(m).is_some_and(|file| file != name)).cloned().collect()
    }

    /// Bytes of text recall can bring back: for a workspace, its files as chunked.
    pub fn bytes(&self) -> u64 {
        self.messages.values().map(|m| m.content.len() as u64).sum()
    }

    /// Messages of chats (seqs by session) that recall must leave out (see `facts`).
    pub fn forgotten(&self) -> &HashMap<String, std::collections::HashSet<u64>> {
        &self.forgotten
    }

    /// The newest `limit` recallable messages, newest first.
    pub fn newest(&self, limit: usize) -> Vec<Hit> {
        self.hits(self.messages.keys().rev().take(limit).map(|seq| (*seq, 0.0)).collect(), limit)
    }

    /// Adds vectors for messages (from the store or freshly computed).
    pub fn add_vectors(&mut self, model: &str, vectors: impl IntoIterator<Item = (u64, Vec<f32>)>) {
        for (seq, vector) in vectors {
            if self.messages.contains_key(&seq) {
                self.vectors.insert(model, seq, vector);
            }
        }
    }

    /// Recall candidates among messages with `seq < before`: up to `limit` best BM25 matches
    /// and, given a query vector of the index's model, up to `limit` nearest messages by
    /// embedding, each list best first with its own score. [`fuse`] ranks them together.
    pub fn search(&self, query: &str, query_vector: Option<(&str, &[f32])>, before: u64, limit: usize) -> Candidates {
        if limit == 0 || self.messages.range(..before).next().is_none() {
            return Candidates::default();
        }
        // Copies of a line are indexed once, so these are `limit` distinct texts.
        let lexical = self.lexical.search(query, before, limit);
        let semantic = match query_vector.filter(|(model, _)| self.vectors.model() == Some(*model)) {
            Some((_, q)) => self.vectors.nearest(q, before, limit),
            None => Vec::new(),
        };
        Candidates { lexical: self.hits(lexical, limit), semantic: self.hits(semantic, limit) }
    }

    /// The messages of `ranked`, the same line said twice (a repeated question, a pasted note)
    /// taking one place, at most `limit`.
    fn hits(&self, ranked: Vec<(u64, f32)>, limit: usize) -> Vec<Hit> {
        let mut seen = std::collections::HashSet::new();
        ranked
            .into_iter()
            .filter_map(|(seq, score)| {
                let (m, same) = (self.messages.get(&seq)?, self.lexical.fingerprint_of(seq)?);
                if !seen.insert(same) {
                    return None;
                }
                let source = m
                    .metadata
                    .as_ref()
                    .and_then(|md| md.get("file"))
                    .and_then(|f| f.as_str())
                    .map(|f| format!("file {f}"));
                Some(Hit {
                    seq,
                    role: m.role,
                    content: m.content.clone(),
                    created_at_ms: m.created_at_ms,
                    source,
                    chat: None,
                    replaces: self.replaced.get(&seq).cloned(),
                    score,
                    same,
                })
            })
            .take(limit)
            .collect()
    }
}

/// What one index offers for a query: BM25 matches and embedding neighbours, each best first.
#[derive(Debug, Default)]
pub struct Candidates {
    pub lexical: Vec<Hit>,
    pub semantic: Vec<Hit>,
}

impl Candidates {
    /// Adds another index's candidates (another session, a workspace).
    pub fn extend(&mut self, other: Candidates) {
        self.lexical.extend(other.lexical);
        self.semantic.extend(other.semantic);
    }
}

/// Reciprocal rank fusion's damping: a list's first places count for little more than its
/// next ones, so agreement between the lists outweighs one list's top spot.
const RRF_K: f32 = 60.0;

/// The best `limit` of all candidates by reciprocal rank fusion of the BM25 and the embedding
/// ranking (each sorted by its own score across every index searched), the same line counted
/// once. A name BM25 finds but embeddings score as noise is still recalled, and a reworded
/// question BM25 misses is found by embeddings; a line both rank comes first. Each hit's
/// `score` becomes its fused score.
pub fn fuse(candidates: Candidates, limit: usize) -> Vec<Hit> {
    let mut fused: Vec<Hit> = Vec::new();
    let mut place: HashMap<u64, usize> = HashMap::new();
    for mut list in [candidates.lexical, candidates.semantic] {
        list.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.created_at_ms.cmp(&b.created_at_ms)));
        let mut seen = std::collections::HashSet::new();
        let mut rank = 0;
        for hit in list {
            let text = hit.same;
            if !seen.insert(text) {
                continue;
            }
            rank += 1;
            let score = 1.0 / (RRF_K + rank as f32);
            match place.get(&text) {
                Some(&at) => fused[at].score += score,
                None => {
                    place.insert(text, fused.len());
                    fused.push(Hit { score, ..hit });
                }
            }
        }
    }
    // Ties (one list's rank n against the other's rank n) go to the newer line.
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.created_at_ms.cmp(&a.created_at_ms)));
    fused.truncate(limit);
    fused
}

/// A cached index, when it was last used and how many messages it held when last caught up.
type Cached = (Instant, usize, Arc<tokio::sync::Mutex<SessionIndex>>);

/// The cache of session indexes.
#[derive(Default)]
pub struct Indexes {
    cache: Mutex<HashMap<String, Cached>>,
}

impl Indexes {
    /// The index of `session`, caught up with it.
    pub async fn get(
        &self,
        store: &dyn Store,
        session: &Session,
    ) -> store::Result<Arc<tokio::sync::Mutex<SessionIndex>>> {
        let scope = &Scope::new(&session.user, &session.id);
        let key = scope.key();
        let last_seq = session.last_seq;
        let index = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let entry = cache
                .entry(key.clone())
                .or_insert_with(|| (Instant::now(), 0, Arc::new(tokio::sync::Mutex::new(SessionIndex::new()))));
            entry.0 = Instant::now();
            entry.2.clone()
        };
        let mut guard = index.lock().await;
        if guard.created_at_ms != session.created_at_ms {
            *guard = SessionIndex { created_at_ms: session.created_at_ms, ..SessionIndex::new() };
        }
        if guard.indexed_through < last_seq {
            let fresh = guard.indexed_through == 0;
            let mut missing = Vec::new();
            let mut before = None;
            loop {
                // Read only what is missing: after a turn that is two messages, not a page.
                let wanted = (last_seq - guard.indexed_through).min(PAGE as u64) as usize;
                let page = store.list_messages(scope, before, wanted).await?;
                let done = page.len() < wanted || page.first().is_none_or(|m| m.seq <= guard.indexed_through + 1);
                before = page.first().map(|m| m.seq);
                missing.extend(page.into_iter().rev().filter(|m| m.seq > guard.indexed_through));
                if done {
                    break;
                }
            }
            missing.reverse();
            for message in missing {
                guard.add(message);
            }
            if fresh {
                let stored = store.list_embeddings(scope).await?;
                if let Some(model) = stored.last().map(|e| e.model.clone()) {
                    guard.add_vectors(
                        &model,
                        stored.into_iter().filter(|e| e.model == model).map(|e| (e.seq, e.vector)),
                    );
                }
            }
        }
        let held = guard.messages.len() + guard.tool_turns.len();
        drop(guard);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = cache.get_mut(&key) {
            entry.1 = held;
        }
        evict(&mut cache, &key);
        Ok(index)
    }

    /// How many indexes are cached, and the messages they hold (tests).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        (cache.len(), cache.values().map(|(_, n, _)| n).sum())
    }

    /// Forgets the index of the scope's session (it was deleted).
    pub fn forget(&self, scope: &Scope) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(&scope.key());
    }
}

/// Drops the least recently used indexes (never `keep`, just used) until the cache is within
/// [`CACHED_SESSIONS`] and [`CACHED_MESSAGES`].
fn evict(cache: &mut HashMap<String, Cached>, keep: &str) {
    evict_to(cache, keep, CACHED_SESSIONS, CACHED_MESSAGES);
}

fn evict_to(cache: &mut HashMap<String, Cached>, keep: &str, sessions: usize, messages: usize) {
    let mut held: usize = cache.values().map(|(_, n, _)| n).sum();
    while cache.len() > sessions || held > messages {
        let oldest = cache.iter().filter(|(k, _)| k.as_str() != keep).min_by_key(|(_, (used, ..))| *used);
        let Some(oldest) = oldest.map(|(k, _)| k.clone()) else { return };
        if let Some((_, n, _)) = cache.remove(&oldest) {
            held -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, content: &str) -> Message {
        Message { seq, role: Role::User, content: content.into(), name: None, metadata: None, created_at_ms: seq }
    }

    fn index(texts: &[&str]) -> SessionIndex {
        let mut index = SessionIndex::new();
        for (i, t) in texts.iter().enumerate() {
            index.add(message(i as u64 + 1, t));
        }
        index
    }

    /// BM25 finds the message sharing the query's rare words, only among earlier messages.
    #[test]
    fn lexical_recall() {
        let index = index(&[
            "We decided to use Postgres for the audit log.",
            "Lunch was pizza.",
            "The build is green.",
            "Postgres it is, then.",
        ]);
        let hits = index.search("which database for the audit log?", None, 4, 2);
        assert!(hits.semantic.is_empty(), "no vectors, no neighbours");
        assert_eq!(hits.lexical[0].seq, 1, "{hits:?}");
        assert!(hits.lexical.iter().all(|h| h.seq < 4));
        assert!(index.search("quantum chromodynamics", None, 5, 3).lexical.is_empty());
    }

    fn seqs(hits: &[Hit]) -> Vec<u64> {
        hits.iter().map(|h| h.seq).collect()
    }

    /// A query vector of the index's model finds the nearest messages, noise left out.
    #[test]
    fn vector_recall() {
        let mut index = index(&["alpha", "beta", "gamma", "delta"]);
        index.add_vectors("m", [(1, vec![1.0, 0.0]), (2, vec![0.0, 1.0]), (3, vec![0.7, 0.7]), (4, vec![1.0, -0.1])]);
        let hits = index.search("zzz", Some(("m", &[0.0, 1.0])), 10, 3);
        assert_eq!(seqs(&hits.semantic), [2, 3], "1 and 4 are below the cutoff");
        // A query vector of another model is not comparable: BM25 alone, which finds nothing.
        let other = index.search("zzz", Some(("other", &[0.0, 1.0])), 10, 2);
        assert!(other.semantic.is_empty() && other.lexical.is_empty(), "{other:?}");
    }

    fn hit(seq: u64, content: &str, score: f32) -> Hit {
        Hit {
            seq,
            role: Role::User,
            content: content.into(),
            created_at_ms: seq,
            source: None,
            chat: None,
            replaces: None,
            score,
            same: crate::memory::lexical::fingerprint(content),
        }
    }

    /// Fusion keeps what either ranking found (a BM25 name match the embeddings scored as noise
    /// is not lost), puts what both found first, counts a line once and keeps `limit`.
    #[test]
    fn fusion_of_both_rankings() {
        let candidates = Candidates {
            lexical: vec![hit(1, "Ticket ZX-41 is Priya's", 7.0), hit(2, "we use Postgres", 3.0)],
            semantic: vec![
                hit(3, "the database is Postgres", 0.9),
                hit(2, "We use  Postgres", 0.8),
                hit(4, "lunch was pizza", 0.2),
            ],
        };
        let fused = fuse(candidates, 3);
        // 2 in both; 1 and 3 each first in one list, the newer first.
        assert_eq!(seqs(&fused), [2, 3, 1], "{fused:?}");
        assert!(fused[0].score > fused[1].score && fused[1].score == fused[2].score);
        assert!(fuse(Candidates::default(), 3).is_empty());
    }

    /// Each ranking is sorted by its own score across indexes before ranks are given.
    #[test]
    fn fusion_ranks_across_indexes() {
        let mut all = Candidates { lexical: vec![hit(1, "weak match", 1.0)], semantic: Vec::new() };
        all.extend(Candidates { lexical: vec![hit(9, "strong match", 5.0)], semantic: Vec::new() });
        assert_eq!(seqs(&fuse(all, 2)), [9, 1]);
    }

    /// A new upload of a workspace file replaces the chunks of the old one.
    #[test]
    fn newer_uploads_supersede_older_chunks() {
        let mut index = SessionIndex::new();
        let chunk = |seq, upload: &str, text: &str| Message {
            metadata: Some(serde_json::json!({ "file": "notes.md", "upload": upload })),
            ..message(seq, text)
        };
        index.add(chunk(1, "a", "the deploy key lives in vault"));
        index.add(chunk(2, "b", "the deploy key lives in the keychain"));
        let hits = index.search("where does the deploy key live", None, 10, 5).lexical;
        assert_eq!(seqs(&hits), [2]);
        assert_eq!(hits[0].source.as_deref(), Some("file notes.md"));
    }

    /// The cache drops least recently used indexes to stay within its bounds on sessions and
    /// messages, and never the one just used.
    #[test]
    fn the_cache_stays_within_its_bounds() {
        let now = Instant::now();
        let entry = |age: u64, n: usize| {
            (now + std::time::Duration::from_secs(100 - age), n, Arc::new(tokio::sync::Mutex::new(SessionIndex::new())))
        };
        let mut cache: HashMap<String, Cached> =
            [("old", entry(30, 400)), ("mid", entry(20, 300)), ("new", entry(10, 200)), ("used", entry(40, 500))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        evict_to(&mut cache, "used", 10, 800);
        let mut left: Vec<&str> = cache.keys().map(String::as_str).collect();
        left.sort();
        assert_eq!(left, ["new", "used"], "the oldest went until 700 messages were left");
        evict_to(&mut cache, "used", 1, 1_000);
        assert_eq!(cache.keys().collect::<Vec<_>>(), ["used"]);
    }

    /// Indexes record what they hold once caught up.
    #[tokio::test]
    async fn cached_indexes_count_their_messages() {
        let store = crate::store::SledStore::temporary().unwrap();
        let scope = Scope::new("u", "s");
        let new = |i: u64| crate::store::NewMessage {
            role: Role::User,
            content: format!("message {i}"),
            name: None,
            metadata: None,
            created_at_ms: i,
        };
        store.append(&scope, (1..=3).map(new).collect(), None).await.unwrap();
        let indexes = Indexes::default();
        let session = store.get_session("u", "s").await.unwrap().unwrap();
        indexes.get(&store, &session).await.unwrap();
        assert_eq!(indexes.held(), (1, 3));
    }
}
