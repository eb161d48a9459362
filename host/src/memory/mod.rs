//! The memory manager: owns sessions and builds each prompt from the system prompt, a
//! long-term section (the rolling summary and the earlier messages most relevant to the new
//! one) and the short-term window of recent turns, all fitted to a token budget. It is the
//! only layer that talks to the [`Store`].
//!
//! Files: `index` (recall: BM25 and embeddings, fused), `lexical` (the BM25 index), `vectors`
//! (embeddings and their nearest neighbours), `facts` (statements kept per user, current or
//! replaced), `slots` (hidden sessions that lose parts by being rewritten: facts, workspaces),
//! `summary` (rolling summaries), `background` (the jobs that write them), `workspace`
//! (attached files), `export` (JSONL), `model` (what it needs from a provider).

mod background;
pub mod export;
mod facts;
mod index;
mod lexical;
mod model;
mod slots;
mod summary;
mod vectors;
pub mod workspace;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::MemoryConfig;
use crate::store::{self, Embedding, Message, NewMessage, Role, Scope, Session, Store, Summary};
use crate::tokens;
use background::Background;
pub use facts::{Fact, Found, STATEMENT_CHARS, Source, Version, id_of};
use index::{Candidates, Hit, Indexes};
pub use model::{Model, Purpose};

/// Longest session title, in characters, derived from the first message.
const TITLE_CHARS: usize = 60;
/// Share of the prompt budget the long-term section may take.
const LONG_TERM_SHARE: usize = 4;
/// Longest wait for the query's embedding before recall falls back to BM25.
const EMBED_WAIT: Duration = Duration::from_secs(2);
/// Messages embedded per background job; older ones catch up on later turns.
const EMBED_BATCH: usize = 64;
/// Messages one turn adds: the question and the reply.
const TURN_MESSAGES: usize = 2;
/// Other chats searched by cross-session recall: the most recently active.
const OTHER_SESSIONS: usize = 20;
/// Facts written into a prompt at most: the most relevant, then the newest.
const FACTS_RECALLED: usize = 5;

/// Why a memory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such session for this user (another user's session is reported the same way).
    #[error("session {0:?} not found")]
    SessionNotFound(String),
    /// Workspace files over `[memory] workspace_quota_mb`.
    #[error("the user's workspaces hold {used} bytes; {adding} more would pass the quota of {limit}")]
    QuotaExceeded { used: u64, adding: u64, limit: u64 },
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: String,
    /// A stored message's metadata (its tool calls or the call it answers), for the replay.
    pub metadata: Option<serde_json::Value>,
}

impl PromptMessage {
    fn system(content: &str) -> Self {
        Self { role: Role::System, content: content.to_string(), metadata: None }
    }
}

/// What to build a prompt for.
pub struct PromptRequest<'a> {
    pub scope: &'a Scope,
    /// Whether the session already exists (a new one has no history to read).
    pub existing: bool,
    pub system: Option<&'a str>,
    pub message: &'a str,
    /// Tokens the whole prompt may use.
    pub budget: usize,
    /// A workspace whose files are recalled too.
    pub workspace: Option<&'a str>,
    /// Where the recent turns come from.
    pub history: History,
    /// Whether the conversation is stored (a session). One that is not (a client's request
    /// without a session) gets the user's facts and the workspace, not recall from other chats.
    pub stored: bool,
}

/// Who holds the conversation's recent turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// The store: the prompt gets the short-term window from it.
    Stored,
    /// The client, which sent its own history: the prompt is only the long-term section, and
    /// recall skips the session's newest `messages` (the client has them already).
    Client { messages: usize, tokens: usize },
}

/// A built prompt and how it was made.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub messages: Vec<PromptMessage>,
    /// Earlier messages (and workspace chunks) recalled into the long-term section.
    pub recalled: usize,
    /// Whether the rolling summary was included.
    pub summarized: bool,
    /// The long-term section on its own (also in `messages`), for clients that send their own
    /// history and only want memory added.
    pub section: Option<String>,
}

/// A turn to record once the provider has answered.
pub struct Turn {
    /// What the client added since the last reply: its message, or tool results.
    pub input: Vec<Input>,
    pub reply: String,
    /// Kept with the reply: provider, model, usage, finish reason.
    pub metadata: serde_json::Value,
}

/// One message of a turn's input, with what a dialect needs to replay it (a tool result's call id).
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub role: Role,
    pub content: String,
    pub metadata: Option<serde_json::Value>,
}

impl Input {
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: Role::User, content: content.into(), metadata: None }
    }
}

/// What `GET /memory` shows beside the messages.
#[derive(Debug, Serialize)]
pub struct Details {
    pub summary: Option<Summary>,
    /// Messages with an embedding, and the model that made them.
    pub embedded: usize,
    pub embedding_model: Option<String>,
    /// Whether background work (embeddings, summary) for the session is queued or running.
    pub updating: bool,
}

/// A file attached to a workspace.
#[derive(Debug, Serialize)]
pub struct WorkspaceFile {
    pub name: String,
    pub chunks: usize,
    pub uploaded_at_ms: u64,
}

/// Sessions, history and prompt building over one store.
pub struct Memory {
    store: Arc<dyn Store>,
    config: MemoryConfig,
    indexes: Arc<Indexes>,
    background: Background,
    facts: facts::FactStore,
    /// Workspace writes one at a time (in this process): a replacement rewrites the workspace.
    workspace_writes: tokio::sync::Mutex<()>,
}

/// What a source of recall is to the prompt being built.
enum Origin {
    /// The user's facts, which have places of their own.
    Facts,
    /// The chat itself, or the workspace it names.
    Own,
    /// Another of the user's chats, by its title.
    Chat(String),
}

/// Sessions that hold something other than a chat (a workspace's files, a user's facts).
fn hidden(session: &str) -> bool {
    workspace::is_workspace(session) || facts::is_facts(session)
}

impl Memory {
    pub fn new(store: Arc<dyn Store>, config: MemoryConfig) -> Self {
        let indexes = Arc::new(Indexes::default());
        let facts = facts::FactStore::new(store.clone(), indexes.clone());
        let workspace_writes = tokio::sync::Mutex::new(());
        Self { store, config, indexes, background: Background::default(), facts, workspace_writes }
    }

    /// The store's name, for `/status`.
    pub fn store_name(&self) -> &str {
        self.store.name()
    }

    /// The configuration in force.
    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    /// Tokens a prompt may use with a model of `context_window` tokens, keeping `max_tokens`
    /// (or the configured reserve) free for the reply.
    pub fn budget(&self, context_window: usize, max_tokens: Option<u32>) -> usize {
        let reply = max_tokens.map_or(self.config.reply_tokens, |t| t as usize);
        context_window.saturating_sub(reply).min(self.config.max_prompt_tokens).max(1)
    }

    /// The store, for export and import.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stops background summaries and embeddings.
    pub async fn shutdown(&self) {
        self.background.shutdown().await;
    }

    /// The chat session, if it exists and belongs to `user` (a workspace is not a chat).
    pub async fn session(&self, user: &str, id: &str) -> Result<Session, Error> {
        match self.store.get_session(user, id).await? {
            Some(session) if !hidden(id) => Ok(session),
            _ => Err(Error::SessionNotFound(id.to_string())),
        }
    }

    /// For a session id the client chose: the session if it already exists for `user`. Ids
    /// are per user, so another user's session of that id is neither shared nor in the way.
    pub async fn claim(&self, user: &str, id: &str) -> Result<Option<Session>, Error> {
        if hidden(id) {
            return Err(Error::SessionNotFound(id.to_string()));
        }
        Ok(self.store.get_session(user, id).await?)
    }

