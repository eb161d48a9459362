//! Memory quality, scored only by what would reach the upstream prompt: facts are planted in long
//! conversations, buried under unrelated turns, and then asked about, in the categories
//! LongMemEval uses. Each category runs with BM25 alone and with embeddings.
//!
//! The embedding vendor is the one thing mocked: [`Concepts`] maps words to concepts through a
//! small thesaurus and embeds a text as its bag of concepts, so a reworded question lands near
//! the fact it rewords, as it would with a real embedding model. What is measured is ours: the
//! store, the indexes, fusion of the two rankings, the budget and how the section is written.
//!
//! Prints a table of scores (`cargo test --test memory_quality -- --nocapture`) and holds the
//! issue's bars: literal recall ≥ 95 %, reworded recall with embeddings ≥ 90 %, every knowledge
//! update shows the newest statement and shows it as the newer one, facts from another chat come
//! back on a new chat's first message, two events come back in the order they happened, nothing
//! unrelated is recalled for what was never said (abstention), and deleted text never comes back.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use codexcontinue::config::MemoryConfig;
use codexcontinue::memory::{History, Input, Memory, Model, PromptRequest, Purpose, Turn};
use codexcontinue::store::{Scope, SledStore};

const USER: &str = "ada";
/// Unrelated turns between plantings; the deepest fact is this many times the fact count deep.
const FILLER_PER_FACT: usize = 60;
const DIMENSIONS: usize = 1024;

/// The concept a word stands for: the synonyms reworded questions use map to one word.
const THESAURUS: &[(&str, &[&str])] = &[
    ("password", &["credential", "credentials", "secret", "passphrase"]),
    ("rotate", &["rotates", "rotated", "renewal", "renewed", "changed"]),
    ("staging", &["pre-production", "preprod"]),
    ("database", &["db", "datastore"]),
    ("deploy", &["deploys", "deployment", "release", "releases", "ship", "ships", "shipped"]),
    ("friday", &["end-of-week"]),
    ("owner", &["owns", "responsible", "maintainer", "maintains"]),
    ("billing", &["invoicing", "payments"]),
    ("service", &["microservice", "component"]),
    ("timeout", &["deadline", "time-limit"]),
    ("seconds", &["secs"]),
    ("gateway", &["proxy", "ingress"]),
    ("logo", &["emblem", "branding"]),
    ("color", &["colour", "hue", "shade"]),
    ("teal", &["turquoise"]),
    ("standup", &["stand-up", "sync", "meeting"]),
    ("morning", &["am"]),
    ("cache", &["caching"]),
    ("evict", &["evicts", "eviction", "expire", "expiry", "expires"]),
    ("minutes", &["mins"]),
    ("font", &["typeface"]),
    ("docs", &["documentation", "manual"]),
    ("laptop", &["notebook", "computer", "machine"]),
    ("order", &["ordered", "purchase", "purchased", "bought"]),
    ("cat", &["pet", "kitten"]),
    ("named", &["called", "name"]),
    ("flight", &["plane", "fly", "flying"]),
    ("lisbon", &["portugal"]),
    ("oncall", &["on-call", "pager", "paging"]),
    ("week", &["rota", "rotation", "shift"]),
];

