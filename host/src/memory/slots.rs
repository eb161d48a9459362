//! A hidden session that must be able to lose part of what it holds (a user's facts, a
//! workspace's files), although a store only appends to sessions or deletes them whole.
//!
//! It lives in one of two slots, two session ids. Removing something rewrites the rest into
//! the other slot (times, metadata and vectors kept) and then deletes the old slot, so the
//! removed text leaves the store and its exports. Each rewrite opens the new slot with a
//! header stamped now: a session's first message dates it, and that date is its incarnation
//! ([`Scope`]), so indexes cached here or on other hosts for an earlier life of the slot are
//! dropped instead of caught up. A rewrite cut short leaves both slots; the later generation
//! (written whole, in one append) is kept and the other deleted when next looked up.

use std::collections::HashMap;

use serde_json::json;

use super::Error;
use super::index::Indexes;
use crate::store::{Embedding, Message, NewMessage, Role, Scope, Session, Store};

/// The two session ids of one hidden session, and the title its generations carry.
pub struct Slots {
    pub ids: [String; 2],
    /// The title without the generation: `facts`, `workspace infra`.
    pub label: String,
}

impl Slots {
    /// The title of generation `n`.
    pub fn title(&self, n: u64) -> String {
        match n {
            0 => self.label.clone(),
            n => format!("{} #{n}", self.label),
        }
    }

    /// The current slot's session, if there is one; a slot left over from a rewrite cut short
    /// is deleted.
    pub async fn current(&self, store: &dyn Store, indexes: &Indexes, user: &str) -> Result<Option<Session>, Error> {
        let [a, b] = &self.ids;
        let (a, b) = (store.get_session(user, a).await?, store.get_session(user, b).await?);
        Ok(match (a, b) {
            (Some(a), Some(b)) => {
                let (keep, stale) = match generation(&a) >= generation(&b) {
                    true => (a, b),
                    false => (b, a),
                };
                indexes.forget(&Scope::of(&stale));
                store.delete_session(&Scope::of(&stale)).await?;
                Some(keep)
            }
            (a, b) => a.or(b),
        })
    }

    /// The scope a first write goes to when there is no current slot.
    pub fn first(&self, user: &str) -> Scope {
        Scope::new(user, &self.ids[0])
    }

    /// Replaces `session` (the current slot) by the other slot holding `kept` (messages of
    /// `session`, in order, with their vectors) followed by `new`, then deletes `session`.
    /// Returns the new slot and the messages written after its header.
    pub async fn rewrite(
        &self,
        store: &dyn Store,
        indexes: &Indexes,
        session: &Session,
        kept: &[&Message],
        new: Vec<NewMessage>,
    ) -> Result<(Session, Vec<Message>), Error> {
        let other = match session.id == self.ids[0] {
            true => &self.ids[1],
            false => &self.ids[0],
        };
        let next = generation(session) + 1;
        let header = NewMessage {
            role: Role::System,
            content: String::new(),
            name: None,
            metadata: Some(json!({ "generation": next })),
            created_at_ms: crate::store::stamp_ms(),
        };
        let copies = kept.iter().map(|m| NewMessage {
            role: m.role,
            content: m.content.clone(),
            name: m.name.clone(),
            metadata: m.metadata.clone(),
            created_at_ms: m.created_at_ms,
        });
        let messages: Vec<NewMessage> = std::iter::once(header).chain(copies).chain(new).collect();
        // Created, never appended to: a writer on another host rewriting at the same time gets
        // there first or fails here, and one of the two tries again on what the other wrote.
        let scope = Scope::fresh(&session.user, other);
        let mut stored = store.append(&scope, messages, Some(self.title(next))).await?;
        stored.remove(0);
        let fresh = store.get_session(&session.user, other).await?.ok_or_else(|| {
            Error::Store(crate::store::Error::Gone(format!("session {other} vanished while it was written")))
        })?;
        // The vectors move along, renumbered, so recall by meaning needs no new embeddings.
        let renumbered: HashMap<u64, u64> = kept.iter().zip(&stored).map(|(old, new)| (old.seq, new.seq)).collect();
        let vectors: Vec<Embedding> = store
            .list_embeddings(&Scope::of(session))
            .await?
            .into_iter()
            .filter_map(|e| Some(Embedding { seq: *renumbered.get(&e.seq)?, ..e }))
            .collect();
        if !vectors.is_empty() {
            store.put_embeddings(&Scope::of(&fresh), vectors).await?;
        }
        indexes.forget(&Scope::of(session));
        store.delete_session(&Scope::of(session)).await?;
        Ok((fresh, stored))
    }
}

/// Runs `write` (which reads the current slot itself) again, twice at most, when it failed
/// because the slot it wrote to was rewritten meanwhile, by another host or a request of this
/// one: the compare-and-set of slots, with the session's incarnation as what is compared.
pub async fn retrying<T, F: Future<Output = Result<T, Error>>>(mut write: impl FnMut() -> F) -> Result<T, Error> {
    let mut attempts = 1;
    loop {
        match write().await {
            Err(Error::Store(crate::store::Error::Gone(_))) if attempts < 3 => attempts += 1,
            done => return done,
        }
    }
}

/// How many rewrites made the slot: carried by its header (and, for a person reading the store,
/// its title).
fn generation(session: &Session) -> u64 {
    let title = session.title.as_deref().unwrap_or_default();
    // Facts were titled `facts N` before workspaces shared this.
    let legacy = title.strip_prefix("facts ").filter(|n| !n.starts_with('#'));
    legacy.or_else(|| title.rsplit_once(" #").map(|(_, n)| n)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_read_from_titles() {
        let slots = Slots { ids: ["x:a".into(), "x:b".into()], label: "workspace 42".into() };
        let session = |title: &str| Session {
            id: "x:a".into(),
            user: "u".into(),
            title: Some(title.into()),
            created_at_ms: 1,
            updated_at_ms: 1,
            message_count: 0,
            last_seq: 0,
        };
        assert_eq!(generation(&session(&slots.title(0))), 0, "a workspace named 42 is not generation 42");
        assert_eq!(generation(&session(&slots.title(7))), 7);
        assert_eq!(generation(&session("facts 3")), 3);
        assert_eq!(generation(&session("facts #4")), 4);
    }
}
