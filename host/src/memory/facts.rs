//! Facts: short statements about the user and their work that hold until a newer one about the
//! same subject replaces it ("the audit log database is MySQL" after "... is Postgres"). The
//! replaced one stays as history. Current facts are recalled into every chat of the user, from a
//! new chat's first message on.
//!
//! Found without a model in what the user says: "remember (that) …", "note that …", "we
//! decided …", "decision: …"; "forget …" removes the facts it names. With
//! `[memory] facts_from_model`, the chat's own model is also asked in the background, every few
//! turns, for the facts in what was said (JSON, reusing known subjects so updates replace).
//! `POST /memory/facts` adds or corrects one, `DELETE /memory/facts/{id}` removes one with its
//! history.
//!
//! Stored per user in a hidden session (`facts:<user>:a`, or `:b`), one message per version:
//! the statement as content, the subject and the message it came from as metadata; a version's
//! time is when it became valid. Removing a fact rewrites the others into the other slot and
//! deletes the old one, so removed text leaves the store ([`Slots`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::index::Indexes;
use super::slots::Slots;
use super::{Error, Model};
use crate::store::{Message, NewMessage, Role, Scope, Session, Store};

/// What the model is told when asked for the facts in a conversation.
const EXTRACT: &str = "You keep a memory of durable facts about the user and their work: names, roles, \
preferences, decisions, settings, places, dates. From the conversation below, list what is worth remembering \
in later conversations, each fact one short sentence that stands on its own. Leave out questions, small talk, \
and what is only true for the moment. When a fact updates one of the known subjects, use that subject exactly. \
Reply with JSON only: {\"facts\": [{\"subject\": \"what it is about, 1-5 words\", \"statement\": \"the fact\"}]}, \
or {\"facts\": []} when there is nothing to keep.";
/// Messages of a chat shown to the model per extraction, at most (the newest).
const EXTRACT_MESSAGES: usize = 20;
/// Facts kept from one extraction, at most.
const EXTRACT_FACTS: usize = 10;
/// New messages in a chat before its model is asked for facts again.
pub const EXTRACT_EVERY: u64 = 6;

/// Longest statement kept, in characters.
pub const STATEMENT_CHARS: usize = 300;
/// Words of a subject at most; longer ones are not a subject but a statement.
const SUBJECT_WORDS: usize = 8;

/// The two hidden sessions a user's facts may live in.
pub fn slots(user: &str) -> Slots {
    Slots { ids: [format!("facts:{user}:a"), format!("facts:{user}:b")], label: "facts".into() }
}

/// Whether a session id is a facts session (never shown as a chat).
pub fn is_facts(session: &str) -> bool {
    session.starts_with("facts:")
}

/// A statement to keep, and what it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub subject: String,
    pub statement: String,
}

impl Found {
    /// A statement whose subject is read from it.
    pub fn new(statement: &str) -> Self {
        let statement = tidy(statement);
        Self { subject: subject_of(&statement), statement }
    }

    /// The stored version's metadata.
    pub fn metadata(&self, source: Option<(&str, u64)>) -> Value {
        let source = source.map(|(session, seq)| json!({ "session": session, "seq": seq }));
        json!({ "fact": { "id": id_of(&self.subject), "subject": self.subject, "source": source } })
    }
}

/// What a user's message asks to keep and to forget.
#[derive(Debug, Default, PartialEq)]
pub struct Said {
    pub keep: Vec<Found>,
    pub forget: Vec<String>,
}

impl Said {
    /// Nothing to keep or forget.
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty() && self.forget.is_empty()
    }
}

