//! Recall: per-session indexes of earlier messages, ranked by embeddings when the provider
//! offers them and by BM25 otherwise. Indexes live in a bounded in-process cache and catch up
//! from the store by `seq`, so a session written through another host is indexed here too.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::lexical::{Lexical, same_text};
use crate::store::{self, Message, Role, Scope, Session, Store};
use crate::tokens;

/// Sessions whose indexes stay in memory; the least recently used is dropped beyond this.
const CACHED_SESSIONS: usize = 256;
/// Messages read per store call while catching up.
const PAGE: usize = 1000;
/// Cosine similarity below which an embedding match is noise.
const MIN_COSINE: f32 = 0.15;

/// One recalled message.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub seq: u64,
    pub role: Role,
    pub content: String,
    pub created_at_ms: u64,
    /// Where it came from, for the prompt (`file notes.md` for workspace chunks).
    pub source: Option<String>,
    pub score: f32,
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
    vectors: BTreeMap<u64, Vec<f32>>,
    vector_model: Option<String>,
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
            vectors: BTreeMap::new(),
            vector_model: None,
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
        self.vector_model.as_deref()
    }

    /// Messages with no vector yet.
    pub fn unembedded(&self) -> Vec<(u64, String)> {
        self.messages
            .iter()
            .filter(|(seq, _)| !self.vectors.contains_key(seq))
            .map(|(seq, m)| (*seq, m.content.clone()))
            .collect()
    }

    fn add(&mut self, message: Message) {
        // Workspace chunks superseded by a newer upload of the same file are kept out of recall.
        if let Some(replaced) = superseded(&self.messages, &message) {
            for seq in replaced {
                if let Some(old) = self.messages.remove(&seq) {
                    self.lexical.remove(seq, &old.content);
                }
                self.costs.remove(&seq);
                self.vectors.remove(&seq);
            }
        }
        self.indexed_through = self.indexed_through.max(message.seq);
        if matches!(message.role, Role::User | Role::Assistant | Role::System) && !message.content.trim().is_empty() {
            self.lexical.insert(message.seq, &message.content);
            self.messages.insert(message.seq, message);
        } else if message.role == Role::Tool || message.metadata.as_ref().is_some_and(|m| m.get("tool_calls").is_some())
        {
            self.tool_turns.insert(message.seq, message);
        }
    }

    /// Adds vectors for messages (from the store or freshly computed).
    pub fn add_vectors(&mut self, model: &str, vectors: impl IntoIterator<Item = (u64, Vec<f32>)>) {
        if self.vector_model.as_deref() != Some(model) {
            // Vectors of different models are not comparable; the newest model wins.
            self.vectors.clear();
            self.vector_model = Some(model.to_string());
        }
        self.vectors.extend(vectors.into_iter().filter(|(seq, _)| self.messages.contains_key(seq)));
    }

    /// Up to `limit` messages with `seq < before`, most relevant first. Embeddings rank when a
    /// query vector of the index's model is given and most messages have vectors; BM25 otherwise.
    pub fn search(&self, query: &str, query_vector: Option<(&str, &[f32])>, before: u64, limit: usize) -> Vec<Hit> {
        if limit == 0 || self.messages.range(..before).next().is_none() {
            return Vec::new();
        }
        // "Most" over the whole session: the newer messages `before` leaves out are a few turns.
        let by_vectors = query_vector.filter(|(model, _)| {
            self.vector_model.as_deref() == Some(*model) && self.vectors.len() * 2 >= self.messages.len()
        });
        let ranked = match by_vectors {
            Some((_, q)) => {
                let mut ranked: Vec<(u64, f32)> = self
                    .vectors
                    .range(..before)
                    .map(|(seq, v)| (*seq, cosine(q, v)))
                    .filter(|(_, s)| *s >= MIN_COSINE)
                    .collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                ranked
            }
            // Copies of a line are indexed once, so these are `limit` distinct texts.
            None => self.lexical.search(query, before, limit),
        };
        let mut seen = std::collections::HashSet::new();
        ranked
            .into_iter()
            .filter_map(|(seq, score)| {
                let m = self.messages.get(&seq)?;
                // The same line said twice (a repeated question, a pasted note) takes one slot.
                if !seen.insert(same_text(&m.content)) {
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
                    score,
                })
            })
            .take(limit)
            .collect()
    }
}

/// For a workspace chunk: the chunks of older uploads of the same file.
fn superseded(messages: &BTreeMap<u64, Message>, message: &Message) -> Option<Vec<u64>> {
    let meta = message.metadata.as_ref()?;
    let file = meta.get("file")?.as_str()?;
    let upload = meta.get("upload")?.as_str()?;
    let old: Vec<u64> = messages
        .iter()
        .filter(|(_, m)| {
            m.metadata.as_ref().is_some_and(|md| {
                md.get("file").and_then(|f| f.as_str()) == Some(file)
                    && md.get("upload").and_then(|u| u.as_str()) != Some(upload)
            })
        })
        .map(|(seq, _)| *seq)
        .collect();
    (!old.is_empty()).then_some(old)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norms == 0.0 { 0.0 } else { dot / norms }
}

/// A cached index and when it was last used.
type Cached = (Instant, Arc<tokio::sync::Mutex<SessionIndex>>);

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
        let last_seq = session.last_seq;
        let index = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHED_SESSIONS && !cache.contains_key(&scope.session) {
                let oldest = cache.iter().min_by_key(|(_, (used, _))| *used).map(|(k, _)| k.clone());
                oldest.map(|k| cache.remove(&k));
            }
            let entry = cache
                .entry(scope.session.clone())
                .or_insert_with(|| (Instant::now(), Arc::new(tokio::sync::Mutex::new(SessionIndex::new()))));
            entry.0 = Instant::now();
            entry.1.clone()
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
        drop(guard);
        Ok(index)
    }

    /// Forgets the index of `session` (it was deleted).
    pub fn forget(&self, session: &str) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(session);
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
        assert_eq!(hits[0].seq, 1, "{hits:?}");
        assert!(hits.iter().all(|h| h.seq < 4));
        assert!(index.search("quantum chromodynamics", None, 5, 3).is_empty());
    }

    /// With vectors for most messages, the query vector ranks.
    #[test]
    fn vector_recall() {
        let mut index = index(&["alpha", "beta", "gamma"]);
        index.add_vectors("m", [(1, vec![1.0, 0.0]), (2, vec![0.0, 1.0]), (3, vec![0.7, 0.7])]);
        let hits = index.search("zzz", Some(("m", &[0.0, 1.0])), 10, 2);
        assert_eq!(hits.iter().map(|h| h.seq).collect::<Vec<_>>(), [2, 3]);
        // A query vector of another model falls back to BM25, which finds nothing here.
        assert!(index.search("zzz", Some(("other", &[0.0, 1.0])), 10, 2).is_empty());
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
        let hits = index.search("where does the deploy key live", None, 10, 5);
        assert_eq!(hits.iter().map(|h| h.seq).collect::<Vec<_>>(), [2]);
        assert_eq!(hits[0].source.as_deref(), Some("file notes.md"));
    }
}
