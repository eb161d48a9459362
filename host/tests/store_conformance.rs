//! One conformance suite for every `Store`: `sled`, `memory`, and the `redis-memory` and
//! `postgres-memory` plugins loaded through the real runtime against the local Redis and
//! Postgres (unique key prefix / schema per run, removed at the end).

mod common;

use std::sync::Arc;

use codexcontinue::store::{Embedding, Error, NewMessage, PluginStore, Role, Scope, SledStore, Store, Summary};
use common::databases::{self, unique};
use serde_json::json;
use tempfile::TempDir;

/// A store under test and what is needed to look behind it.
struct Backend {
    store: Arc<dyn Store>,
    kind: Kind,
}

enum Kind {
    Sled(TempDir),
    Memory,
    Redis(String),
    Postgres(String),
}

impl Backend {
    async fn sled() -> Self {
        let dir = TempDir::new().unwrap();
        Self { store: Arc::new(SledStore::open(dir.path()).unwrap()), kind: Kind::Sled(dir) }
    }

    fn memory() -> Self {
        Self { store: Arc::new(SledStore::temporary().unwrap()), kind: Kind::Memory }
    }

    async fn redis() -> Self {
        let prefix = unique("conf");
        Self {
            store: databases::plugin_store("redis-memory", databases::redis_env(&prefix)).await,
            kind: Kind::Redis(prefix),
        }
    }

    async fn postgres() -> Self {
        let schema = unique("conf");
        let store = databases::plugin_store("postgres-memory", databases::postgres_env(&schema)).await;
        Self { store, kind: Kind::Postgres(schema) }
    }

    /// What is left of `session` in the database itself, bypassing the store.
    async fn leftovers(&self, session: &str) -> Vec<String> {
        match &self.kind {
            Kind::Sled(_) | Kind::Memory => Vec::new(),
            Kind::Redis(prefix) => {
                databases::redis_keys(prefix).await.into_iter().filter(|k| k.contains(session)).collect()
            }
            Kind::Postgres(schema) => databases::postgres_leftovers(schema, session).await,
        }
    }

    /// A new store instance over the same data (`None` for `memory`, which keeps nothing).
    async fn restart(&mut self) -> Option<()> {
        self.store = match &self.kind {
            Kind::Memory => return None,
            Kind::Sled(dir) => {
                // sled locks its directory: the old instance must be gone first.
                self.store = Arc::new(SledStore::temporary().unwrap());
                Arc::new(SledStore::open(dir.path()).unwrap())
            }
            Kind::Redis(prefix) => databases::plugin_store("redis-memory", databases::redis_env(prefix)).await,
            Kind::Postgres(schema) => databases::plugin_store("postgres-memory", databases::postgres_env(schema)).await,
        };
        Some(())
    }

    async fn cleanup(self) {
        match &self.kind {
            Kind::Redis(prefix) => databases::redis_cleanup(prefix).await,
            Kind::Postgres(schema) => databases::postgres_cleanup(schema).await,
            Kind::Sled(_) | Kind::Memory => {}
        }
    }
}

fn scope() -> Scope {
    Scope::new(format!("user-{}", uuid::Uuid::new_v4()), uuid::Uuid::new_v4().to_string())
}

fn message(role: Role, content: &str, at: u64) -> NewMessage {
    NewMessage { role, content: content.to_string(), name: None, metadata: None, created_at_ms: at }
}

fn user(content: &str) -> NewMessage {
    message(Role::User, content, 1_700_000_000_000)
}