    /// The user's chats, most recently active first (workspaces are not chats).
    pub async fn sessions(&self, user: &str, limit: usize) -> Result<Vec<Session>, Error> {
        // Workspaces and facts share the store's listing: read further while they crowd chats out.
        let mut asked = limit.saturating_add(64);
        loop {
            let mut sessions = self.store.list_sessions(user, asked).await?;
            let all = sessions.len() < asked;
            sessions.retain(|s| !hidden(&s.id));
            if all || sessions.len() >= limit {
                sessions.truncate(limit);
                return Ok(sessions);
            }
            asked = asked.saturating_mul(4);
        }
    }

    /// A page of history, oldest first: up to `limit` messages before `before`.
    pub async fn history(&self, scope: &Scope, before: Option<u64>, limit: usize) -> Result<Vec<Message>, Error> {
        Ok(self.store.list_messages(scope, before, limit).await?)
    }

    /// The session's summary and what of it is indexed for recall.
    pub async fn details(&self, scope: &Scope) -> Result<Details, Error> {
        let summary = self.store.get_summary(scope).await?;
        let embeddings = self.store.list_embeddings(scope).await?;
        let embedding_model = embeddings.last().map(|e| e.model.clone());
        let updating = self.busy(scope);
        Ok(Details { summary, embedded: embeddings.len(), embedding_model, updating })
    }

    /// Deletes the session and everything derived from it.
    pub async fn delete(&self, scope: &Scope) -> Result<(), Error> {
        self.indexes.forget(scope);
        match self.store.delete_session(scope).await? {
            true => Ok(()),
            false => Err(Error::SessionNotFound(scope.session.clone())),
        }
    }

    /// What goes before a new message: the system prompt, a long-term section (summary and
    /// recalled messages older than the window) and the short-term window. The caller adds
    /// the message itself, as the client sent it.
    #[tracing::instrument(name = "memory prompt", skip_all, fields(codexcontinue.budget_tokens = request.budget as i64))]
    pub async fn prompt(&self, request: PromptRequest<'_>, model: &dyn Model) -> Result<Prompt, Error> {
        let fixed = match request.history {
            History::Stored => tokens::count_prompt(request.system.into_iter().chain([request.message])),
            History::Client { tokens, .. } => tokens,
        };
        let room = request.budget.saturating_sub(fixed);
        let session = match request.existing {
            true => self.store.get_session(&request.scope.user, &request.scope.session).await?,
            false => None,
        };
        let last_seq = session.as_ref().map_or(0, |s| s.last_seq);
        let index = match &session {
            Some(session) => Some(self.indexes.get(self.store.as_ref(), session).await?),
            None => None,
        };
        let window_of = async |budget| match (&index, request.history) {
            (Some(index), History::Stored) => index.lock().await.window(self.config.window_messages, budget),
            _ => Vec::new(),
        };

        // The window takes what the long-term section leaves; with nothing long-term to say it
        // takes everything. A client's own history stands in for the window.
        let reserve = room / LONG_TERM_SHARE;
        let window = window_of(room - reserve).await;
        let window_start = match request.history {
            History::Stored => window.first().map_or(last_seq + 1, |m| m.seq),
            History::Client { messages, .. } => (last_seq + 1).saturating_sub(messages as u64).max(1),
        };
        let long_term = self.long_term(&request, session.as_ref(), window_start, reserve, model).await?;
        let (window, section) = match long_term {
            Some(section) => (window, Some(section)),
            None => (window_of(room).await, None),
        };

        let mut messages = Vec::with_capacity(window.len() + 3);
        if let Some(system) = request.system {
            messages.push(PromptMessage::system(system));
        }
        let (recalled, summarized) = section.as_ref().map_or((0, false), |s| (s.recalled, s.summarized));
        let section = section.map(|s| s.text);
        if let Some(text) = &section {
            messages.push(PromptMessage::system(text));
        }
        messages.extend(window.into_iter().map(|m| PromptMessage {
            role: m.role,
            content: m.content,
            metadata: m.metadata,
        }));

        Ok(Prompt { messages, recalled, summarized, section })
    }

    /// The long-term section, if there is anything older than the window, in the user's other
    /// chats or in the workspace to bring back, within `budget` tokens.
    #[tracing::instrument(name = "memory recall", skip_all, fields(codexcontinue.budget_tokens = budget as i64))]
    async fn long_term(
        &self,
        request: &PromptRequest<'_>,
        session: Option<&Session>,
        window_start: u64,
        budget: usize,
        model: &dyn Model,
    ) -> Result<Option<Section>, Error> {
        let older = session.is_some() && window_start > 1;
        let across = self.config.recall_across_sessions && request.stored;
        let workspace = match request.workspace {
            Some(w) => self.workspace(&request.scope.user, w).await?,
            None => None,
        };
        let facts = match self.config.facts {
            true => self.facts.session(&request.scope.user).await?,
            false => None,
        };
        if !older && !across && workspace.is_none() && facts.is_none() {
            return Ok(None);
        }
        let summary = match older {
            true => self.store.get_summary(request.scope).await?.filter(|s| !s.text.is_empty()),
            false => None,
        };
        // What to search: (session, recall only below this seq, what it is), facts first.
        let mut sources: Vec<(Session, u64, Origin)> =
            facts.into_iter().map(|f| (f, u64::MAX, Origin::Facts)).collect();
        if let Some(session) = session.filter(|_| older) {
            sources.push((session.clone(), window_start, Origin::Own));
        }
        if across {
            // Also on a new chat's first message: what was said elsewhere is all there is then.
            let others = self.sessions(&request.scope.user, OTHER_SESSIONS + 1).await?;
            sources.extend(others.into_iter().filter(|s| s.id != request.scope.session).take(OTHER_SESSIONS).map(
                |s| {
                    let title = s.title.clone().unwrap_or_else(|| "untitled".into());
                    (s, u64::MAX, Origin::Chat(title))
                },
            ));
        }
        if let Some(session) = workspace {
            sources.push((session, u64::MAX, Origin::Own));
        }
        // Each index offers twice what is recalled, so fusion has depth to choose from.
        let depth = self.config.recall * 2;
        let mut candidates = Candidates::default();
        let mut query_vector: Option<(String, Vec<f32>)> = None;
        let mut embedded = false;
        let mut facts_hits = Vec::new();
        let mut forgotten = std::collections::HashMap::new();
        for (source, before, origin) in sources {
            let index = self.indexes.get(self.store.as_ref(), &source).await?;
            let index = index.lock().await;
            if !embedded && index.vector_model().is_some() {
                // Asked once per prompt, and only when some index has vectors to compare with.
                embedded = true;
                query_vector = embed_query(model, request.message).await;
            }
            let query = query_vector.as_ref().map(|(m, v)| (m.as_str(), v.as_slice()));
            if let Origin::Facts = origin {
                // Facts have their own places: the most relevant, then the newest.
                facts_hits = index::fuse(index.search(request.message, query, before, depth), FACTS_RECALLED);
                for hit in index.newest(FACTS_RECALLED) {
                    if facts_hits.len() < FACTS_RECALLED && facts_hits.iter().all(|h| h.seq != hit.seq) {
                        facts_hits.push(hit);
                    }
                }
                forgotten.clone_from(index.forgotten());
                continue;
            }
            let mut found = index.search(request.message, query, before, depth);
            if let Some(gone) = forgotten.get(&source.id) {
                let keep = |hit: &Hit| !gone.contains(&hit.seq);
                found.lexical.retain(keep);
                found.semantic.retain(keep);
            }
            if let Origin::Chat(title) = origin {
                found
                    .lexical
                    .iter_mut()
                    .chain(found.semantic.iter_mut())
                    .for_each(|hit| hit.chat = Some(title.clone()));
            }
            candidates.extend(found);
        }
        let hits = index::fuse(candidates, self.config.recall);
        Ok(Section::build(facts_hits, summary.as_ref(), hits, budget))
    }