/// Reads explicit statements and "forget …" requests from what the person wrote in a user's
/// message (not an agent's tagged context), sentence by sentence. Questions ("remember when
/// …?") are neither.
pub fn read(message: &str) -> Said {
    let mut said = Said::default();
    for sentence in sentences(message) {
        // ASCII lowercasing keeps byte offsets, so cut points in `lower` are cut points here.
        let lower = sentence.to_ascii_lowercase();
        // Lead-ins ("ok, please remember …") come off, word by word.
        let mut lower = lower.as_str();
        while let Some(rest) = ["please", "also", "and", "ok", "okay", "so"]
            .iter()
            .find_map(|word| lower.strip_prefix(word).filter(|rest| rest.starts_with([',', ' '])))
        {
            lower = rest.trim_start_matches([',', ' ']);
        }
        let at = sentence.len() - lower.len();
        if let Some(rest) = ["forget that ", "forget about ", "forget "].iter().find_map(|p| lower.strip_prefix(p)) {
            let what = rest.trim().trim_end_matches(['.', '!']);
            if !what.is_empty() && !sentence.ends_with('?') {
                said.forget.push(what.to_string());
            }
            continue;
        }
        if sentence.ends_with('?') {
            continue;
        }
        // Keep what follows the cue; a decision keeps its own wording. After a bare "remember"
        // only a statement counts ("remember my cat is named Biscuit", not "remember the llama").
        let cues = [
            "remember that ",
            "remember: ",
            "remember, ",
            "remember ",
            "note that ",
            "keep in mind that ",
            "decision: ",
        ];
        let statement = match cues.iter().find_map(|p| lower.strip_prefix(p).map(|rest| (p, rest.len()))) {
            Some((&"remember ", rest)) if !has_verb(&lower[lower.len() - rest..]) => continue,
            Some((_, rest)) => &sentence[sentence.len() - rest..],
            None if ["we decided ", "i decided ", "we've decided ", "we agreed ", "we have decided "]
                .iter()
                .any(|p| lower.starts_with(p)) =>
            {
                &sentence[at..]
            }
            None => continue,
        };
        if statement.split_whitespace().count() >= 2 {
            said.keep.push(Found::new(statement));
        }
    }
    said
}

/// Sentences of a message: its own lines, cut after `.`, `!` and `?` where a space follows
/// (so "v1.2" and "9.5" stay whole).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in super::own_lines(text) {
        let mut start = 0;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let end = i + c.len_utf8();
            if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|(_, next)| next.is_whitespace()) {
                out.push(line[start..end].trim());
                start = end;
            }
        }
        out.push(line[start..].trim());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// A statement as kept: trimmed, capitalised, ending in a full stop, cut to length.
fn tidy(statement: &str) -> String {
    let statement = statement.trim().trim_end_matches(['.', '!', ' ']);
    let mut out: String = statement.chars().take(STATEMENT_CHARS).collect();
    if let Some(first) = out.chars().next() {
        out.replace_range(..first.len_utf8(), &first.to_uppercase().to_string());
    }
    out.push('.');
    out
}

/// Verbs a subject ends before.
const VERBS: &[&str] = &[
    "is", "are", "was", "were", "lives", "live", "runs", "run", "uses", "use", "leaves", "starts", "moved", "switched",
    "changed", "rotates", "expires", "has", "have", "belongs", "goes", "happens", "takes",
];

/// Whether `text` reads as a statement: it has one of [`VERBS`] after its first word.
fn has_verb(text: &str) -> bool {
    text.split_whitespace().skip(1).any(|w| VERBS.contains(&w.trim_matches(|c: char| !c.is_alphanumeric())))
}