fn seqs(messages: &[codexcontinue::store::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

/// Appends come back numbered from 1 in order, read back oldest first, and keep the title.
async fn append_and_order(store: &dyn Store) {
    let s = scope();
    let first = vec![
        message(Role::System, "be brief", 1000),
        message(Role::User, "hi", 1001),
        message(Role::Assistant, "hello", 1002),
    ];
    let stored = store.append(&s, first.clone(), Some("greeting".into())).await.unwrap();
    assert_eq!(seqs(&stored), [1, 2, 3]);
    let read = store.list_messages(&s, None, 100).await.unwrap();
    assert_eq!(read, stored);
    assert_eq!(
        read.iter().map(|m| (m.role, m.content.as_str())).collect::<Vec<_>>(),
        [(Role::System, "be brief"), (Role::User, "hi"), (Role::Assistant, "hello")]
    );
    let more = store.append(&s, vec![user("again"), message(Role::Tool, "42", 1003)], Some("ignored".into())).await;
    assert_eq!(seqs(&more.unwrap()), [4, 5]);
    let session = store.get_session(&s.user, &s.session).await.unwrap().unwrap();
    assert_eq!(
        (session.user.as_str(), session.title.as_deref(), session.message_count),
        (s.user.as_str(), Some("greeting"), 5)
    );
    assert_eq!(session.created_at_ms, 1000);
    assert_eq!(session.updated_at_ms, 1_700_000_000_000);
    assert!(store.get_session("nobody", "no-such-session").await.unwrap().is_none());
}

/// `before` and `limit` page backwards through the history, oldest first within a page.
async fn pagination(store: &dyn Store) {
    let s = scope();
    let batch: Vec<_> = (1..=10).map(|i| user(&format!("m{i}"))).collect();
    store.append(&s, batch, None).await.unwrap();
    assert_eq!(seqs(&store.list_messages(&s, None, 4).await.unwrap()), [7, 8, 9, 10]);
    assert_eq!(seqs(&store.list_messages(&s, Some(7), 4).await.unwrap()), [3, 4, 5, 6]);
    assert_eq!(seqs(&store.list_messages(&s, Some(3), 4).await.unwrap()), [1, 2]);
    assert!(store.list_messages(&s, Some(1), 4).await.unwrap().is_empty());
    assert!(store.list_messages(&s, None, 0).await.unwrap().is_empty());
    assert_eq!(seqs(&store.list_messages(&s, Some(1000), 2).await.unwrap()), [9, 10]);
    assert_eq!(store.list_messages(&s, Some(6), 1).await.unwrap()[0].content, "m5");
}

/// Deleting a session removes its messages, summary and embeddings (in the database too), and
/// the id starts afresh if used again.
async fn delete_cascade(backend: &Backend) {
    let store = &*backend.store;
    let s = scope();
    store.append(&s, vec![user("a"), user("b")], Some("t".into())).await.unwrap();
    store.put_summary(&s, Summary { text: "sum".into(), through_seq: 2, updated_at_ms: 5 }).await.unwrap();
    let embedding = Embedding { seq: 1, model: "m".into(), vector: vec![0.5, 0.25] };
    store.put_embeddings(&s, vec![embedding]).await.unwrap();
    assert!(!backend.leftovers(&s.session).await.is_empty() || matches!(backend.kind, Kind::Sled(_) | Kind::Memory));

    assert!(store.delete_session(&s).await.unwrap());
    assert!(store.get_session(&s.user, &s.session).await.unwrap().is_none());
    assert!(store.list_messages(&s, None, 100).await.unwrap().is_empty());
    assert!(store.get_summary(&s).await.unwrap().is_none());
    assert!(store.list_embeddings(&s).await.unwrap().is_empty());
    assert!(store.list_sessions(&s.user, 100).await.unwrap().is_empty());
    assert_eq!(backend.leftovers(&s.session).await, Vec::<String>::new(), "something of the session remains");
    assert!(!store.delete_session(&s).await.unwrap());

    let again = store.append(&s, vec![user("new")], None).await.unwrap();
    assert_eq!(seqs(&again), [1]);
}

/// Writes made for a session as it was (its incarnation) are refused once it is deleted, and
/// also once a new session took its id: a turn or background job that was running when the
/// session was deleted brings nothing of it back.
async fn deleted_stays_deleted(store: &dyn Store) {
    let s = scope();
    store.append(&s, vec![user("secret plans")], None).await.unwrap();
    let seen = Scope::of(&store.get_session(&s.user, &s.session).await.unwrap().unwrap());
    store.append(&seen, vec![user("still here")], None).await.unwrap();
    assert!(store.delete_session(&s).await.unwrap());

    let gone = |r: Result<_, Error>| matches!(r, Err(Error::Gone(_)));
    assert!(gone(store.append(&seen, vec![user("late reply")], None).await.map(drop)));
    let summary = Summary { text: "secret plans".into(), through_seq: 2, updated_at_ms: 9 };
    assert!(gone(store.put_summary(&seen, summary.clone()).await));
    let embedding = Embedding { seq: 1, model: "m".into(), vector: vec![1.0] };
    assert!(gone(store.put_embeddings(&seen, vec![embedding.clone()]).await));
    assert!(store.get_session(&s.user, &s.session).await.unwrap().is_none(), "nothing re-created the session");

    // The id in use again, by a new session: the old incarnation still may not write.
    store.append(&s, vec![message(Role::User, "fresh start", 1_700_000_000_500)], None).await.unwrap();
    assert!(gone(store.append(&seen, vec![user("late reply")], None).await.map(drop)));
    assert!(gone(store.put_summary(&seen, summary).await));
    assert!(gone(store.put_embeddings(&seen, vec![embedding]).await));
    let kept = store.list_messages(&s, None, 10).await.unwrap();
    assert_eq!(kept.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["fresh start"]);
    assert!(store.get_summary(&s).await.unwrap().is_none() && store.list_embeddings(&s).await.unwrap().is_empty());
    let current = Scope::of(&store.get_session(&s.user, &s.session).await.unwrap().unwrap());
    assert_eq!(seqs(&store.append(&current, vec![user("next")], None).await.unwrap()), [2]);
}

/// An append under a fresh scope creates the session, and is refused (nothing written) once
/// someone else created it: two hosts rewriting into the same new session cannot both succeed.
async fn fresh_scopes_only_create(store: &dyn Store) {
    let s = scope();
    let fresh = Scope::fresh(&s.user, &s.session);
    assert_eq!(seqs(&store.append(&fresh, vec![user("first")], Some("t".into())).await.unwrap()), [1]);
    let again = store.append(&fresh, vec![user("second")], None).await;
    assert!(matches!(again, Err(Error::Gone(_))), "{again:?}");
    assert_eq!(store.list_messages(&s, None, 10).await.unwrap().len(), 1);
    // A summary or embedding needs the session to exist, whatever the scope says.
    let missing = Scope::fresh(&s.user, format!("{}-none", s.session));
    let summary = Summary { text: "x".into(), through_seq: 1, updated_at_ms: 1 };
    assert!(store.put_summary(&missing, summary).await.is_err());
    assert!(store.get_session(&missing.user, &missing.session).await.unwrap().is_none());
}

/// Session ids are per user: another user's session of the same id is a session of their
/// own, and nothing one does reaches the other's.
async fn per_user_isolation(store: &dyn Store) {
    let owner = scope();
    let other = Scope::new(format!("other-{}", uuid::Uuid::new_v4()), owner.session.clone());
    store.append(&owner, vec![user("secret")], Some("mine".into())).await.unwrap();
    store.put_summary(&owner, Summary { text: "s".into(), through_seq: 1, updated_at_ms: 1 }).await.unwrap();
    store.put_embeddings(&owner, vec![Embedding { seq: 1, model: "m".into(), vector: vec![1.0] }]).await.unwrap();

    assert!(store.get_session(&other.user, &other.session).await.unwrap().is_none());
    assert!(store.list_messages(&other, None, 100).await.unwrap().is_empty());
    assert!(store.get_summary(&other).await.unwrap().is_none());
    assert!(store.list_embeddings(&other).await.unwrap().is_empty());
    assert!(store.list_sessions(&other.user, 100).await.unwrap().is_empty());
    assert!(!store.delete_session(&other).await.unwrap());

    let theirs = store.append(&other, vec![user("theirs"), user("too")], Some("theirs".into())).await.unwrap();
    assert_eq!(seqs(&theirs), [1, 2], "a session of their own");
    store.put_summary(&other, Summary { text: "x".into(), through_seq: 1, updated_at_ms: 2 }).await.unwrap();
    store.put_embeddings(&other, vec![Embedding { seq: 1, model: "m".into(), vector: vec![2.0] }]).await.unwrap();
    let listed = store.list_sessions(&other.user, 100).await.unwrap();
    assert_eq!((listed.len(), listed[0].id.as_str(), listed[0].title.as_deref()), (1, &*owner.session, Some("theirs")));
    assert!(store.delete_session(&other).await.unwrap());

    // The owner's data is untouched.
    let messages = store.list_messages(&owner, None, 100).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["secret"]);
    assert_eq!(store.get_summary(&owner).await.unwrap().unwrap().text, "s");
    assert_eq!(store.list_embeddings(&owner).await.unwrap()[0].vector, [1.0]);
    let session = store.get_session(&owner.user, &owner.session).await.unwrap().unwrap();
    assert_eq!((session.id, session.user, session.title.as_deref()), (owner.session.clone(), owner.user, Some("mine")));
}

/// 8 writers × 25 appends to one session get 200 distinct, consecutive seqs, each writer's
/// messages in its own order.
async fn concurrent_writers(store: Arc<dyn Store>) {
    let s = scope();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..25 {
                    let stored = store.append(&s, vec![user(&format!("w{t}-{i:02}"))], None).await.unwrap();
                    got.push(stored[0].seq);
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let got = task.await.unwrap();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "a writer's seqs went backwards: {got:?}");
        all.extend(got);
    }
    all.sort();
    assert_eq!(all, (1..=200).collect::<Vec<u64>>());
    let messages = store.list_messages(&s, None, 1000).await.unwrap();
    assert_eq!(seqs(&messages), (1..=200).collect::<Vec<u64>>());
    for t in 0..8 {
        let mine: Vec<&str> =
            messages.iter().map(|m| m.content.as_str()).filter(|c| c.starts_with(&format!("w{t}-"))).collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(mine, sorted);
        assert_eq!(mine.len(), 25);
    }
    assert_eq!(store.get_session(&s.user, &s.session).await.unwrap().unwrap().message_count, 200);
}