    /// Stores the user's message and the reply as one atomic, durable append (creating the
    /// session, titled after the message, if it is new), then, in the background, embeds new
    /// messages and refreshes the summary once the history has outgrown the window.
    #[tracing::instrument(name = "memory record", skip_all)]
    pub async fn record(
        &self,
        scope: &Scope,
        turn: Turn,
        model: Option<Arc<dyn Model>>,
    ) -> Result<Vec<Message>, Error> {
        let now = store::stamp_ms();
        let first = turn.input.iter().find(|m| m.role == Role::User).or(turn.input.first());
        let title = first.map(|m| title_of(&m.content));
        // What the user asked to keep or forget, by input position (its stored seq comes later).
        let said: Vec<(usize, facts::Said)> = match self.config.facts && !hidden(&scope.session) {
            true => turn
                .input
                .iter()
                .enumerate()
                .filter(|(_, m)| m.role == Role::User)
                .map(|(i, m)| (i, facts::read(&m.content)))
                .filter(|(_, said)| !said.is_empty())
                .collect(),
            false => Vec::new(),
        };
        let input = turn.input.into_iter().map(|m| NewMessage {
            role: m.role,
            content: m.content,
            name: None,
            metadata: m.metadata,
            created_at_ms: now,
        });
        let reply = NewMessage {
            role: Role::Assistant,
            content: turn.reply,
            name: None,
            metadata: Some(turn.metadata),
            created_at_ms: now,
        };
        let messages = input.chain([reply]).collect();
        let stored = self.store.append(scope, messages, title).await?;
        if let (Some(model), Some(last)) = (model.clone(), stored.last().map(|m| m.seq)) {
            self.after_append(scope, last, model).await?;
        }
        for (i, said) in said {
            let source = stored.get(i).map(|m| (scope.session.as_str(), m.seq));
            self.act_on(&scope.user, said, source, model.clone()).await;
        }
        Ok(stored)
    }

    /// For a request memory does not store (no session): keeps and forgets the facts that what
    /// the user said asks for, as a stored turn would.
    pub async fn note(&self, user: &str, said: &[&str], model: Option<Arc<dyn Model>>) {
        if !self.config.facts {
            return;
        }
        for text in said {
            let said = facts::read(text);
            if !said.is_empty() {
                self.act_on(user, said, None, model.clone()).await;
            }
        }
    }

    /// Forgets and keeps what `said` names. The turn does not fail for it: failures are logged.
    async fn act_on(&self, user: &str, said: facts::Said, source: Option<(&str, u64)>, model: Option<Arc<dyn Model>>) {
        for what in &said.forget {
            if let Err(e) = self.forget(user, what).await {
                tracing::warn!("facts not forgotten: {e}");
            }
        }
        if !said.keep.is_empty()
            && let Err(e) = self.remember(user, said.keep, source, model).await
        {
            tracing::warn!("facts not kept: {e}");
        }
    }