/// The mocked embedding vendor: a text becomes its concepts, each on an axis of its own, plus
/// what real embedding models share between any two texts: a common direction (unrelated texts
/// score about 0.25, not 0) and a little noise of their own. So an absolute cutoff cannot tell an
/// answer from the least unrelated message; how far a message rises above the rest can.
struct Concepts {
    embeddings: bool,
    axes: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Concepts {
    fn concept(word: &str) -> String {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-').to_lowercase();
        let stem = word.strip_suffix("'s").unwrap_or(&word).to_string();
        THESAURUS
            .iter()
            .find(|(concept, synonyms)| *concept == stem || synonyms.contains(&stem.as_str()))
            .map_or(stem, |(concept, _)| concept.to_string())
    }

    /// Words with digits (ticket numbers, versions) are left out, as embedding models represent
    /// such identifiers poorly: finding them is BM25's part.
    fn vector(&self, text: &str) -> Vec<f32> {
        const STOP: &[&str] = &[
            "the", "a", "an", "is", "are", "was", "we", "our", "to", "of", "in", "on", "for", "what", "which", "who",
            "how", "does", "do", "did", "it", "and", "at", "by", "with", "that", "this", "be", "i", "my", "you",
            "your", "again", "when", "where", "now", "use", "uses", "every",
        ];
        let mut concepts = vec![0.0f32; DIMENSIONS];
        let mut axes = self.axes.lock().unwrap();
        for word in text
            .split_whitespace()
            .map(Self::concept)
            .filter(|w| !w.is_empty() && !STOP.contains(&w.as_str()) && !w.chars().any(|c| c.is_ascii_digit()))
        {
            // Axis 0 is the common direction; concepts take the others in order of appearance.
            let next = axes.len() + 1;
            let axis = *axes.entry(word).or_insert(next);
            assert!(axis < DIMENSIONS, "more concepts than dimensions");
            concepts[axis] += 1.0;
        }
        let mut seed = text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 2001) as f32 / 1000.0 - 1.0
        };
        let own = unit(concepts);
        let jitter = unit((0..DIMENSIONS).map(|_| noise()).collect());
        let mut v: Vec<f32> = own.iter().zip(&jitter).map(|(c, j)| c + 0.25 * j).collect();
        v[0] += 0.6;
        unit(v)
    }
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|x| x / norm).collect()
}

#[async_trait]
impl Model for Concepts {
    async fn complete(&self, _: &str, _: &str) -> Result<String, String> {
        Ok(String::new())
    }
    async fn embed(&self, texts: Vec<String>, _: Purpose) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
        Ok(self.embeddings.then(|| ("concepts-1".to_string(), texts.iter().map(|t| self.vector(t)).collect())))
    }
}

/// A planted statement and the questions that should bring it back.
struct Fact {
    statement: &'static str,
    literal: &'static str,
    reworded: &'static str,
}

const FACTS: &[Fact] = &[
    Fact {
        statement: "The staging database password rotates every 30 days.",
        literal: "How often does the staging database password rotate?",
        reworded: "What is the renewal interval of the preprod DB credential?",
    },
    Fact {
        statement: "We never deploy on Friday afternoons.",
        literal: "Can we deploy on Friday afternoons?",
        reworded: "Is an end-of-week release ok?",
    },
    Fact {
        statement: "Priya is the owner of the billing service.",
        literal: "Who is the owner of the billing service?",
        reworded: "Who maintains the invoicing microservice?",
    },
    Fact {
        statement: "The gateway timeout is 45 seconds.",
        literal: "What is the gateway timeout?",
        reworded: "How long is the ingress deadline?",
    },
    Fact {
        statement: "Our logo color is teal, hex 008080.",
        literal: "What is our logo color?",
        reworded: "Which shade is the branding emblem?",
    },
    Fact {
        statement: "The team standup is at 9:30 every morning.",
        literal: "When is the team standup?",
        reworded: "What time is the daily sync meeting?",
    },
    Fact {
        statement: "The cache entries evict after 15 minutes.",
        literal: "When do cache entries evict?",
        reworded: "What is the caching expiry?",
    },
    Fact {
        statement: "The docs font is Inter at 15px.",
        literal: "Which font do the docs use?",
        reworded: "What typeface is the documentation in?",
    },
    Fact {
        statement: "I ordered a new laptop, a ThinkPad X1, on March 3rd.",
        literal: "Which new laptop did I order?",
        reworded: "What computer did I purchase?",
    },
    Fact {
        statement: "My cat is named Biscuit.",
        literal: "What is my cat named?",
        reworded: "What is the name of my pet?",
    },
    Fact {
        statement: "My flight to Lisbon leaves on the 14th.",
        literal: "When does my flight to Lisbon leave?",
        reworded: "When am I flying to Portugal?",
    },
    Fact {
        statement: "Ticket ZX-4411 waits on the vendor's fix.",
        literal: "What is going on with ZX-4411?",
        reworded: "Why is ZX-4411 stuck?",
    },
    Fact {
        statement: "Tomas has the oncall week starting Monday.",
        literal: "Who has the oncall week?",
        reworded: "Who is on the pager rotation?",
    },
];