/// What a statement is about, so that statements about one thing replace each other:
/// - "we switched the audit log database to MySQL" (a change): what changed;
/// - "we use Postgres for the audit log database" (a choice): what it is for;
/// - "the audit log database is Postgres": the words before the verb;
///
/// without a leading article or possessive; the statement itself when no short subject shows.
pub fn subject_of(statement: &str) -> String {
    const PEOPLE: &[&str] = &["we", "i", "they", "we've", "i've", "you"];
    const CHANGES: &[&str] = &[
        "switched",
        "moved",
        "changed",
        "migrated",
        "renamed",
        "raised",
        "lowered",
        "bumped",
        "set",
        "increased",
        "decreased",
        "reduced",
        "updated",
    ];
    const CHOICES: &[&str] = &["use", "chose", "picked", "pick", "prefer", "selected", "choose"];
    let lower = statement.to_lowercase();
    let words: Vec<&str> = lower
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let phrase = |mut w: &[&str]| {
        while w.len() > 1 && ["the", "our", "my", "a", "an", "that", "their", "his", "her", "its"].contains(&w[0]) {
            w = &w[1..];
        }
        let first = *w.first()?;
        let pronoun = PEOPLE.contains(&first) || ["it", "this", "that", "there", "he", "she"].contains(&first);
        (w.len() <= SUBJECT_WORDS && !pronoun).then(|| w.join(" "))
    };
    let after = |rest: &[&str], word: &str| rest.iter().position(|w| *w == word);
    if let [who, verb, rest @ ..] = words.as_slice()
        && PEOPLE.contains(who)
    {
        let found = match () {
            _ if CHANGES.contains(verb) => after(rest, "to").and_then(|to| phrase(&rest[..to])),
            _ if CHOICES.contains(verb) => after(rest, "for").and_then(|at| phrase(&rest[at + 1..])),
            _ => None,
        };
        if let Some(subject) = found {
            return subject;
        }
    }
    let verb = words.iter().position(|w| VERBS.contains(w)).filter(|at| (1..=SUBJECT_WORDS).contains(at));
    verb.and_then(|at| phrase(&words[..at])).unwrap_or_else(|| words.join(" "))
}

/// A fact's id: its subject's words, lowercased and joined by `-`.
pub fn id_of(subject: &str) -> String {
    let id = subject
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-");
    id.chars().take(96).collect()
}

/// The messages a marker says are forgotten: the sources of removed facts, which recall then
/// leaves out, so a removed fact does not come back as the message that stated it.
pub fn forgotten_of(message: &Message) -> Vec<(String, u64)> {
    let Some(list) = message.metadata.as_ref().and_then(|m| m.get("forgotten")).and_then(|f| f.as_array()) else {
        return Vec::new();
    };
    list.iter().filter_map(|s| Some((s["session"].as_str()?.to_string(), s["seq"].as_u64()?))).collect()
}

/// The subject id a stored version is filed under.
pub fn id_of_message(message: &Message) -> Option<&str> {
    message.metadata.as_ref()?.get("fact")?.get("id")?.as_str()
}

/// Whether `what` (from "forget …") names this fact: each of its words begins a word of the
/// statement or the subject, or is begun by one ("name" names "named").
pub fn names(what: &str, subject: &str, statement: &str) -> bool {
    const IGNORED: &[&str] = &["the", "a", "an", "my", "our", "that", "about", "what", "said", "i", "we", "is", "was"];
    let words = |text: &str| -> Vec<String> {
        text.to_lowercase()
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .map(|w| w.strip_suffix("'s").unwrap_or(w).trim_matches('\'').to_string())
            .filter(|w| !w.is_empty() && !IGNORED.contains(&w.as_str()))
            .collect()
    };
    let asked = words(what);
    let known = words(&format!("{subject} {statement}"));
    !asked.is_empty()
        && asked
            .iter()
            .all(|a| known.iter().any(|k| k.starts_with(a.as_str()) || (k.len() >= 3 && a.starts_with(k.as_str()))))
}

/// The statements in the model's reply to [`EXTRACT`]: the JSON object in it (code fences and
/// prose around it are ignored) with a `facts` list of `{subject, statement}`. Anything else
/// yields none: a model that cannot do this costs a call, never a wrong fact.
pub fn parse_extracted(reply: &str) -> Vec<Found> {
    let (Some(start), Some(end)) = (reply.find('{'), reply.rfind('}')) else { return Vec::new() };
    let Ok(value) = serde_json::from_str::<Value>(reply.get(start..=end).unwrap_or_default()) else {
        return Vec::new();
    };
    let Some(facts) = value.get("facts").and_then(Value::as_array) else { return Vec::new() };
    facts
        .iter()
        .filter_map(|f| {
            let statement = f.get("statement")?.as_str()?.trim();
            if statement.split_whitespace().count() < 2 || statement.chars().count() > STATEMENT_CHARS {
                return None;
            }
            let mut found = Found::new(statement);
            if let Some(subject) = f.get("subject").and_then(Value::as_str).map(|s| s.trim().to_lowercase())
                && !id_of(&subject).is_empty()
                && subject.split_whitespace().count() <= SUBJECT_WORDS
            {
                found.subject = subject;
            }
            Some(found)
        })
        .take(EXTRACT_FACTS)
        .collect()
}