    /// Starts the background work a new append calls for.
    async fn after_append(&self, scope: &Scope, last_seq: u64, model: Arc<dyn Model>) -> Result<(), Error> {
        let store = self.store.clone();
        let Some(session) = self.store.get_session(&scope.user, &scope.session).await? else {
            return Ok(());
        };
        let index = self.indexes.get(self.store.as_ref(), &session).await?;
        // Jobs write only into this incarnation: if the session is deleted meanwhile (and maybe
        // created again under its id), what they made of the deleted messages is dropped.
        let scope = &Scope::of(&session);
        if self.config.embeddings {
            let (job_scope, job_model) = (scope.clone(), model.clone());
            self.background.request(format!("embed:{}", scope.key()), move || {
                let (store, scope, index, model) = (store.clone(), job_scope.clone(), index.clone(), job_model.clone());
                async move {
                    if let Err(e) = embed_new(store.as_ref(), &scope, &index, model.as_ref()).await {
                        tracing::warn!(session = %scope.session, "embeddings not updated: {e}");
                    }
                }
            });
        }
        if self.config.facts
            && self.config.facts_from_model
            && !hidden(&scope.session)
            && last_seq.saturating_sub(self.facts.extracted_through(scope)) >= facts::EXTRACT_EVERY
        {
            let (facts, indexes, job_scope, job_model) =
                (self.facts.clone(), self.indexes.clone(), scope.clone(), model.clone());
            let (store, embeddings) = (self.store.clone(), self.config.embeddings);
            self.background.request(format!("extract:{}", scope.key()), move || {
                let (facts, store, indexes) = (facts.clone(), store.clone(), indexes.clone());
                let (scope, model) = (job_scope.clone(), job_model.clone());
                async move {
                    match facts.extract(&scope, model.as_ref()).await {
                        Ok(Some((kept, _))) if embeddings => {
                            if let Err(e) = embed_session(store.as_ref(), &indexes, &kept, model.as_ref()).await {
                                tracing::warn!("facts not embedded: {e}");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(session = %scope.session, "facts not extracted: {e}"),
                    }
                }
            });
        }
        if !self.config.summaries || hidden(&scope.session) {
            return Ok(());
        }
        let done = self.store.get_summary(scope).await?.map_or(0, |s| s.through_seq);
        let window = self.config.window_messages as u64;
        if last_seq.saturating_sub(done) > window {
            // Keep the newest half-window verbatim; everything before it goes into the summary.
            let (store, job_scope) = (self.store.clone(), scope.clone());
            self.background.request(format!("summary:{}", scope.key()), move || {
                let (store, scope, model) = (store.clone(), job_scope.clone(), model.clone());
                async move {
                    if let Err(e) = summary::summarize(store.as_ref(), model.as_ref(), &scope, window / 2).await {
                        tracing::warn!(session = %scope.session, "summary not updated: {e}");
                    }
                }
            });
        }
        Ok(())
    }

    /// Whether background work for the scope's session is still running.
    pub fn busy(&self, scope: &Scope) -> bool {
        let key = scope.key();
        ["embed", "summary", "extract"].iter().any(|job| self.background.is_busy(&format!("{job}:{key}")))
    }

    /// Attaches a text file to a workspace: chunked, stored and indexed for recall. A file of
    /// the same name is replaced: the workspace's other files are rewritten without it
    /// ([`slots`]), so its old text leaves the store. Refused when the user's workspaces would
    /// hold more than `[memory] workspace_quota_mb`.
    pub async fn add_file(
        &self,
        user: &str,
        workspace: &str,
        name: &str,
        content: &str,
        model: Option<Arc<dyn Model>>,
    ) -> Result<WorkspaceFile, Error> {
        let _writing = self.workspace_writes.lock().await;
        slots::retrying(|| self.add_file_once(user, workspace, name, content, model.clone())).await
    }

    async fn add_file_once(
        &self,
        user: &str,
        workspace: &str,
        name: &str,
        content: &str,
        model: Option<Arc<dyn Model>>,
    ) -> Result<WorkspaceFile, Error> {
        let slots = workspace::slots(user, workspace);
        let current = slots.current(self.store.as_ref(), &self.indexes, user).await?;
        let now = store::stamp_ms();
        let upload = uuid::Uuid::new_v4().to_string();
        let chunks = workspace::chunks(content);
        let messages: Vec<NewMessage> = chunks
            .iter()
            .enumerate()
            .map(|(i, text)| NewMessage {
                role: Role::System,
                content: text.clone(),
                name: None,
                metadata: Some(serde_json::json!({ "file": name, "upload": upload, "chunk": i })),
                created_at_ms: now,
            })
            .collect();
        // A file of that name: the other files' chunks, kept, and the bytes it frees.
        let (kept, replaced) = match &current {
            Some(session) => {
                let index = self.indexes.get(self.store.as_ref(), session).await?;
                let index = index.lock().await;
                match index.has_file(name) {
                    true => {
                        let kept = index.chunks_except(name);
                        let kept_bytes: u64 = kept.iter().map(|m| m.content.len() as u64).sum();
                        (Some(kept), index.bytes() - kept_bytes)
                    }
                    false => (None, 0),
                }
            }
            None => (None, 0),
        };
        let adding: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let used = self.user_workspace_bytes(user).await?;
        let limit = self.config.workspace_quota_mb.saturating_mul(1 << 20);
        if used.saturating_sub(replaced).saturating_add(adding) > limit {
            return Err(Error::QuotaExceeded { used: used.saturating_sub(replaced), adding, limit });
        }
        let (scope, stored) = match (current, kept) {
            (Some(session), Some(kept)) => {
                let kept: Vec<&Message> = kept.iter().collect();
                let (fresh, stored) =
                    slots.rewrite(self.store.as_ref(), &self.indexes, &session, &kept, messages).await?;
                (Scope::of(&fresh), stored)
            }
            (Some(session), None) => {
                (Scope::of(&session), self.store.append(&Scope::of(&session), messages, None).await?)
            }
            (None, _) => {
                let scope = slots.first(user);
                let stored = self.store.append(&scope, messages, Some(slots.title(0))).await?;
                (scope, stored)
            }
        };
        if let (Some(model), Some(last)) = (model, stored.last().map(|m| m.seq)) {
            self.after_append(&scope, last, model).await?;
        }
        Ok(WorkspaceFile { name: name.to_string(), chunks: chunks.len(), uploaded_at_ms: now })
    }

    /// Removes a file from a workspace (the others are rewritten without it); false if the
    /// workspace has no such file.
    pub async fn delete_file(&self, user: &str, workspace: &str, name: &str) -> Result<bool, Error> {
        let _writing = self.workspace_writes.lock().await;
        slots::retrying(|| self.delete_file_once(user, workspace, name)).await
    }

    async fn delete_file_once(&self, user: &str, workspace: &str, name: &str) -> Result<bool, Error> {
        let slots = workspace::slots(user, workspace);
        let Some(session) = slots.current(self.store.as_ref(), &self.indexes, user).await? else {
            return Err(Error::SessionNotFound(workspace.to_string()));
        };
        let kept = {
            let index = self.indexes.get(self.store.as_ref(), &session).await?;
            let index = index.lock().await;
            if !index.has_file(name) {
                return Ok(false);
            }
            index.chunks_except(name)
        };
        let kept: Vec<&Message> = kept.iter().collect();
        slots.rewrite(self.store.as_ref(), &self.indexes, &session, &kept, Vec::new()).await?;
        Ok(true)
    }

    /// The workspace session, if the user has that workspace.
    async fn workspace(&self, user: &str, workspace: &str) -> Result<Option<Session>, Error> {
        workspace::slots(user, workspace).current(self.store.as_ref(), &self.indexes, user).await
    }

    /// Bytes of text in a workspace session.
    async fn workspace_bytes(&self, session: &Session) -> Result<u64, Error> {
        Ok(self.indexes.get(self.store.as_ref(), session).await?.lock().await.bytes())
    }

    /// Bytes of text in all of the user's workspaces.
    async fn user_workspace_bytes(&self, user: &str) -> Result<u64, Error> {
        let mut total = 0;
        for session in self.store.list_sessions(user, usize::MAX).await? {
            if workspace::is_workspace(&session.id) {
                total += self.workspace_bytes(&session).await?;
            }
        }
        Ok(total)
    }

    /// The files of a workspace.
    pub async fn files(&self, user: &str, workspace: &str) -> Result<Vec<WorkspaceFile>, Error> {
        let Some(session) = self.workspace(user, workspace).await? else {
            return Err(Error::SessionNotFound(workspace.to_string()));
        };
        let index = self.indexes.get(self.store.as_ref(), &session).await?;
        let files = index.lock().await.files();
        Ok(files.into_iter().map(|(name, chunks, at)| WorkspaceFile { name, chunks, uploaded_at_ms: at }).collect())
    }

    /// Whether `user` has facts that prompts would carry.
    pub async fn has_facts(&self, user: &str) -> Result<bool, Error> {
        Ok(self.config.facts && self.facts.session(user).await?.is_some())
    }

    /// `user`'s facts, most recently changed first, each with its history.
    pub async fn facts(&self, user: &str) -> Result<Vec<Fact>, Error> {
        self.facts.list(user).await
    }

    /// Keeps `found` statements as facts of `user` (see [`facts`]), said in `source` if they
    /// come from a chat, and embeds them in the background with `model`. Returns the facts as
    /// they now stand.
    pub async fn remember(
        &self,
        user: &str,
        found: Vec<Found>,
        source: Option<(&str, u64)>,
        model: Option<Arc<dyn Model>>,
    ) -> Result<Vec<Fact>, Error> {
        let (facts, written) = self.facts.remember(user, found, source).await?;
        if let (Some(model), Some((scope, last))) = (model, written) {
            self.after_append(&scope, last, model).await?;
        }
        Ok(facts)
    }

    /// Removes one fact of `user` with its history; false if there is no fact `id`.
    pub async fn delete_fact(&self, user: &str, id: &str) -> Result<bool, Error> {
        self.facts.delete(user, id).await
    }

    /// Removes the facts of `user` that `what` (from "forget …") names; how many.
    pub async fn forget(&self, user: &str, what: &str) -> Result<usize, Error> {
        self.facts.forget(user, what).await
    }

    /// Deletes a workspace and its files.
    pub async fn delete_workspace(&self, user: &str, workspace: &str) -> Result<(), Error> {
        let _writing = self.workspace_writes.lock().await;
        let mut deleted = false;
        for id in workspace::slots(user, workspace).ids {
            let scope = Scope::new(user, id);
            self.indexes.forget(&scope);
            deleted |= self.store.delete_session(&scope).await?;
        }
        match deleted {
            true => Ok(()),
            false => Err(Error::SessionNotFound(workspace.to_string())),
        }
    }
}

async fn embed_query(model: &dyn Model, text: &str) -> Option<(String, Vec<f32>)> {
    match tokio::time::timeout(EMBED_WAIT, model.embed(vec![text.to_string()], Purpose::Query)).await {
        Ok(Ok(Some((name, mut vectors)))) if vectors.len() == 1 => Some((name, vectors.remove(0))),
        Ok(Err(e)) => {
            tracing::debug!("query embedding failed, recall falls back to BM25: {e}");
            None
        }
        _ => None,
    }
}

/// Embeds what is new in `scope`'s session (as it is now), in the background's stead.
async fn embed_session(store: &dyn Store, indexes: &Indexes, scope: &Scope, model: &dyn Model) -> Result<(), String> {
    let session = store.get_session(&scope.user, &scope.session).await.map_err(|e| e.to_string())?;
    let Some(session) = session else { return Ok(()) };
    let index = indexes.get(store, &session).await.map_err(|e| e.to_string())?;
    embed_new(store, &Scope::of(&session), &index, model).await
}

/// Embeds the messages of the session's index that have no vector yet, and stores them.
async fn embed_new(
    store: &dyn Store,
    scope: &Scope,
    index: &tokio::sync::Mutex<index::SessionIndex>,
    model: &dyn Model,
) -> Result<(), String> {
    // Newest first, so a long backlog never delays the messages most likely to be asked about.
    let (mut pending, known) = {
        let index = index.lock().await;
        (index.unembedded(EMBED_BATCH), index.vector_model().map(str::to_string))
    };
    if pending.len() > TURN_MESSAGES
        && let Some(known) = known
    {
        // More is missing than a turn adds: messages written through another host, which may
        // have embedded them already. Their vectors are read rather than paid for again.
        let wanted: std::collections::HashSet<u64> = pending.iter().map(|(seq, _)| *seq).collect();
        let stored = store.list_embeddings(scope).await.map_err(|e| e.to_string())?;
        let found = stored.into_iter().filter(|e| e.model == known && wanted.contains(&e.seq));
        let mut index = index.lock().await;
        index.add_vectors(&known, found.map(|e| (e.seq, e.vector)));
        pending = index.unembedded(EMBED_BATCH);
    }
    if pending.is_empty() {
        return Ok(());
    }
    let Some((name, vectors)) =
        model.embed(pending.iter().map(|(_, t)| t.clone()).collect(), Purpose::Document).await?
    else {
        return Ok(());
    };
    if vectors.len() != pending.len() {
        return Err(format!("asked for {} embeddings, got {}", pending.len(), vectors.len()));
    }
    let items: Vec<Embedding> = pending
        .iter()
        .zip(&vectors)
        .map(|((seq, _), v)| Embedding { seq: *seq, model: name.clone(), vector: v.clone() })
        .collect();
    store.put_embeddings(scope, items).await.map_err(|e| e.to_string())?;
    index.lock().await.add_vectors(&name, pending.into_iter().map(|(seq, _)| seq).zip(vectors));
    Ok(())
}

/// The long-term section of a prompt.
struct Section {
    text: String,
    recalled: usize,
    summarized: bool,
}

impl Section {
    /// The user's current facts, the summary, then the recalled messages that fit, chosen by
    /// relevance (`facts` and `hits` come best first) and written oldest first with date and
    /// time, so the model can tell which of two lines that disagree is the newer.
    fn build(facts: Vec<Hit>, summary: Option<&Summary>, hits: Vec<Hit>, budget: usize) -> Option<Self> {
        const HEADER: &str = "Long-term memory (said before the recent messages below):";
        const FACTS: &str = "\nFacts the user has stated (current; each replaces what it names as replaced):";
        const RECALLED: &str =
            "\nRelevant earlier messages, oldest first (where they disagree, the newer one is current):";
        static FIXED: std::sync::LazyLock<[usize; 3]> =
            std::sync::LazyLock::new(|| [tokens::count(HEADER), tokens::count(FACTS), tokens::count(RECALLED)]);
        let mut text = String::from(HEADER);
        let mut used = FIXED[0];
        let mut stated = 0;
        for fact in facts {
            let since = minute(fact.created_at_ms);
            let line = match &fact.replaces {
                Some(old) => format!("\n- {} (since {since} UTC; replaced: \u{201c}{old}\u{201d})", fact.content),
                None => format!("\n- {} (since {since} UTC)", fact.content),
            };
            let cost = tokens::count(&line) + if stated == 0 { FIXED[1] } else { 0 };
            if used + cost > budget {
                continue;
            }
            if stated == 0 {
                text.push_str(FACTS);
            }
            text.push_str(&line);
            used += cost;
            stated += 1;
        }
        let mut summarized = false;
        if let Some(summary) = summary {
            let line = format!("\nSummary: {}", summary.text);
            let cost = tokens::count(&line);
            if used + cost <= budget {
                text.push_str(&line);
                used += cost;
                summarized = true;
            }
        }
        used += FIXED[2];
        let mut chosen = Vec::new();
        for hit in hits {
            let when = minute(hit.created_at_ms);
            let who = match (&hit.source, hit.role) {
                (Some(source), _) => source.clone(),
                (None, Role::User) => "user".into(),
                (None, _) => "assistant".into(),
            };
            let line = match &hit.chat {
                Some(chat) => format!("\n- {who} ({when} UTC, in chat \u{201c}{chat}\u{201d}): {}", hit.content),
                None => format!("\n- {who} ({when} UTC): {}", hit.content),
            };
            let cost = tokens::count(&line);
            if used + cost > budget {
                continue;
            }
            used += cost;
            chosen.push((hit.created_at_ms, hit.seq, line));
        }
        let recalled = chosen.len();
        if recalled > 0 {
            chosen.sort();
            text.push_str(RECALLED);
            chosen.into_iter().for_each(|(_, _, line)| text.push_str(&line));
        }
        (stated > 0 || summarized || recalled > 0).then_some(Self { text, recalled: recalled + stated, summarized })
    }
}

/// `2026-12-03 13:40`: a time in UTC to the minute.
fn minute(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(|t| t[..16].replace('T', " "))
        .unwrap_or_default()
}

/// The lines of `message` that the person wrote, trimmed and not blank: coding agents wrap
/// context in tagged blocks (`<system-reminder>` ... `</system-reminder>`, Codex's
/// `<user_instructions>` with the project's AGENTS.md), which are neither a title nor facts the
/// user stated.
fn own_lines(message: &str) -> impl Iterator<Item = &str> {
    let mut inside = 0usize;
    message.lines().map(str::trim).filter(move |line| {
        let tag = line.starts_with('<') && line.ends_with('>') && !line.contains(' ');
        match (tag, line.starts_with("</")) {
            (true, true) => inside = inside.saturating_sub(1),
            (true, false) => inside += 1,
            _ => {}
        }
        !tag && inside == 0 && !line.is_empty()
    })
}

/// The first line of what the person wrote in `message`, cut to [`TITLE_CHARS`] characters.
fn title_of(message: &str) -> String {
    let first = message.trim().lines().next().unwrap_or_default().trim();
    let line = own_lines(message).next().unwrap_or(first);
    match line.char_indices().nth(TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use async_trait::async_trait;
    use serde_json::json;

    /// A model without embeddings whose summaries say how much they covered.
    struct Fake;

    #[async_trait]
    impl Model for Fake {
        async fn complete(&self, _system: &str, user: &str) -> Result<String, String> {
            Ok(format!(
                "summary of {} lines",
                user.lines().filter(|l| l.starts_with("User:") || l.starts_with("Assistant:")).count()
            ))
        }
        async fn embed(
            &self,
            _texts: Vec<String>,
            _purpose: Purpose,
        ) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
            Ok(None)
        }
    }

    fn memory(window_messages: usize, max_prompt_tokens: usize) -> Memory {
        let config = MemoryConfig { window_messages, max_prompt_tokens, ..MemoryConfig::default() };
        Memory::new(Arc::new(SledStore::temporary().unwrap()), config)
    }

    async fn turns(memory: &Memory, scope: &Scope, texts: &[(&str, &str)]) {
        for (user, reply) in texts {
            let input = vec![Input::user(*user)];
            let turn = Turn { input, reply: reply.to_string(), metadata: serde_json::json!({}) };
            memory.record(scope, turn, Some(Arc::new(Fake))).await.unwrap();
        }
    }

    /// Waits, ten seconds at most, for the background work on the scope's session to end.
    async fn settle(memory: &Memory, scope: &Scope) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while memory.busy(scope) {
            assert!(std::time::Instant::now() < deadline, "background work on {} never finished", scope.session);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn request<'a>(scope: &'a Scope, system: Option<&'a str>, message: &'a str, budget: usize) -> PromptRequest<'a> {
        PromptRequest {
            scope,
            existing: true,
            system,
            message,
            budget,
            workspace: None,
            history: History::Stored,
            stored: true,
        }
    }

    fn contents(prompt: &Prompt) -> Vec<&str> {
        prompt.messages.iter().map(|m| m.content.as_str()).collect()
    }

    /// The prompt is system, then the most recent history in order.
    #[tokio::test]
    async fn prompt_keeps_recent_history_in_order() {
        let memory = memory(40, 10_000);
        let scope = Scope::new("u", "s");
        turns(&memory, &scope, &[("question 0", "answer 0"), ("question 1", "answer 1")]).await;
        let prompt = memory.prompt(request(&scope, Some("be brief"), "next", 10_000), &Fake).await.unwrap();
        assert_eq!(contents(&prompt), ["be brief", "question 0", "answer 0", "question 1", "answer 1"]);
        assert_eq!(prompt.messages[0].role, Role::System);
        assert_eq!(prompt.messages[1].role, Role::User);
        assert_eq!(prompt.messages[2].role, Role::Assistant);
        assert_eq!((prompt.recalled, prompt.summarized), (0, false));
    }

    /// A tight budget keeps only the newest turns that fit.
    #[tokio::test]
    async fn prompt_fits_the_budget() {
        let memory = memory(40, 1_000);
        let scope = Scope::new("u", "s");
        let texts: Vec<(String, String)> = (0..10).map(|i| (format!("question {i}"), format!("answer {i}"))).collect();
        let texts: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        turns(&memory, &scope, &texts).await;
        let prompt = memory.prompt(request(&scope, None, "next", 40), &Fake).await.unwrap();
        assert!(prompt.messages.len() < 20, "{prompt:?}");
        let total = tokens::count_prompt(prompt.messages.iter().map(|m| m.content.as_str()).chain(["next"]));
        assert!(total <= 40, "{total} tokens");
    }

    /// A decision that slid out of the window is recalled (BM25) into the long-term section.
    #[tokio::test]
    async fn decisions_outside_the_window_are_recalled() {
        let memory = memory(6, 10_000);
        let scope = Scope::new("u", "s");
        let mut texts = vec![("We decided to use Postgres for the audit log.", "Noted: Postgres for the audit log.")];
        texts.extend(std::iter::repeat_n(("What about lunch?", "Pizza is fine."), 10));
        turns(&memory, &scope, &texts).await;
        let prompt = memory
            .prompt(request(&scope, None, "Which database did we choose for the audit log?", 10_000), &Fake)
            .await
            .unwrap();
        assert!(prompt.recalled >= 1, "{prompt:?}");
        let section = &prompt.messages[0];
        assert_eq!(section.role, Role::System);
        assert!(section.content.contains("We decided to use Postgres for the audit log."), "{}", section.content);
        assert!(
            !contents(&prompt)[1..].contains(&"We decided to use Postgres for the audit log."),
            "not in the window"
        );
    }

    /// A line said several times fills one recall slot, leaving the others for other matches.
    #[tokio::test]
    async fn repeated_lines_are_recalled_once() {
        let memory = memory(6, 10_000);
        let scope = Scope::new("u", "s");
        let mut texts = vec![("The audit log lives in Postgres.", "Noted.")];
        texts.extend(std::iter::repeat_n(("the audit log lives in  Postgres.", "Noted again."), 3));
        texts.push(("The audit log is kept for 90 days.", "Noted."));
        texts.extend(std::iter::repeat_n(("What about lunch?", "Pizza is fine."), 8));
        turns(&memory, &scope, &texts).await;
        let prompt =
            memory.prompt(request(&scope, None, "Where does the audit log live?", 10_000), &Fake).await.unwrap();
        let section = prompt.section.expect("a long-term section");
        assert_eq!(section.to_lowercase().matches("the audit log lives in").count(), 1, "{section}");
        assert!(section.contains("kept for 90 days"), "a free slot went to the next match: {section}");
    }

    /// Once the history outgrows the window, a summary is written in the background and then
    /// appears in the prompt.
    #[tokio::test]
    async fn summaries_are_written_in_the_background() {
        let memory = memory(4, 10_000);
        let scope = Scope::new("u", "s");
        let texts: Vec<(String, String)> = (0..5).map(|i| (format!("question {i}"), format!("answer {i}"))).collect();
        let texts: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        turns(&memory, &scope, &texts).await;
        settle(&memory, &scope).await;
        let summary = memory.details(&scope).await.unwrap().summary.expect("a summary");
        assert_eq!(summary.through_seq, 8, "10 messages, the newest half-window of 2 kept verbatim");
        assert_eq!(summary.text, "summary of 8 lines");
        let prompt = memory.prompt(request(&scope, None, "next", 10_000), &Fake).await.unwrap();
        assert!(prompt.summarized);
        assert!(prompt.messages[0].content.contains("Summary: summary of 8 lines"));
        memory.shutdown().await;
    }

    /// A model whose summaries wait until the test lets them finish.
    struct Gated {
        started: tokio::sync::Notify,
        go: tokio::sync::Semaphore,
    }

    #[async_trait]
    impl Model for Gated {
        async fn complete(&self, system: &str, user: &str) -> Result<String, String> {
            self.started.notify_one();
            let _go = self.go.acquire().await.map_err(|e| e.to_string())?;
            Fake.complete(system, user).await
        }
        async fn embed(
            &self,
            _texts: Vec<String>,
            _purpose: Purpose,
        ) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
            Ok(None)
        }
    }