/// Unicode of every kind, names, metadata and a 1 MiB message read back byte for byte.
async fn unicode_and_large(store: &dyn Store) {
    let s = scope();
    let text = "héllo wörld — 你好, мир, مرحبا, 👩‍👩‍👧‍👦 🏳️‍🌈, e\u{301}, \"quotes\" 'and' \\backslashes\\ \n\t tabs";
    let large: String = "0123456789abcdé🦀".chars().cycle().take(1 << 18).collect::<String>();
    let large = format!("{large}{}", "x".repeat((1 << 20) - large.len()));
    assert_eq!(large.len(), 1 << 20);
    let metadata = json!({"model": "m", "usage": {"prompt": 1}, "note": "ünïcödé 🚀", "list": [1, 2.5, null, true]});
    let messages = vec![
        NewMessage {
            role: Role::Assistant,
            content: text.into(),
            name: Some("bøt".into()),
            metadata: Some(metadata.clone()),
            created_at_ms: 7,
        },
        message(Role::User, &large, 8),
    ];
    store.append(&s, messages, Some("tïtle 🎉".into())).await.unwrap();
    let read = store.list_messages(&s, None, 10).await.unwrap();
    assert_eq!(read[0].content, text);
    assert_eq!(read[0].name.as_deref(), Some("bøt"));
    assert_eq!(read[0].metadata.as_ref(), Some(&metadata));
    assert!(read[1].content == large, "the 1 MiB message changed");
    assert_eq!(read[1].metadata, None);
    assert_eq!(store.get_session(&s.user, &s.session).await.unwrap().unwrap().title.as_deref(), Some("tïtle 🎉"));
}