/// Where a fact came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Source {
    pub session: String,
    pub seq: u64,
}

/// An earlier version of a fact.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Version {
    pub statement: String,
    pub valid_from_ms: u64,
    pub valid_until_ms: u64,
}

/// A fact: its current statement and its history, newest first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fact {
    pub id: String,
    pub subject: String,
    pub statement: String,
    pub valid_from_ms: u64,
    pub source: Option<Source>,
    pub history: Vec<Version>,
}

/// The facts stored as `versions` (one session's messages, oldest first), most recently
/// changed first.
pub fn facts_of(versions: &[Message]) -> Vec<Fact> {
    let mut by_id: BTreeMap<&str, Vec<&Message>> = BTreeMap::new();
    for m in versions {
        if let Some(id) = id_of_message(m) {
            by_id.entry(id).or_default().push(m);
        }
    }
    let mut facts: Vec<Fact> = by_id
        .into_iter()
        .filter_map(|(id, versions)| {
            let current = *versions.last()?;
            let meta = &current.metadata.as_ref()?["fact"];
            let history = versions
                .windows(2)
                .rev()
                .map(|pair| Version {
                    statement: pair[0].content.clone(),
                    valid_from_ms: pair[0].created_at_ms,
                    valid_until_ms: pair[1].created_at_ms,
                })
                .collect();
            Some(Fact {
                id: id.to_string(),
                subject: meta["subject"].as_str().unwrap_or(id).to_string(),
                statement: current.content.clone(),
                valid_from_ms: current.created_at_ms,
                source: meta["source"]["session"]
                    .as_str()
                    .zip(meta["source"]["seq"].as_u64())
                    .map(|(session, seq)| Source { session: session.to_string(), seq }),
                history,
            })
        })
        .collect();
    facts.sort_by(|a, b| b.valid_from_ms.cmp(&a.valid_from_ms).then_with(|| a.id.cmp(&b.id)));
    facts
}

/// Where a user's facts are kept: the store, the indexes to drop when a slot goes, and a lock
/// held while facts are written (a rewrite must not lose a fact added meanwhile). Cheap to
/// clone, so background extraction holds its own.
#[derive(Clone)]
pub(super) struct FactStore {
    store: Arc<dyn Store>,
    indexes: Arc<Indexes>,
    lock: Arc<tokio::sync::Mutex<()>>,
    /// By chat: the last message the model was asked about (in this process; after a restart a
    /// chat's newest messages are read again, and an unchanged statement is not stored twice).
    extracted: Arc<std::sync::Mutex<HashMap<String, u64>>>,
}

impl FactStore {
    pub fn new(store: Arc<dyn Store>, indexes: Arc<Indexes>) -> Self {
        Self { store, indexes, lock: Arc::default(), extracted: Arc::default() }
    }

    /// The last message of the chat the model was asked about; 0 if none yet.
    pub fn extracted_through(&self, chat: &Scope) -> u64 {
        self.extracted.lock().unwrap_or_else(|e| e.into_inner()).get(&chat.key()).copied().unwrap_or(0)
    }

    /// Asks `model` for the facts in the chat's messages since it was last asked (the newest
    /// [`EXTRACT_MESSAGES`]) and keeps them, sourced to the newest user message read. Returns
    /// the facts session and its last seq if anything was written.
    pub async fn extract(&self, chat: &Scope, model: &dyn Model) -> Result<Option<(Scope, u64)>, String> {
        let after = self.extracted_through(chat);
        let messages = self.store.list_messages(chat, None, EXTRACT_MESSAGES).await.map_err(|e| e.to_string())?;
        let new: Vec<&Message> = messages
            .iter()
            .filter(|m| m.seq > after && matches!(m.role, Role::User | Role::Assistant) && !m.content.trim().is_empty())
            .collect();
        let (Some(last), Some(source)) =
            (messages.last().map(|m| m.seq), new.iter().rev().find(|m| m.role == Role::User).map(|m| m.seq))
        else {
            return Ok(None);
        };
        let known: Vec<String> =
            self.list(&chat.user).await.map_err(|e| e.to_string())?.into_iter().map(|f| f.subject).collect();
        let transcript: Vec<String> = new
            .iter()
            .map(|m| {
                let who = if m.role == Role::User { "User" } else { "Assistant" };
                format!("{who}: {}", super::own_lines(&m.content).collect::<Vec<_>>().join("\n"))
            })
            .collect();
        let known = if known.is_empty() { "(none)".to_string() } else { known.join("; ") };
        let prompt = format!("Known subjects: {known}\n\nConversation:\n{}", transcript.join("\n"));
        let reply = model.complete(EXTRACT, &prompt).await?;
        let found = parse_extracted(&reply);
        self.extracted.lock().unwrap_or_else(|e| e.into_inner()).insert(chat.key(), last);
        if found.is_empty() {
            return Ok(None);
        }
        let (_, written) =
            self.remember(&chat.user, found, Some((&chat.session, source))).await.map_err(|e| e.to_string())?;
        Ok(written)
    }