    /// A summary still being written when its session is deleted lands nowhere: not in the
    /// deleted session, and not in a new one started under the same id meanwhile.
    #[tokio::test]
    async fn a_summary_of_deleted_messages_lands_nowhere() {
        let memory = memory(4, 10_000);
        let scope = Scope::new("u", "s");
        let model = Arc::new(Gated { started: tokio::sync::Notify::new(), go: tokio::sync::Semaphore::new(0) });
        for i in 0..5 {
            let turn =
                Turn { input: vec![Input::user(format!("secret {i}"))], reply: "ok".into(), metadata: json!({}) };
            memory.record(&scope, turn, Some(model.clone())).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(10), model.started.notified()).await.expect("the summary started");
        memory.delete(&scope).await.unwrap();
        let turn = Turn { input: vec![Input::user("a fresh start")], reply: "ok".into(), metadata: json!({}) };
        memory.record(&scope, turn, Some(Arc::new(Fake))).await.unwrap();

        model.go.add_permits(100);
        settle(&memory, &scope).await;
        assert_eq!(memory.details(&scope).await.unwrap().summary, None, "no summary of the deleted messages");
        let kept = memory.history(&scope, None, 100).await.unwrap();
        assert_eq!(kept.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["a fresh start", "ok"]);
        memory.shutdown().await;
    }

