//! BM25 over one session's messages: the bm25 crate's tokenizer (stemming, stop words) and term
//! weights, with our own inverted index. The crate's search engine scores, clones and sorts every
//! message that shares a word with the query (in a long session a common word is in thousands);
//! here postings are kept in `seq` order and merged, only the best `k` are kept, and once those
//! are good enough the postings of common words are only looked into for messages a rarer word
//! found (MaxScore), so "we" or "decided" in every message costs little. A line said
//! again (the same question asked every morning) is indexed once, under its oldest copy, so
//! copies never crowd the results.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use bm25::{Embedder, EmbedderBuilder};

/// Average message length in BM25 tokens, for length normalisation; chat turns are short.
const AVERAGE_TOKENS: f32 = 30.0;

/// An inverted index: for each term, the messages holding it (by `seq`, ascending) with the
/// term's weight in that message.
pub struct Lexical {
    embedder: Embedder<u32>,
    postings: HashMap<u32, Postings>,
    /// The messages of each distinct text (by [`fingerprint`]), oldest first; the first is
    /// the one indexed.
    copies: HashMap<u64, Vec<u64>>,
    /// The [`fingerprint`] of each message added.
    fingerprints: HashMap<u64, u64>,
    documents: usize,
}

impl Default for Lexical {
    fn default() -> Self {
        Self {
            embedder: EmbedderBuilder::<u32>::with_avgdl(AVERAGE_TOKENS).build(),
            postings: HashMap::new(),
            copies: HashMap::new(),
            fingerprints: HashMap::new(),
            documents: 0,
        }
    }
}

impl Lexical {
    /// Adds message `seq` (not already added) with `text`.
    pub fn insert(&mut self, seq: u64, text: &str) {
        let key = fingerprint(text);
        self.fingerprints.insert(seq, key);
        let seqs = self.copies.entry(key).or_default();
        let at = seqs.partition_point(|s| *s < seq);
        seqs.insert(at, seq);
        match (at, seqs.get(1).copied()) {
            (0, Some(newer)) => {
                // An older copy of an indexed line: it takes the newer one's place.
                self.unindex(newer, text);
                self.index(seq, text);
            }
            (0, None) => self.index(seq, text),
            _ => {}
        }
    }

    /// Drops message `seq`, added earlier with this `text`.
    pub fn remove(&mut self, seq: u64, text: &str) {
        let Some(key) = self.fingerprints.remove(&seq) else { return };
        let Some(seqs) = self.copies.get_mut(&key) else { return };
        let Some(at) = seqs.iter().position(|s| *s == seq) else { return };
        seqs.remove(at);
        let next = seqs.first().copied();
        if next.is_none() {
            self.copies.remove(&key);
        }
        if at == 0 {
            self.unindex(seq, text);
            if let Some(next) = next {
                self.index(next, text);
            }
        }
    }

    /// The [`fingerprint`] of message `seq`'s text, if it was added: equal for copies of a line.
    pub fn fingerprint_of(&self, seq: u64) -> Option<u64> {
        self.fingerprints.get(&seq).copied()
    }

    fn index(&mut self, seq: u64, text: &str) {
        let terms = self.terms(text);
        if terms.is_empty() {
            return;
        }
        self.documents += 1;
        for (term, weight) in terms {
            let postings = self.postings.entry(term).or_default();
            postings.max_weight = postings.max_weight.max(weight);
            let list = &mut postings.entries;
            // Messages arrive in `seq` order; anything else is placed where it belongs.
            match list.last() {
                Some((last, _)) if *last > seq => {
                    let at = list.partition_point(|(s, _)| *s < seq);
                    list.insert(at, (seq, weight));
                }
                _ => list.push((seq, weight)),
            }
        }
    }

    fn unindex(&mut self, seq: u64, text: &str) {
        let terms = self.terms(text);
        let mut found = false;
        for (term, _) in terms {
            let Some(postings) = self.postings.get_mut(&term) else { continue };
            if let Ok(at) = postings.entries.binary_search_by_key(&seq, |(s, _)| *s) {
                postings.entries.remove(at);
                found = true;
            }
            if postings.entries.is_empty() {
                self.postings.remove(&term);
            }
        }
        self.documents -= usize::from(found);
    }