    /// The session holding `user`'s facts, if they have any.
    pub async fn session(&self, user: &str) -> Result<Option<Session>, Error> {
        slots(user).current(self.store.as_ref(), &self.indexes, user).await
    }

    /// Every stored version of `user`'s facts, oldest first.
    async fn versions(&self, session: &Session) -> Result<Vec<Message>, Error> {
        Ok(super::export::all_messages(self.store.as_ref(), &Scope::of(session)).await?)
    }

    /// `user`'s facts, most recently changed first, each with its history.
    pub async fn list(&self, user: &str) -> Result<Vec<Fact>, Error> {
        match self.session(user).await? {
            Some(session) => Ok(facts_of(&self.versions(&session).await?)),
            None => Ok(Vec::new()),
        }
    }

    /// Keeps `found` statements (each replacing the current one of its subject; one already
    /// current is not repeated), said in `source` if they come from a chat. Returns the facts
    /// as they now stand, and the facts session with its last seq if anything was written
    /// (to embed what is new).
    pub async fn remember(
        &self,
        user: &str,
        found: Vec<Found>,
        source: Option<(&str, u64)>,
    ) -> Result<(Vec<Fact>, Option<(Scope, u64)>), Error> {
        let _writing = self.lock.lock().await;
        super::slots::retrying(|| self.remember_once(user, found.clone(), source)).await
    }

    async fn remember_once(
        &self,
        user: &str,
        found: Vec<Found>,
        source: Option<(&str, u64)>,
    ) -> Result<(Vec<Fact>, Option<(Scope, u64)>), Error> {
        let session = self.session(user).await?;
        let mut versions = match &session {
            Some(session) => self.versions(session).await?,
            None => Vec::new(),
        };
        let current = facts_of(&versions);
        let now = crate::store::stamp_ms();
        let mut seen = std::collections::HashSet::new();
        let new: Vec<NewMessage> = found
            .into_iter()
            .filter(|f| {
                let id = id_of(&f.subject);
                let unchanged = current.iter().any(|c| c.id == id && c.statement == f.statement);
                !unchanged && seen.insert(id)
            })
            .map(|f| NewMessage {
                role: Role::System,
                content: f.statement.clone(),
                name: None,
                metadata: Some(f.metadata(source)),
                created_at_ms: now,
            })
            .collect();
        if new.is_empty() {
            return Ok((current, None));
        }
        let slots = slots(user);
        let scope = match &session {
            Some(session) => Scope::of(session),
            None => slots.first(user),
        };
        let stored = self.store.append(&scope, new, Some(slots.title(0))).await?;
        let written = stored.last().map(|last| (scope, last.seq));
        versions.extend(stored);
        Ok((facts_of(&versions), written))
    }

    /// Removes the facts `doomed` picks (with their history): the others are rewritten into the
    /// other slot ([`Slots::rewrite`]). The messages that
    /// stated the removed facts are marked forgotten there, so recall leaves them out too.
    /// Returns how many facts were removed.
    async fn remove_facts(&self, user: &str, doomed: impl Fn(&Fact) -> bool) -> Result<usize, Error> {
        let _writing = self.lock.lock().await;
        super::slots::retrying(|| self.remove_once(user, &doomed)).await
    }