    /// A turn that was running when its session was deleted stores nothing, and the session
    /// stays deleted.
    #[tokio::test]
    async fn a_turn_in_flight_does_not_bring_a_deleted_session_back() {
        let memory = memory(40, 10_000);
        turns(&memory, &Scope::new("u", "s"), &[("secret plans", "noted")]).await;
        // What a turn holds while the provider answers: the session as it found it.
        let running = Scope::of(&memory.session("u", "s").await.unwrap());
        memory.delete(&running).await.unwrap();
        let turn = Turn { input: vec![Input::user("and more")], reply: "late".into(), metadata: json!({}) };
        let late = memory.record(&running, turn, Some(Arc::new(Fake))).await;
        assert!(matches!(late, Err(Error::Store(store::Error::Gone(_)))), "{late:?}");
        assert!(matches!(memory.session("u", "s").await, Err(Error::SessionNotFound(_))));
        assert!(memory.sessions("u", 10).await.unwrap().is_empty());
    }

    /// A rewrite of the facts cut short (both slots stored) resolves to the later generation,
    /// and the leftover slot is deleted.
    #[tokio::test]
    async fn a_facts_rewrite_cut_short_keeps_the_newer_slot() {
        let memory = memory(40, 10_000);
        let found = |s: &str| vec![Found::new(s)];
        memory.remember("u", found("The deploy day is Tuesday."), None, None).await.unwrap();
        memory.remember("u", found("The cat is named Biscuit."), None, None).await.unwrap();
        assert!(memory.delete_fact("u", "deploy-day").await.unwrap());
        let [a, b] = facts::slots("u").ids;
        assert!(memory.store.get_session("u", &a).await.unwrap().is_none());
        // What a crash between writing slot b and deleting slot a would have left: an older
        // generation beside the newer one.
        let stale = NewMessage {
            role: Role::System,
            content: "The deploy day is Tuesday.".into(),
            name: None,
            metadata: Some(Found::new("The deploy day is Tuesday.").metadata(None)),
            created_at_ms: 1,
        };
        memory.store.append(&Scope::new("u", &a), vec![stale], Some(facts::slots("u").title(0))).await.unwrap();
        let listed: Vec<String> = memory.facts("u").await.unwrap().into_iter().map(|f| f.id).collect();
        assert_eq!(listed, ["cat"]);
        assert!(memory.store.get_session("u", &a).await.unwrap().is_none(), "the leftover is gone");
        assert!(memory.store.get_session("u", &b).await.unwrap().is_some());
        assert!(memory.sessions("u", 10).await.unwrap().is_empty(), "facts are not chats");
    }