    /// The best `k` messages with `seq < before` for `query`, best first (ties: older first), all
    /// with a score above zero and no two with the same text.
    pub fn search(&self, query: &str, before: u64, k: usize) -> Vec<(u64, f32)> {
        if k == 0 {
            return Vec::new();
        }
        let n = self.documents as f32;
        // Each query term's postings below `before`, weighted by the term's IDF.
        let mut cursors: Vec<Cursor> = self
            .terms(query)
            .into_iter()
            .filter_map(|(term, _)| self.postings.get(&term))
            .map(|p| {
                let df = p.entries.len() as f32;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                let rest = &p.entries[..p.entries.partition_point(|(s, _)| *s < before)];
                Cursor { rest, idf, bound: idf * p.max_weight, essential: true }
            })
            .filter(|c| !c.rest.is_empty())
            .collect();
        // Weakest first: the order in which terms stop being essential.
        let mut weakest: Vec<usize> = (0..cursors.len()).collect();
        weakest.sort_by(|a, b| cursors[*a].bound.total_cmp(&cursors[*b].bound));
        let (mut dropped, mut dropped_bound) = (0, 0.0);
        // Merge by `seq`, summing each message's terms (in query order, so equal texts score
        // equally); a min-heap keeps the best `k`.
        let mut best = Best::new(k);
        let mut parts = vec![0.0f32; cursors.len()];
        loop {
            let proposed = cursors.iter().filter(|c| c.essential).filter_map(|c| c.rest.first()).map(|(s, _)| *s).min();
            let Some(seq) = proposed else { break };
            parts.fill(0.0);
            for (c, part) in cursors.iter_mut().zip(&mut parts).filter(|(c, _)| c.essential) {
                *part = c.take(seq);
            }
            // Messages come oldest first and an older one wins a tie, so one that cannot beat
            // the k-th score even with every other term at its best is passed over unlooked.
            if best.floor().is_some_and(|floor| parts.iter().sum::<f32>() + dropped_bound <= floor) {
                continue;
            }
            for (c, part) in cursors.iter_mut().zip(&mut parts).filter(|(c, _)| !c.essential) {
                c.rest = &c.rest[skip_below(c.rest, seq)..];
                *part = c.take(seq);
            }
            let score: f32 = parts.iter().sum();
            if score <= 0.0 || !best.offer(seq, score) {
                continue;
            }
            // Terms whose bounds together stay below the k-th score can no longer place a
            // message on their own.
            if let Some(floor) = best.floor() {
                while let Some(&next) = weakest.get(dropped)
                    && dropped_bound + cursors[next].bound < floor
                {
                    cursors[next].essential = false;
                    dropped += 1;
                    dropped_bound += cursors[next].bound;
                }
            }
        }
        best.ranked()
    }

    /// The distinct terms of `text` with their BM25 weight (the crate repeats a term per use).
    fn terms(&self, text: &str) -> Vec<(u32, f32)> {
        // A workspace chunk has hundreds of tokens: a set, not a scan of what was kept.
        let mut seen = std::collections::HashSet::new();
        self.embedder.embed(text).0.into_iter().filter(|t| seen.insert(t.index)).map(|t| (t.index, t.value)).collect()
    }
}

/// A hash of `text` as compared for copies, where case and runs of whitespace do not count:
/// the same line said twice hashes the same. FNV-1a over the words, lowered byte by byte where
/// they are ASCII (most are), so nothing is copied.
pub fn fingerprint(text: &str) -> u64 {
    let mut hash = 0xcbf29ce484222325u64;
    let mut add = |b: u8| hash = (hash ^ b as u64).wrapping_mul(0x100000001b3);
    for word in text.split_whitespace() {
        match word.is_ascii() {
            true => word.bytes().for_each(|b| add(b.to_ascii_lowercase())),
            false => word.to_lowercase().bytes().for_each(&mut add),
        }
        add(0xff);
    }
    hash
}

/// The messages holding one term.
#[derive(Default)]
struct Postings {
    /// By `seq`, with the term's weight in that message.
    entries: Vec<(u64, f32)>,
    /// At least every weight in `entries` (removals leave it as it was).
    max_weight: f32,
}

/// How many of `entries` (by `seq`, ascending) come before `seq`. A non-essential term is
/// looked up for one message after another, a little further each time: doubling steps from
/// the front, then a binary search within the last, touch a few nearby entries instead of a
/// binary search's scattered dozen in a long list.
fn skip_below(entries: &[(u64, f32)], seq: u64) -> usize {
    let mut end = 1;
    while end < entries.len() && entries[end - 1].0 < seq {
        end *= 2;
    }
    let start = end / 2;
    let end = end.min(entries.len());
    start + entries[start..end].partition_point(|(s, _)| *s < seq)
}

/// One query term's postings while searching.
struct Cursor<'a> {
    /// What is left to merge, by `seq`.
    rest: &'a [(u64, f32)],
    idf: f32,
    /// The most this term adds to any score.
    bound: f32,
    /// Whether it proposes messages; a non-essential term is only looked up for messages the
    /// others proposed, since on its own it cannot reach the best `k`.
    essential: bool,
}

impl Cursor<'_> {
    /// The term's part of message `seq`'s score, moving past it, if the term is next in `seq`.
    fn take(&mut self, seq: u64) -> f32 {
        match self.rest.first() {
            Some((s, weight)) if *s == seq => {
                self.rest = &self.rest[1..];
                self.idf * weight
            }
            _ => 0.0,
        }
    }
}

/// The best `k` messages offered, by score and then the older first, kept in a min-heap of
/// `k`: recall's top-k for BM25 here and for embeddings in `index`.
pub struct Best {
    heap: BinaryHeap<Reverse<Ranked>>,
    k: usize,
}