/// A fact that changed: the old statement, later the new one, and the question.
struct Update {
    old: &'static str,
    new: &'static str,
    question: &'static str,
}

const UPDATES: &[Update] = &[
    Update {
        old: "We use Postgres for the audit log database.",
        new: "We switched the audit log database to MySQL.",
        question: "Which database holds the audit log?",
    },
    Update {
        old: "The API rate limit is 100 requests per minute.",
        new: "We raised the API rate limit to 500 requests per minute.",
        question: "What is the API rate limit now?",
    },
    Update {
        old: "Elena leads the mobile team.",
        new: "Jonas now leads the mobile team.",
        question: "Who leads the mobile team?",
    },
    Update {
        old: "The release train leaves every second Tuesday.",
        new: "The release train now leaves every Thursday.",
        question: "When does the release train leave?",
    },
];

/// Unrelated chatter from a working day.
fn filler(i: usize) -> (String, String) {
    const ASKS: &[&str] = &[
        "Can you refactor the parser module to return typed errors?",
        "Why does the linter complain about this closure?",
        "Write a unit test for the tokenizer edge cases.",
        "Explain the borrow checker error in main.rs.",
        "Rename the helper to something clearer.",
        "Summarise the diff of the last commit.",
        "How do I paginate this API response?",
        "Make the retry loop exponential with jitter.",
        "Add a CLI flag for verbose output.",
        "Convert this callback code to async/await.",
        "What does this regex match?",
        "Split this function into smaller pieces.",
    ];
    const REPLIES: &[&str] = &[
        "Done: the function now returns a Result with a typed error enum.",
        "The closure captures a variable by reference that outlives it; move it instead.",
        "Here is a test covering empty input, unicode and very long tokens.",
        "The value is moved into the thread; clone it first or use an Arc.",
        "I renamed it to `normalize_path` and updated the callers.",
        "The commit tightens input validation and adds two tests.",
        "Follow the `next` cursor until it is null, requesting 100 items per page.",
        "Each attempt now waits base * 2^n plus a random jitter, capped at 30s.",
        "Added `--verbose` which raises the log level to debug.",
        "Rewritten with async functions; errors propagate with `?`.",
        "It matches ISO dates such as 2024-01-31.",
        "Split into parse_header, parse_body and validate.",
    ];
    (format!("{} (task {i})", ASKS[i % ASKS.len()]), REPLIES[(i * 7 + 3) % REPLIES.len()].to_string())
}

struct Bench {
    memory: Memory,
    model: Arc<Concepts>,
}

impl Bench {
    fn new(embeddings: bool) -> Self {
        let config =
            MemoryConfig { summaries: false, embeddings, recall_across_sessions: true, ..MemoryConfig::default() };
        Self {
            memory: Memory::new(Arc::new(SledStore::temporary().unwrap()), config),
            model: Arc::new(Concepts { embeddings, axes: Default::default() }),
        }
    }