    /// A slot written again after two rewrites is a new incarnation, so no index cached for its
    /// earlier self (here, or on another host) can bring back what was removed from it.
    #[tokio::test]
    async fn each_facts_rewrite_is_a_new_incarnation() {
        let memory = memory(40, 10_000);
        let keep = async |s: &str| memory.remember("u", vec![Found::new(s)], None, None).await.unwrap();
        keep("The cat is named Biscuit.").await;
        keep("The deploy day is Tuesday.").await;
        let [a, b] = facts::slots("u").ids;
        let first = memory.store.get_session("u", &a).await.unwrap().unwrap().created_at_ms;
        assert!(memory.delete_fact("u", "deploy-day").await.unwrap());
        assert!(memory.store.get_session("u", &b).await.unwrap().is_some());
        keep("The office is in Lisbon.").await;
        assert!(memory.delete_fact("u", "office").await.unwrap());
        let again = memory.store.get_session("u", &a).await.unwrap().expect("back in slot a");
        assert_ne!(again.created_at_ms, first);
        let listed: Vec<String> = memory.facts("u").await.unwrap().into_iter().map(|f| f.statement).collect();
        assert_eq!(listed, ["The cat is named Biscuit."]);
    }

    /// A store that, on its first append to a facts slot, first lets `meanwhile` run: another
    /// host's write landing between this host's read of the slot and its append.
    struct Racing {
        inner: Arc<dyn Store>,
        meanwhile: tokio::sync::Mutex<Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>>,
    }

    #[async_trait]
    impl Store for Racing {
        fn name(&self) -> &str {
            "racing"
        }
        async fn get_session(&self, user: &str, session: &str) -> store::Result<Option<Session>> {
            self.inner.get_session(user, session).await
        }
        async fn list_sessions(&self, user: &str, limit: usize) -> store::Result<Vec<Session>> {
            self.inner.list_sessions(user, limit).await
        }
        async fn append(
            &self,
            scope: &Scope,
            m: Vec<NewMessage>,
            title: Option<String>,
        ) -> store::Result<Vec<Message>> {
            if facts::is_facts(&scope.session)
                && let Some(other) = self.meanwhile.lock().await.take()
            {
                other.await;
            }
            self.inner.append(scope, m, title).await
        }
        async fn list_messages(&self, scope: &Scope, before: Option<u64>, limit: usize) -> store::Result<Vec<Message>> {
            self.inner.list_messages(scope, before, limit).await
        }
        async fn delete_session(&self, scope: &Scope) -> store::Result<bool> {
            self.inner.delete_session(scope).await
        }
        async fn put_summary(&self, scope: &Scope, summary: Summary) -> store::Result<()> {
            self.inner.put_summary(scope, summary).await
        }
        async fn get_summary(&self, scope: &Scope) -> store::Result<Option<Summary>> {
            self.inner.get_summary(scope).await
        }
        async fn put_embeddings(&self, scope: &Scope, items: Vec<Embedding>) -> store::Result<()> {
            self.inner.put_embeddings(scope, items).await
        }
        async fn list_embeddings(&self, scope: &Scope) -> store::Result<Vec<Embedding>> {
            self.inner.list_embeddings(scope).await
        }
    }

    /// Two hosts on one store: a fact kept on one while the other rewrites the facts (removing
    /// one) lands in the rewritten slot, and the removed fact stays removed.
    #[tokio::test]
    async fn facts_written_during_another_hosts_rewrite_are_kept() {
        let shared: Arc<dyn Store> = Arc::new(SledStore::temporary().unwrap());
        let here = Arc::new(Memory::new(shared.clone(), MemoryConfig::default()));
        let keep = |s: &str| vec![Found::new(s)];
        here.remember("u", keep("The cat is named Biscuit."), None, None).await.unwrap();
        here.remember("u", keep("The deploy day is Tuesday."), None, None).await.unwrap();
        let remover = here.clone();
        let racing = Racing {
            inner: shared.clone(),
            meanwhile: tokio::sync::Mutex::new(Some(Box::pin(async move {
                assert!(remover.delete_fact("u", "deploy-day").await.unwrap());
            }))),
        };
        let there = Memory::new(Arc::new(racing), MemoryConfig::default());
        there.remember("u", keep("The office is in Lisbon."), None, None).await.unwrap();
        let facts: Vec<String> = here.facts("u").await.unwrap().into_iter().map(|f| f.statement).collect();
        assert_eq!(facts, ["The office is in Lisbon.", "The cat is named Biscuit."]);
        let all = exported(&here, "u").await;
        assert!(!all.contains("Tuesday"), "{all}");
    }