/// A user's sessions list most recently active first, with `limit`, and only theirs.
async fn list_sessions_ordering(store: &dyn Store) {
    let u = format!("lister-{}", uuid::Uuid::new_v4());
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for (id, at) in ids.iter().zip([1000, 3000, 2000]) {
        store.append(&Scope::new(&u, id), vec![message(Role::User, "x", at)], Some(format!("t{at}"))).await.unwrap();
    }
    store.append(&scope(), vec![user("someone else")], None).await.unwrap();
    let listed = |sessions: Vec<codexcontinue::store::Session>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(listed(store.list_sessions(&u, 100).await.unwrap()), [ids[1].clone(), ids[2].clone(), ids[0].clone()]);
    store.append(&Scope::new(&u, &ids[0]), vec![message(Role::User, "later", 4000)], None).await.unwrap();
    assert_eq!(listed(store.list_sessions(&u, 2).await.unwrap()), [ids[0].clone(), ids[1].clone()]);
    let first = &store.list_sessions(&u, 1).await.unwrap()[0];
    assert_eq!((first.updated_at_ms, first.message_count, first.title.as_deref()), (4000, 2, Some("t1000")));
    assert!(store.list_sessions(&u, 0).await.unwrap().is_empty());
}

/// Summaries and embeddings read back exactly and are replaced by later writes.
async fn summaries_and_embeddings(store: &dyn Store) {
    let s = scope();
    store.append(&s, vec![user("a"), user("b"), user("c")], None).await.unwrap();
    assert!(store.get_summary(&s).await.unwrap().is_none());
    let summary = Summary { text: "so far: ✓".into(), through_seq: 2, updated_at_ms: 1_700_000_000_001 };
    store.put_summary(&s, summary.clone()).await.unwrap();
    assert_eq!(store.get_summary(&s).await.unwrap(), Some(summary));
    let newer = Summary { text: "all".into(), through_seq: 3, updated_at_ms: 1_700_000_000_002 };
    store.put_summary(&s, newer.clone()).await.unwrap();
    assert_eq!(store.get_summary(&s).await.unwrap(), Some(newer.clone()));
    // A summary job that started earlier and finishes later (here or on another host) does
    // not move the summary backwards; one through the same seq replaces it.
    let late = Summary { text: "stale".into(), through_seq: 2, updated_at_ms: 1_700_000_000_003 };
    store.put_summary(&s, late).await.unwrap();
    assert_eq!(store.get_summary(&s).await.unwrap(), Some(newer));
    let again = Summary { text: "all, again".into(), through_seq: 3, updated_at_ms: 1_700_000_000_004 };
    store.put_summary(&s, again.clone()).await.unwrap();
    assert_eq!(store.get_summary(&s).await.unwrap(), Some(again));
    let missing = Scope::new(&s.user, format!("{}-none", s.session));
    assert!(store.put_summary(&missing, Summary { text: "x".into(), through_seq: 1, updated_at_ms: 1 }).await.is_err());

    let vector = vec![0.1f32, -2.5, 1.0e-30, 3.4e38, f32::MIN_POSITIVE, 1.0 / 3.0];
    let items = vec![
        Embedding { seq: 2, model: "m".into(), vector: vec![2.0; 4] },
        Embedding { seq: 1, model: "m".into(), vector: vector.clone() },
    ];
    store.put_embeddings(&s, items).await.unwrap();
    let read = store.list_embeddings(&s).await.unwrap();
    assert_eq!(read.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(read[0].vector, vector);
    store.put_embeddings(&s, vec![Embedding { seq: 2, model: "m".into(), vector: vec![9.0] }]).await.unwrap();
    let read = store.list_embeddings(&s).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!((read[1].seq, read[1].model.as_str(), read[1].vector.as_slice()), (2, "m", &[9.0f32][..]));
}

/// A new store instance over the same backend sees what the old one wrote.
async fn restart_persistence(backend: &mut Backend) {
    let s = scope();
    backend.store.append(&s, vec![user("remember me")], Some("kept".into())).await.unwrap();
    backend.store.put_summary(&s, Summary { text: "k".into(), through_seq: 1, updated_at_ms: 3 }).await.unwrap();
    if backend.restart().await.is_none() {
        return;
    }
    let store = &*backend.store;
    let session = store.get_session(&s.user, &s.session).await.unwrap().expect("the session survived the restart");
    assert_eq!((session.title.as_deref(), session.message_count), (Some("kept"), 1));
    assert_eq!(store.list_messages(&s, None, 10).await.unwrap()[0].content, "remember me");
    assert_eq!(store.get_summary(&s).await.unwrap().unwrap().text, "k");
    assert_eq!(seqs(&store.append(&s, vec![user("and me")], None).await.unwrap()), [2]);
}

/// Runs every case against `backend`, then removes what it wrote.
async fn suite(mut backend: Backend) {
    let name = backend.store.name().to_string();
    let step = |case: &str| eprintln!("conformance: {name}: {case}");
    step("append and order");
    append_and_order(&*backend.store).await;
    step("pagination");
    pagination(&*backend.store).await;
    step("delete cascade");
    delete_cascade(&backend).await;
    step("deleted stays deleted");
    deleted_stays_deleted(&*backend.store).await;
    step("fresh scopes only create");
    fresh_scopes_only_create(&*backend.store).await;
    step("per-user isolation");
    per_user_isolation(&*backend.store).await;
    step("concurrent writers");
    concurrent_writers(backend.store.clone()).await;
    step("unicode and large messages");
    unicode_and_large(&*backend.store).await;
    step("list sessions ordering");
    list_sessions_ordering(&*backend.store).await;
    step("summaries and embeddings");
    summaries_and_embeddings(&*backend.store).await;
    step("restart persistence");
    restart_persistence(&mut backend).await;
    backend.cleanup().await;
}

/// The sled store passes the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_conforms() {
    suite(Backend::sled().await).await;
}