    async fn remove_once(&self, user: &str, doomed: &impl Fn(&Fact) -> bool) -> Result<usize, Error> {
        let Some(session) = self.session(user).await? else { return Ok(0) };
        let versions = self.versions(&session).await?;
        let gone: std::collections::HashSet<String> =
            facts_of(&versions).into_iter().filter(|f| doomed(f)).map(|f| f.id).collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let sources: Vec<Value> = versions
            .iter()
            .filter(|m| id_of_message(m).is_some_and(|id| gone.contains(id)))
            .filter_map(|m| m.metadata.as_ref()?.get("fact")?.get("source").filter(|s| s.is_object()).cloned())
            .collect();
        // Other facts, and earlier markers: forgotten stays forgotten.
        let kept: Vec<&Message> = versions
            .iter()
            .filter(|m| id_of_message(m).map_or(!forgotten_of(m).is_empty(), |id| !gone.contains(id)))
            .collect();
        let marker = (!sources.is_empty()).then(|| NewMessage {
            role: Role::System,
            content: String::new(),
            name: None,
            metadata: Some(json!({ "forgotten": sources })),
            created_at_ms: crate::store::stamp_ms(),
        });
        if kept.is_empty() && marker.is_none() {
            self.indexes.forget(&Scope::of(&session));
            self.store.delete_session(&Scope::of(&session)).await?;
        } else {
            slots(user)
                .rewrite(self.store.as_ref(), &self.indexes, &session, &kept, marker.into_iter().collect())
                .await?;
        }
        Ok(gone.len())
    }

    /// Removes one fact with its history; false if `user` has no fact `id`.
    pub async fn delete(&self, user: &str, id: &str) -> Result<bool, Error> {
        Ok(self.remove_facts(user, |f| f.id == id).await? > 0)
    }