    /// Embeds a text as its length, counting the texts it was asked for.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Model for Counting {
        async fn complete(&self, _: &str, _: &str) -> Result<String, String> {
            Ok(String::new())
        }
        async fn embed(&self, texts: Vec<String>, _: Purpose) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
            self.0.fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
            Ok(Some(("len".into(), texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())))
        }
    }

    /// Two hosts taking turns in one session: each reads the vectors the other made from the
    /// store instead of asking its model for them again.
    #[tokio::test]
    async fn vectors_made_on_another_host_are_read_not_remade() {
        let shared: Arc<dyn Store> = Arc::new(SledStore::temporary().unwrap());
        let config = MemoryConfig { summaries: false, facts: false, ..MemoryConfig::default() };
        let hosts = [Memory::new(shared.clone(), config), Memory::new(shared.clone(), config)];
        let models = [Arc::new(Counting::default()), Arc::new(Counting::default())];
        let turn = async |host: usize, text: &str| {
            let memory = &hosts[host];
            let scope = match memory.claim("u", "s").await.unwrap() {
                Some(session) => Scope::of(&session),
                None => Scope::new("u", "s"),
            };
            let turn = Turn { input: vec![Input::user(text)], reply: format!("re: {text}"), metadata: json!({}) };
            memory.record(&scope, turn, Some(models[host].clone())).await.unwrap();
            settle(memory, &scope).await;
        };
        let asked = |host: usize| models[host].0.load(std::sync::atomic::Ordering::SeqCst);
        turn(1, "first on b").await;
        for text in ["one on a", "two on a", "three on a"] {
            turn(0, text).await;
        }
        assert_eq!((asked(0), asked(1)), (6, 2), "a read b's vectors when it first loaded the session");
        turn(1, "back on b").await;
        assert_eq!(asked(1), 4, "b embedded its own new turn only");
        let details = hosts[1].details(&Scope::new("u", "s")).await.unwrap();
        assert_eq!(details.embedded, 10);
    }

    /// A model that, asked for facts, names the database the conversation mentions last, and
    /// keeps the prompts it was asked with.
    #[derive(Default)]
    struct Extracting {
        asked: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Model for Extracting {
        async fn complete(&self, system: &str, user: &str) -> Result<String, String> {
            assert!(system.starts_with("You keep a memory of durable facts"), "only facts are asked for: {system}");
            self.asked.lock().unwrap().push(user.to_string());
            let db = if user.contains("MySQL") { "MySQL" } else { "Postgres" };
            Ok(format!(
                "{{\"facts\": [{{\"subject\": \"audit log database\", \"statement\": \"The audit log database is {db}\"}}]}}"
            ))
        }
        async fn embed(&self, _: Vec<String>, _: Purpose) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
            Ok(None)
        }
    }

    /// With `facts_from_model`, every few turns the chat's model is asked for facts in the
    /// background; the known subjects go with the question, so a change replaces the old fact.
    #[tokio::test]
    async fn facts_are_extracted_by_the_model_in_the_background() {
        let config = MemoryConfig { summaries: false, facts_from_model: true, ..MemoryConfig::default() };
        let memory = Memory::new(Arc::new(SledStore::temporary().unwrap()), config);
        let model = Arc::new(Extracting::default());
        let scope = Scope::new("u", "s");
        let say = async |text: &str| {
            let scope = match memory.claim("u", "s").await.unwrap() {
                Some(session) => Scope::of(&session),
                None => scope.clone(),
            };
            let turn = Turn { input: vec![Input::user(text)], reply: "ok".into(), metadata: json!({}) };
            memory.record(&scope, turn, Some(model.clone())).await.unwrap();
            settle(&memory, &scope).await;
        };
        say("The audit log moved to Postgres last week.").await;
        say("How do I rotate its credentials?").await;
        assert!(memory.facts("u").await.unwrap().is_empty(), "not asked before six new messages");
        say("Thanks.").await;
        let facts = memory.facts("u").await.unwrap();
        assert_eq!(facts.len(), 1, "{facts:?}");
        assert_eq!(facts[0].statement, "The audit log database is Postgres.");
        assert_eq!(facts[0].source, Some(Source { session: "s".into(), seq: 5 }));
        for text in ["We switched the audit log to MySQL.", "Is the migration done?", "Good."] {
            say(text).await;
        }
        let facts = memory.facts("u").await.unwrap();
        assert_eq!(facts[0].statement, "The audit log database is MySQL.");
        assert_eq!(facts[0].history[0].statement, "The audit log database is Postgres.");
        let asked = model.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 2, "once per six messages");
        assert!(asked[0].starts_with("Known subjects: (none)") && asked[0].contains("User: The audit log moved"));
        assert!(asked[1].starts_with("Known subjects: audit log database"), "{}", asked[1]);
        assert!(!asked[1].contains("moved to Postgres"), "only what is new since the last time");
        memory.shutdown().await;
    }

    /// Facts, their history and what was forgotten move with an export of the user.
    #[tokio::test]
    async fn facts_move_with_an_export() {
        let memory = memory(40, 10_000);
        for statement in ["The deploy day is Tuesday.", "The deploy day is Thursday.", "The office is in Lisbon."] {
            memory.remember("ada", vec![Found::new(statement)], Some(("chat", 7)), None).await.unwrap();
        }
        assert!(memory.delete_fact("ada", "office").await.unwrap());
        let mut out = Vec::new();
        export::export(memory.store.as_ref(), "ada", &mut out).await.unwrap();
        let target = Memory::new(Arc::new(SledStore::temporary().unwrap()), MemoryConfig::default());
        export::import(target.store.as_ref(), out.as_slice()).await.unwrap();
        let facts = target.facts("ada").await.unwrap();
        assert_eq!(facts.len(), 1, "{facts:?}");
        assert_eq!(facts[0].statement, "The deploy day is Thursday.");
        assert_eq!(facts[0].history[0].statement, "The deploy day is Tuesday.");
        let session = target.facts.session("ada").await.unwrap().unwrap();
        let index = target.indexes.get(target.store.as_ref(), &session).await.unwrap();
        assert!(
            index.lock().await.forgotten().get("chat").is_some_and(|seqs| seqs.contains(&7)),
            "the office's source stays forgotten"
        );
    }

    /// Everything `user` has in the store, as an export writes it.
    async fn exported(memory: &Memory, user: &str) -> String {
        let mut out = Vec::new();
        export::export(memory.store.as_ref(), user, &mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Replacing or removing a workspace file takes its old text out of the store (and so out of
    /// exports), keeps the other files with their vectors, and the quota counts what stays.
    #[tokio::test]
    async fn replaced_workspace_files_leave_the_store() {
        let config = MemoryConfig { workspace_quota_mb: 1, ..MemoryConfig::default() };
        let memory = Memory::new(Arc::new(SledStore::temporary().unwrap()), config);
        struct Lengths;
        #[async_trait]
        impl Model for Lengths {
            async fn complete(&self, _: &str, _: &str) -> Result<String, String> {
                Ok(String::new())
            }
            async fn embed(&self, texts: Vec<String>, _: Purpose) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
                Ok(Some(("len".into(), texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())))
            }
        }
        memory.add_file("u", "infra", "runbook.md", "The deploy key is in the old vault.", None).await.unwrap();
        memory.add_file("u", "infra", "style.md", "Indent with four spaces.", Some(Arc::new(Lengths))).await.unwrap();
        let [a, b] = workspace::slots("u", "infra").ids;
        settle(&memory, &Scope::new("u", &a)).await;
        assert_eq!(memory.details(&Scope::new("u", &a)).await.unwrap().embedded, 2);

        memory.add_file("u", "infra", "runbook.md", "The deploy key moved to the secret manager.", None).await.unwrap();
        let all = exported(&memory, "u").await;
        assert!(!all.contains("old vault") && all.contains("secret manager") && all.contains("four spaces"), "{all}");
        assert!(memory.store.get_session("u", &a).await.unwrap().is_none(), "rewritten into the other slot");
        let moved = memory.details(&Scope::new("u", &b)).await.unwrap().embedded;
        assert_eq!(moved, 1, "the kept file's vector moved along, the replaced one's did not");
        let files: Vec<(String, usize)> =
            memory.files("u", "infra").await.unwrap().into_iter().map(|f| (f.name, f.chunks)).collect();
        assert_eq!(files, [("runbook.md".to_string(), 1), ("style.md".to_string(), 1)]);

        assert!(memory.delete_file("u", "infra", "style.md").await.unwrap());
        assert!(!memory.delete_file("u", "infra", "style.md").await.unwrap());
        assert!(!exported(&memory, "u").await.contains("four spaces"));
        assert_eq!(memory.files("u", "infra").await.unwrap().len(), 1);

        // 1 MiB for all of the user's workspaces: a second workspace counts against it, and
        // replacing a file counts only the difference.
        let half = "word ".repeat(110_000);
        memory.add_file("u", "docs", "big.md", &half, None).await.unwrap();
        let refused = memory.add_file("u", "infra", "more.md", &half, None).await;
        assert!(matches!(refused, Err(Error::QuotaExceeded { .. })), "{refused:?}");
        memory.add_file("u", "docs", "big.md", &half, None).await.expect("a replacement of the same size fits");
        memory.add_file("bob", "infra", "more.md", &half, None).await.expect("another user has a quota of their own");
        memory.delete_workspace("u", "docs").await.unwrap();
        memory.add_file("u", "infra", "more.md", &half, None).await.expect("fits once docs are gone");
    }

    /// Many workspaces, newer than a user's chats, do not push the chats out of the listing.
    #[tokio::test]
    async fn chats_are_listed_behind_many_workspaces() {
        let memory = memory(40, 10_000);
        turns(&memory, &Scope::new("u", "chat"), &[("an old chat", "yes")]).await;
        for i in 0..80 {
            memory.add_file("u", &format!("ws-{i}"), "a.md", "notes", None).await.unwrap();
        }
        let ids: Vec<String> = memory.sessions("u", 10).await.unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["chat"]);
    }

    /// Titles come from the first line and are cut on a character boundary.
    #[test]
    fn titles() {
        assert_eq!(title_of("  hello\nworld"), "hello");
        assert_eq!(title_of("<system-reminder>\nbe careful\n</system-reminder>\n\nfix the build"), "fix the build");
        assert_eq!(title_of("<environment_context>"), "<environment_context>", "nothing else: the tag it is");
        let long = "é".repeat(100);
        assert_eq!(title_of(&long).chars().count(), TITLE_CHARS + 1);
    }
}
