//! Masks secret values in whatever a plugin hands back to the host — replies, stream deltas,
//! tool-call arguments, log lines, stdout/stderr — so a vendor that echoes our request headers
//! cannot carry a key out to a client, the store or the log. Built once per plugin from the
//! values its `[secrets]` may inject (see `secrets.rs`); applied by `providers` and the `log`
//! and stderr captures, never per dialect.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};

/// Finds every secret value in a text and replaces it with `[redacted:NAME]`.
#[derive(Clone, Default)]
pub struct Masker {
    /// `None` when there is nothing to mask (no secret has a value).
    matcher: Option<AhoCorasick>,
    /// The replacement for each pattern, by pattern index.
    replacements: Vec<String>,
    /// The values themselves, to tell whether a stream's tail could be the start of one.
    values: Vec<Box<str>>,
    /// Length in bytes of the longest value: a stream holds back one byte less than this.
    longest: usize,
}

impl Masker {
    /// A masker for `(name, value)` pairs; empty values are skipped.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let (replacements, values) = secrets
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, value)| (format!("[redacted:{name}]"), Box::from(value)))
            .unzip();
        Self::from_parts(replacements, values)
    }

    /// One masker for the values of all `maskers`, each value once (the first name wins):
    /// for text that is no single plugin's, such as what clients send.
    pub fn union<'a>(maskers: impl IntoIterator<Item = &'a Masker>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let (replacements, values) = maskers
            .into_iter()
            .flat_map(|m| m.replacements.iter().zip(&m.values))
            .filter(|(_, value)| seen.insert(&**value))
            .map(|(replacement, value)| (replacement.clone(), value.clone()))
            .unzip();
        Self::from_parts(replacements, values)
    }

    fn from_parts(replacements: Vec<String>, values: Vec<Box<str>>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        // Leftmost-longest: when one value is a prefix of another, the longer is masked whole.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(values.iter().map(|v| v.as_bytes()))
            .expect("a few literal secret values always build");
        let longest = values.iter().map(|v| v.len()).max().unwrap_or(0);
        Self { matcher: Some(matcher), replacements, values, longest }
    }

    /// Whether there is any value to mask.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every secret value replaced; borrowed when there was none.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => Cow::Owned(m.replace_all(text, &self.replacements)),
            _ => Cow::Borrowed(text),
        }
    }

    /// Length in bytes of the longest value (0 when empty).
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Masks `text` in place.
    pub fn mask_in_place(&self, text: &mut String) {
        if let Cow::Owned(masked) = self.mask(text) {
            *text = masked;
        }
    }

    /// A masker for text that arrives in pieces (stream deltas, tool-call argument fragments).
    pub fn stream(self: &Arc<Self>) -> MaskStream {
        MaskStream { masker: self.clone(), pending: String::new() }
    }
}

impl fmt::Debug for Masker {
    /// Never shows a value; the replacements name the secrets only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Masker").field(&self.replacements).finish()
    }
}

/// Masks a text that arrives in pieces: a secret split across two pieces is still masked.
///
/// Invariant: what [`push`](Self::push) returns can never be the start of a secret that the
/// next piece completes. Only a tail that could be such a start is held back (at most
/// `longest - 1` bytes, and usually nothing), until more text arrives or
/// [`finish`](Self::finish) is called; other text passes on with its pieces as they came.
#[derive(Debug)]
pub struct MaskStream {
    masker: Arc<Masker>,
    pending: String,
}

impl MaskStream {
    /// Adds `piece`; returns the masked text that is now safe to pass on (may be empty).
    pub fn push(&mut self, piece: &str) -> String {
        let Some(matcher) = &self.masker.matcher else {
            return piece.to_string();
        };
        self.pending.push_str(piece);
        let len = self.pending.len();
        // The earliest tail that some value starts with is held back; it lies within the
        // last `longest - 1` bytes, since a longer one would contain a whole value.
        let lowest = len.saturating_sub(self.masker.longest - 1);
        let hold = (lowest..len)
            .filter(|&at| self.pending.is_char_boundary(at))
            .find(|&at| self.masker.values.iter().any(|v| v.starts_with(&self.pending[at..])))
            .unwrap_or(len);
        // A match starting before `hold` is final: a longer value starting there would have
        // made its start a held tail, and one starting before `lowest` already fits whole.
        let mut out = String::with_capacity(hold);
        let mut done = 0;
        for found in matcher.find_iter(&self.pending) {
            if found.start() >= hold {
                break;
            }
            out.push_str(&self.pending[done..found.start()]);
            out.push_str(&self.masker.replacements[found.pattern().as_usize()]);
            done = found.end();
        }
        let end = hold.max(done);
        out.push_str(&self.pending[done..end]);
        self.pending.drain(..end);
        out
    }

    /// The masked rest of the text, once no more pieces will come.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.masker.mask(&rest).into_owned()
    }

    /// Whether text is being held back.
    pub fn is_holding(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker() -> Arc<Masker> {
        Arc::new(Masker::new([("OPENAI_API_KEY", "sk-test-123"), ("LONG", "sk-test-123456"), ("EMPTY", "")]))
    }

    /// Every value is masked with its name; the longer of two overlapping values wins.
    #[test]
    fn masks_whole_texts() {
        let m = masker();
        assert_eq!(m.mask("key sk-test-123 and sk-test-123456!"), "key [redacted:OPENAI_API_KEY] and [redacted:LONG]!");
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
        assert!(Masker::new([("EMPTY", "")]).is_empty());
        assert!(!format!("{m:?}").contains("sk-test"));
    }

    /// A union masks every value of every part under the name it first had.
    #[test]
    fn unions_mask_every_part() {
        let a = Masker::new([("A_KEY", "alpha-secret")]);
        let b = Masker::new([("B_KEY", "beta-secret"), ("SAME", "alpha-secret")]);
        let both = Masker::union([&a, &b, &Masker::default()]);
        assert_eq!(both.mask("alpha-secret beta-secret"), "[redacted:A_KEY] [redacted:B_KEY]");
        assert_eq!(both.longest(), "alpha-secret".len());
        assert!(Masker::union([&Masker::default()]).is_empty());
    }

    /// However a text is cut into pieces, the stream's output equals masking the whole.
    #[test]
    fn masks_values_split_across_pieces() {
        let m = masker();
        let text = "Bearer sk-test-123, then sk-test-123456 and ünïcødé sk-test-12 sk-test-123";
        for size in 1..=text.len() {
            let mut stream = m.stream();
            let mut out = String::new();
            let mut rest = text;
            while !rest.is_empty() {
                let mut at = size.min(rest.len());
                while !rest.is_char_boundary(at) {
                    at += 1;
                }
                out.push_str(&stream.push(&rest[..at]));
                assert!(!out.contains("sk-test-123,") && !out.contains("sk-test-123456"), "size {size}: {out}");
                rest = &rest[at..];
            }
            out.push_str(&stream.finish());
            assert_eq!(out, m.mask(text), "pieces of {size} bytes");
        }
    }

    /// Text passes on as it came; only a tail that could start a value is held back.
    #[test]
    fn holds_back_only_what_could_start_a_value() {
        let m = masker();
        let mut stream = m.stream();
        assert_eq!(stream.push("hello world, a harmless delta"), "hello world, a harmless delta");
        assert!(!stream.is_holding());
        assert_eq!(stream.push(" ends in sk-te"), " ends in ");
        assert!(stream.is_holding());
        assert_eq!(stream.push("a time"), "sk-tea time");
        let none = Arc::new(Masker::default());
        assert_eq!(none.stream().push("abc"), "abc");
    }
}