    /// One turn, then waits for its background embedding, as turns spaced by a person would.
    async fn say(&self, session: &str, message: &str, reply: &str) {
        let scope = match self.memory.claim(USER, session).await.unwrap() {
            Some(existing) => Scope::of(&existing),
            None => Scope::new(USER, session),
        };
        let turn = Turn { input: vec![Input::user(message)], reply: reply.into(), metadata: serde_json::json!({}) };
        self.memory.record(&scope, turn, Some(self.model.clone())).await.unwrap();
        for _ in 0..2_000 {
            if !self.memory.busy(&scope) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("background work on {session} never finished");
    }

    async fn filler(&self, session: &str, from: usize, count: usize) {
        for i in from..from + count {
            let (ask, reply) = filler(i);
            self.say(session, &ask, &reply).await;
        }
    }

    /// Everything the upstream model would be sent for `question` in `session`.
    async fn prompt(&self, session: &str, question: &str) -> String {
        let existing = self.memory.claim(USER, session).await.unwrap();
        let scope = match &existing {
            Some(session) => Scope::of(session),
            None => Scope::new(USER, session),
        };
        let request = PromptRequest {
            scope: &scope,
            existing: existing.is_some(),
            system: None,
            message: question,
            budget: 8_000,
            workspace: None,
            history: History::Stored,
            stored: true,
        };
        let prompt = self.memory.prompt(request, self.model.as_ref()).await.unwrap();
        prompt.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n")
    }
}

/// "The API …" as said mid-sentence: "the API …".
fn sentence_case_off(text: &str) -> String {
    text[..1].to_lowercase() + &text[1..]
}

/// Hits out of asked, as a percentage.
fn percent(hits: usize, of: usize) -> f64 {
    100.0 * hits as f64 / of.max(1) as f64
}

#[derive(Default, Debug)]
struct Scores {
    literal: (usize, usize),
    reworded: (usize, usize),
    updates: (usize, usize),
    across: (usize, usize),
    facts: (usize, usize),
    temporal: (usize, usize),
    abstention: (usize, usize),
    deleted_leaks: usize,
}

/// Two things done in this order, said in different chats, and a question about their order.
const SEQUENCES: &[(&str, &str, &str)] = &[
    (
        "I finished migrating the billing tables to the new cluster.",
        "I started the load test of the checkout flow.",
        "Did I migrate the billing tables before or after the checkout load test?",
    ),
    (
        "I sent the quarterly report to the auditors.",
        "I got the signed contract back from the auditors.",
        "Which happened first with the auditors: the report or the signed contract?",
    ),
];

/// Questions about things never said: nothing unrelated should be recalled for them.
const UNANSWERABLE: &[&str] = &[
    "What is my dog's name?",
    "Which hotel did I book in Berlin?",
    "What is the prod Kafka cluster's retention?",
    "When is my dentist appointment?",
];

/// Whether `prompt` recalls any of the unrelated chatter.
fn recalls_filler(prompt: &str) -> bool {
    prompt.lines().any(|line| line.starts_with("- ") && line.contains("(task "))
}

/// Facts stated with "remember that …" and later restated: (first, later, question).
const STATED: &[(&str, &str, &str)] = &[
    (
        "The API rate limit is 100 requests per minute",
        "The API rate limit is 500 requests per minute",
        "What is our API rate limit?",
    ),
    ("The mobile team lead is Elena", "The mobile team lead is Jonas", "Who leads the mobile team?"),
    ("The demo day is on the 12th", "The demo day is on the 19th", "When is the demo day?"),
    (
        "The search index runs on Postgres",
        "We moved the search index to OpenSearch",
        "Where does the search index run?",
    ),
];

/// Plants every fact and update in one long conversation, each buried under unrelated turns
/// (the first ones deepest), then asks about each; a second chat holds facts asked about on a
/// new chat's first message; a third is deleted before anything is asked.
async fn run(embeddings: bool) -> Scores {
    let bench = Bench::new(embeddings);
    let mut scores = Scores::default();
    let mut n = 0;
    for fact in FACTS {
        bench.say("work", fact.statement, "Noted.").await;
        bench.filler("work", n, FILLER_PER_FACT).await;
        n += FILLER_PER_FACT;
    }
    for update in UPDATES {
        bench.say("work", update.old, "Noted.").await;
        bench.filler("work", n, FILLER_PER_FACT).await;
        n += FILLER_PER_FACT;
    }
    for update in UPDATES {
        bench.say("work", update.new, "Noted, updated.").await;
        bench.filler("work", n, FILLER_PER_FACT).await;
        n += FILLER_PER_FACT;
    }
    // Far enough that the window holds none of the plantings.
    bench.filler("work", n, 30).await;

    for fact in FACTS {
        let literal = bench.prompt("work", fact.literal).await.contains(fact.statement);
        let reworded = bench.prompt("work", fact.reworded).await.contains(fact.statement);
        scores.literal.0 += literal as usize;
        scores.reworded.0 += reworded as usize;
        if !literal || !reworded {
            eprintln!("[embeddings {embeddings}] missed {:?} (literal {literal}, reworded {reworded})", fact.statement);
        }
    }
    scores.literal.1 = FACTS.len();
    scores.reworded.1 = FACTS.len();

    for update in UPDATES {
        let prompt = bench.prompt("work", update.question).await;
        // The newest statement is there, and where both are, it reads as the newer one.
        let current = match (prompt.find(update.new), prompt.find(update.old)) {
            (Some(new), Some(old)) => new > old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !current {
            eprintln!("[embeddings {embeddings}] update not current: {:?}\n{prompt}", update.new);
        }
        scores.updates.0 += current as usize;
    }
    scores.updates.1 = UPDATES.len();

    // Another chat: said there, asked on the first message of a new chat.
    let elsewhere = ["My cat is named Biscuit.", "My flight to Lisbon leaves on the 14th."];
    for (i, line) in elsewhere.iter().enumerate() {
        bench.say("personal", line, "Noted.").await;
        bench.filler("personal", 1_000 + 10 * i, 10).await;
    }
    for (i, (fact, asked)) in
        [(elsewhere[0], "What is my cat named?"), (elsewhere[1], "When does my flight to Lisbon leave?")]
            .iter()
            .enumerate()
    {
        let found = bench.prompt(&format!("new-chat-{i}"), asked).await.contains(fact);
        scores.across.0 += found as usize;
    }
    scores.across.1 = 2;

    // Stated facts: the newer statement replaces the older and both reach a new chat's first
    // message, the newer stated as current and naming the older as replaced.
    for (first, _, _) in STATED {
        bench.say("facts", &format!("Remember that {}.", sentence_case_off(first)), "Noted.").await;
        bench.filler("facts", 3_000, 20).await;
    }
    for (_, later, _) in STATED {
        bench.say("facts", &format!("Please remember that {}.", sentence_case_off(later)), "Noted.").await;
        bench.filler("facts", 3_100, 20).await;
    }
    for (i, (first, later, asked)) in STATED.iter().enumerate() {
        let prompt = bench.prompt(&format!("facts-question-{i}"), asked).await;
        let current = format!("- {later}. (since ");
        let replaced = format!("replaced: \u{201c}{first}.\u{201d}");
        let stated = prompt.lines().find(|l| l.starts_with(&current)).is_some_and(|l| l.contains(&replaced));
        if !stated {
            eprintln!("[embeddings {embeddings}] fact not stated as current: {later:?}\n{prompt}");
        }
        scores.facts.0 += stated as usize;
    }
    scores.facts.1 = STATED.len();

    // Temporal order: two events said in two chats, asked about on a new chat's first message,
    // come back both, the earlier written first.
    for (i, (earlier, later, asked)) in SEQUENCES.iter().enumerate() {
        bench.say("errands", earlier, "Noted.").await;
        bench.filler("errands", 4_000 + 20 * i, 10).await;
        bench.say("work", later, "Noted.").await;
        bench.filler("work", 4_100 + 20 * i, 10).await;
        let prompt = bench.prompt(&format!("order-question-{i}"), asked).await;
        let ordered = matches!((prompt.find(earlier), prompt.find(later)), (Some(a), Some(b)) if a < b);
        if !ordered {
            eprintln!("[embeddings {embeddings}] order lost: {earlier:?} then {later:?}\n{prompt}");
        }
        scores.temporal.0 += ordered as usize;
    }
    scores.temporal.1 = SEQUENCES.len();

    // Abstention: for what was never said, the prompt holds none of the unrelated chatter.
    for (i, asked) in UNANSWERABLE.iter().enumerate() {
        for session in ["work", &format!("unanswerable-{i}")] {
            let prompt = bench.prompt(session, asked).await;
            let abstained = !recalls_filler(&prompt);
            if !abstained {
                eprintln!("[embeddings {embeddings}] noise recalled for {asked:?} in {session}\n{prompt}");
            }
            scores.abstention.0 += abstained as usize;
            scores.abstention.1 += 1;
        }
    }

    // A deleted chat's text never comes back, asked literally or from any other chat.
    let secret = "The vault recovery phrase is orange-kettle-42.";
    bench.say("doomed", secret, "Noted.").await;
    bench.filler("doomed", 2_000, 5).await;
    let doomed = Scope::of(&bench.memory.session(USER, "doomed").await.unwrap());
    bench.memory.delete(&doomed).await.unwrap();
    // A forgotten fact comes back neither as a fact nor as the message that stated it.
    bench.say("personal", "Remember that my locker code is 7319.", "Noted.").await;
    bench.filler("personal", 2_100, 5).await;
    bench.say("personal", "Please forget my locker code.", "Done.").await;
    for (session, question) in [("fresh-2", "What is my locker code?"), ("work", "locker code 7319")] {
        scores.deleted_leaks += bench.prompt(session, question).await.contains("7319") as usize;
    }
    for (session, question) in
        [("work", "What is the vault recovery phrase?"), ("fresh", "vault recovery phrase orange kettle")]
    {
        scores.deleted_leaks += bench.prompt(session, question).await.contains("orange-kettle") as usize;
    }
    bench.memory.shutdown().await;
    scores
}

#[tokio::test]
async fn recall_quality_with_bm25_and_with_embeddings() {
    let bm25 = run(false).await;
    let vectors = run(true).await;
    let row = |name: &str, a: (usize, usize), b: (usize, usize)| {
        println!(
            "| {name} | {}/{} ({:.0} %) | {}/{} ({:.0} %) |",
            a.0,
            a.1,
            percent(a.0, a.1),
            b.0,
            b.1,
            percent(b.0, b.1)
        );
    };
    println!("| category | BM25 only | with embeddings |\n|---|---|---|");
    row("literal recall", bm25.literal, vectors.literal);
    row("reworded recall", bm25.reworded, vectors.reworded);
    row("knowledge updates, newest shown as current", bm25.updates, vectors.updates);
    row("other chat, new chat's first message", bm25.across, vectors.across);
    row("stated facts on a new chat, newest current, older named replaced", bm25.facts, vectors.facts);
    row("temporal order across chats, earlier written first", bm25.temporal, vectors.temporal);
    row("abstention: nothing unrelated recalled for what was never said", bm25.abstention, vectors.abstention);
    println!("| deleted text sent upstream | {} | {} |", bm25.deleted_leaks, vectors.deleted_leaks);

    for (mode, s) in [("BM25", &bm25), ("embeddings", &vectors)] {
        assert!(percent(s.literal.0, s.literal.1) >= 95.0, "{mode}: literal recall {:?}", s.literal);
        assert_eq!(s.updates.0, s.updates.1, "{mode}: knowledge updates");
        assert_eq!(s.across.0, s.across.1, "{mode}: recall from another chat on a first message");
        assert_eq!(s.facts.0, s.facts.1, "{mode}: stated facts");
        assert_eq!(s.temporal.0, s.temporal.1, "{mode}: temporal order");
        assert_eq!(s.abstention.0, s.abstention.1, "{mode}: unrelated messages recalled for what was never said");
        assert_eq!(s.deleted_leaks, 0, "{mode}: deleted text came back");
    }
    assert!(percent(vectors.reworded.0, vectors.reworded.1) >= 90.0, "reworded with embeddings {:?}", vectors.reworded);
}