impl Best {
    pub fn new(k: usize) -> Self {
        Self { heap: BinaryHeap::with_capacity(k.min(256) + 1), k }
    }

    /// Keeps message `seq` if it ranks among the best `k` so far; false if it does not.
    pub fn offer(&mut self, seq: u64, score: f32) -> bool {
        let ranked = Ranked { score, seq };
        if self.k == 0 || self.floor_ranked().is_some_and(|min| ranked <= *min) {
            return false;
        }
        self.heap.push(Reverse(ranked));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
        true
    }

    /// The `k`-th score, once `k` messages are kept: what a newcomer must beat.
    pub fn floor(&self) -> Option<f32> {
        self.floor_ranked().map(|min| min.score)
    }

    fn floor_ranked(&self) -> Option<&Ranked> {
        self.heap.peek().filter(|_| self.heap.len() == self.k).map(|Reverse(min)| min)
    }

    /// The kept messages with their scores, best first.
    pub fn ranked(self) -> Vec<(u64, f32)> {
        self.heap.into_sorted_vec().into_iter().map(|Reverse(r)| (r.seq, r.score)).collect()
    }
}

/// A message's score; greater is better, and among equal scores the older message.
#[derive(PartialEq)]
struct Ranked {
    score: f32,
    seq: u64,
}

impl Eq for Ranked {}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The merged, bounded search ranks exactly as scoring every message would.
    #[test]
    fn top_k_matches_a_full_ranking() {
        let mut index = Lexical::default();
        let topics = ["deploys", "postgres", "the parser", "billing", "tests"];
        let texts: Vec<String> = (0..500)
            .map(|i| {
                format!("note {i}: about {}, we decided to keep option {} {}", topics[i % 5], i % 7, "x ".repeat(i % 4))
            })
            .collect();
        for (i, t) in texts.iter().enumerate() {
            index.insert(i as u64 + 1, t);
        }
        let query = "what did we decide about postgres and option 3?";
        // Every message scored on its own: the sum over the query's terms of IDF times weight.
        let n = texts.len() as f32;
        let mut full: Vec<(u64, f32)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let doc = index.terms(t);
                let score = index
                    .terms(query)
                    .iter()
                    .filter_map(|(term, _)| {
                        Some((doc.iter().find(|(d, _)| d == term)?.1, index.postings[term].entries.len() as f32))
                    })
                    .map(|(weight, df)| (1.0 + (n - df + 0.5) / (df + 0.5)).ln() * weight)
                    .sum::<f32>();
                (i as u64 + 1, score)
            })
            .collect();
        full.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert!(full.iter().all(|(_, s)| *s > 0.0), "every note shares 'decided'");
        let close = |a: &[(u64, f32)], b: &[(u64, f32)]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-5)
        };
        assert!(close(&index.search(query, u64::MAX, 7), &full[..7]), "{:?}", &full[..7]);
        assert!(close(&index.search(query, u64::MAX, usize::MAX), &full));
        // `before` keeps newer messages out without changing the others' scores.
        let older: Vec<_> = full.iter().filter(|(s, _)| *s < 100).take(5).cloned().collect();
        assert!(close(&index.search(query, 100, 5), &older));
        assert!(index.search("quantum chromodynamics", u64::MAX, 5).is_empty());
    }

    /// Copies of a line are found once, as the oldest copy below `before`; removing that copy
    /// hands its place to the next.
    #[test]
    fn copies_take_one_place() {
        let mut index = Lexical::default();
        index.insert(5, "What did we decide about Postgres?");
        index.insert(2, "what did  we decide about postgres?");
        index.insert(7, "we decided to use postgres");
        index.insert(9, "what did we decide about postgres?");
        let seqs = |index: &Lexical, before| {
            index.search("decide postgres", before, 10).into_iter().map(|(s, _)| s).collect::<Vec<_>>()
        };
        assert_eq!(seqs(&index, u64::MAX), [2, 7]);
        index.remove(2, "what did  we decide about postgres?");
        assert_eq!(seqs(&index, u64::MAX), [5, 7]);
        assert_eq!(seqs(&index, 6), [5]);
        index.remove(9, "what did we decide about postgres?");
        index.remove(5, "What did we decide about Postgres?");
        assert_eq!(seqs(&index, u64::MAX), [7]);
        assert!(index.copies.len() == 1 && index.documents == 1);
    }

    /// A removed message is no longer found and no longer counts towards IDF.
    #[test]
    fn removal() {
        let mut index = Lexical::default();
        index.insert(1, "the deploy key lives in vault");
        index.insert(2, "lunch was pizza");
        let before = index.search("deploy key", u64::MAX, 5);
        index.insert(3, "the deploy key lives in the keychain");
        index.remove(3, "the deploy key lives in the keychain");
        assert_eq!(index.search("deploy key", u64::MAX, 5), before);
        index.remove(1, "the deploy key lives in vault");
        assert!(index.search("deploy key", u64::MAX, 5).is_empty());
        assert_eq!(index.search("pizza", u64::MAX, 5).len(), 1);
    }
}