    /// Removes the facts that `what` (from "forget …") names.
    pub async fn forget(&self, user: &str, what: &str) -> Result<usize, Error> {
        self.remove_facts(user, |f| names(what, &f.subject, &f.statement)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    fn kept(message: &str) -> Vec<(String, String)> {
        read(message).keep.into_iter().map(|f| (f.subject, f.statement)).collect()
    }

    /// Cues make facts, with the subject before the verb; questions and chatter do not.
    #[test]
    fn explicit_statements() {
        assert_eq!(
            kept("Remember that the audit log database is Postgres. Thanks!"),
            [("audit log database".into(), "The audit log database is Postgres.".into())]
        );
        assert_eq!(
            kept("please remember: my cat is named Biscuit"),
            [("cat".into(), "My cat is named Biscuit.".into())]
        );
        assert_eq!(
            kept("ok, we decided to ship on Tuesdays."),
            [("we decided to ship on tuesdays".into(), "We decided to ship on Tuesdays.".into())]
        );
        assert_eq!(
            kept("Note that the gateway timeout is 45 seconds"),
            [("gateway timeout".into(), "The gateway timeout is 45 seconds.".into())]
        );
        assert!(kept("Do you remember the gateway timeout?").is_empty());
        assert!(kept("Remember when we met?").is_empty());
        assert!(kept("remember the llama").is_empty(), "not a statement");
        assert_eq!(kept("Remember my cat is named Biscuit."), [("cat".into(), "My cat is named Biscuit.".into())]);
        assert!(kept("Don't forget to run the tests.").is_empty());
        assert!(read("Don't forget to run the tests.").forget.is_empty());
        assert!(kept("The build is green.").is_empty());
        let agent =
            "<system-reminder>\nNote that the file is open.\n</system-reminder>\nRemember that CI runs on Fridays.";
        assert_eq!(kept(agent), [("ci".into(), "CI runs on Fridays.".into())], "an agent's context is not the user's");
    }

    /// Changes, choices and plain statements about one thing share a subject.
    #[test]
    fn subjects() {
        for (statement, subject) in [
            ("The audit log database is Postgres.", "audit log database"),
            ("We switched the audit log database to MySQL.", "audit log database"),
            ("We use Postgres for the audit log database.", "audit log database"),
            ("We raised the API rate limit to 500 requests per minute.", "api rate limit"),
            ("Our API rate limit is 100 requests per minute.", "api rate limit"),
            ("I moved the standup to 10:15.", "standup"),
            ("My cat's name is Biscuit.", "cat's name"),
            ("We decided to ship on Tuesdays.", "we decided to ship on tuesdays"),
            ("It is raining.", "it is raining"),
            ("We switched to MySQL.", "we switched to mysql"),
            ("We use it for the", "the"),
            ("", ""),
        ] {
            assert_eq!(subject_of(statement), subject, "{statement}");
        }
    }

    proptest::proptest! {
        /// Whatever a user writes, reading it for facts never panics (cut points are byte
        /// offsets into text of any script), and what it keeps is a tidy statement.
        #[test]
        fn reading_any_message_is_safe(message in "(?s).{0,200}", cue in "(remember that |Forget |note that |We decided |REMEMBER: )?") {
            let said = read(&format!("{cue}{message}"));
            for found in said.keep {
                proptest::prop_assert!(found.statement.ends_with('.'));
                proptest::prop_assert!(found.statement.chars().count() <= STATEMENT_CHARS + 1);
            }
            let _ = subject_of(&message);
        }
    }

    /// "forget …" asks to forget what it names, which matches by word beginnings.
    #[test]
    fn forgetting() {
        assert_eq!(read("Please forget my cat's name.").forget, ["my cat's name"]);
        assert_eq!(read("forget about the gateway timeout").forget, ["the gateway timeout"]);
        assert!(names("my cat's name", "cat", "My cat is named Biscuit."));
        assert!(names("the gateway timeout", "gateway timeout", "The gateway timeout is 45 seconds."));
        assert!(!names("the gateway timeout", "cat", "My cat is named Biscuit."));
        assert!(!names("the", "cat", "My cat is named Biscuit."), "nothing named");
    }

    /// The model's JSON is read wherever it sits in the reply; what is not that shape is none.
    #[test]
    fn extracted_facts() {
        let reply = "Sure:\n```json\n{\"facts\": [{\"subject\": \"Audit log database\", \"statement\": \"the audit log database is MySQL\"}, \
            {\"statement\": \"My cat is named Biscuit\"}, {\"subject\": \"x\", \"statement\": \"ok\"}]}\n```";
        let found: Vec<(String, String)> =
            parse_extracted(reply).into_iter().map(|f| (f.subject, f.statement)).collect();
        assert_eq!(
            found,
            [
                ("audit log database".into(), "The audit log database is MySQL.".into()),
                ("cat".into(), "My cat is named Biscuit.".into()),
            ]
        );
        for nothing in
            ["", "no facts here", "{\"facts\": []}", "{\"facts\": \"none\"}", "Echo (offline demo): you said {"]
        {
            assert!(parse_extracted(nothing).is_empty(), "{nothing}");
        }
    }

    fn version(seq: u64, subject: &str, statement: &str) -> Message {
        let found = Found { subject: subject.into(), statement: statement.into() };
        Message {
            seq,
            role: Role::System,
            content: statement.into(),
            name: None,
            metadata: Some(found.metadata(Some(("chat", seq * 10)))),
            created_at_ms: seq * 1000,
        }
    }

    /// Versions of a subject make one fact: the newest is current, the rest its history.
    #[test]
    fn versions_make_facts() {
        let facts = facts_of(&[
            version(1, "audit log database", "The audit log database is Postgres."),
            version(2, "cat", "My cat is named Biscuit."),
            version(3, "audit log database", "The audit log database is MySQL."),
        ]);
        assert_eq!(facts.len(), 2);
        let db = &facts[0];
        assert_eq!(
            (db.id.as_str(), db.statement.as_str(), db.valid_from_ms),
            ("audit-log-database", "The audit log database is MySQL.", 3000)
        );
        assert_eq!(db.source, Some(Source { session: "chat".into(), seq: 30 }));
        assert_eq!(
            db.history,
            [Version {
                statement: "The audit log database is Postgres.".into(),
                valid_from_ms: 1000,
                valid_until_ms: 3000
            }]
        );
        assert!(facts[1].history.is_empty());
    }
}