/// The in-memory store passes the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_conforms() {
    suite(Backend::memory()).await;
}

/// The redis-memory plugin, through the runtime and the redis capability, passes the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_conforms() {
    suite(Backend::redis().await).await;
}

/// The postgres-memory plugin, through the runtime and the postgres capability, passes the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_memory_conforms() {
    suite(Backend::postgres().await).await;
}

/// Sessions a memory plugin stored by bare id (before ids were per user) are found by their
/// owner only, move to the owner's key on the first lookup with all they held, and stay gone
/// once deleted.
async fn bare_ids_move_to_their_keys(id: &str, env: Vec<(&'static str, String)>) {
    use codexcontinue::runtime::memory_types as wit;
    let registry = databases::plugin_registry(id, env).await;
    let s = scope();
    let plugin = registry.route(id).unwrap().primary;
    let raw = plugin.memory().unwrap();
    let bare = wit::Scope { user: s.user.clone(), session: s.session.clone() };
    let old = |content: &str| wit::NewMessage {
        role: codexcontinue::runtime::types::Role::User,
        content: content.into(),
        name: None,
        metadata: Some(r#"{"k":1}"#.into()),
        created_at_ms: 1_700_000_000_000,
    };
    raw.append(&bare, &[old("from before"), old("and more")], Some("old chat")).await.unwrap().unwrap();
    let summary = wit::Summary { text: "so far".into(), through_seq: 1, updated_at_ms: 2 };
    raw.put_summary(&bare, &summary).await.unwrap().unwrap();
    let embedding = wit::Embedding { seq: 2, model: "m".into(), vector: vec![0.5] };
    raw.put_embeddings(&bare, &[embedding]).await.unwrap().unwrap();

    let store = PluginStore::new(id, registry.clone());
    assert!(store.get_session("someone-else", &s.session).await.unwrap().is_none(), "only the owner's");
    let listed = store.list_sessions(&s.user, 10).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [s.session.as_str()]);
    let found = store.get_session(&s.user, &s.session).await.unwrap().expect("found by its owner");
    assert_eq!((found.id.as_str(), found.title.as_deref(), found.message_count), (&*s.session, Some("old chat"), 2));
    assert!(raw.get_session(&s.session).await.unwrap().unwrap().is_none(), "moved off the bare id");
    let messages = store.list_messages(&s, None, 10).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["from before", "and more"]);
    assert_eq!(messages[0].metadata, Some(json!({ "k": 1 })));
    assert_eq!(store.get_summary(&s).await.unwrap().unwrap().text, "so far");
    assert_eq!(store.list_embeddings(&s).await.unwrap()[0].seq, 2);
    assert_eq!(seqs(&store.append(&Scope::of(&found), vec![user("new")], None).await.unwrap()), [3]);

    // A move cut short leaves the bare copy too: listed once, and deleted with the session.
    raw.append(&bare, &[old("from before")], Some("old chat")).await.unwrap().unwrap();
    assert_eq!(store.list_sessions(&s.user, 10).await.unwrap().len(), 1);
    assert!(store.delete_session(&s).await.unwrap());
    assert!(raw.get_session(&s.session).await.unwrap().unwrap().is_none());
    assert!(store.get_session(&s.user, &s.session).await.unwrap().is_none(), "deleted stays deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sessions_by_bare_id_move_to_their_keys() {
    let prefix = unique("bare");
    bare_ids_move_to_their_keys("redis-memory", databases::redis_env(&prefix)).await;
    databases::redis_cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_by_bare_id_move_to_their_keys() {
    let schema = unique("bare");
    bare_ids_move_to_their_keys("postgres-memory", databases::postgres_env(&schema)).await;
    databases::postgres_cleanup(&schema).await;
}

/// Two postgres-memory plugins starting on a fresh schema at once migrate it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_postgres_migrations_apply_once() {
    let schema = unique("mig");
    let env = databases::postgres_env(&schema);
    let (a, b) = tokio::join!(
        databases::plugin_store("postgres-memory", env.clone()),
        databases::plugin_store("postgres-memory", env.clone())
    );
    let s = scope();
    a.append(&s, vec![user("one")], None).await.unwrap();
    assert_eq!(seqs(&b.append(&s, vec![user("two")], None).await.unwrap()), [2]);
    let client = databases::postgres().await;
    let sql = format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version");
    let versions: Vec<i32> = client.query(&sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1]);
    databases::postgres_cleanup(&schema).await;
}
