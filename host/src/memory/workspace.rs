//! Workspace files: text a user attaches to a workspace, cut into chunks that are stored and
//! indexed like messages of a hidden session (`ws:<user>:<workspace>`, or `…:b`: see
//! [`Slots`]), so they are recalled into that workspace's chats and deleted with it. A new file
//! is appended; replacing or removing one rewrites the others into the other slot, so the old
//! text leaves the store.

use super::slots::Slots;
use crate::tokens;

/// Tokens per chunk: small enough that a recalled chunk is to the point, large enough to
/// carry a paragraph.
const CHUNK_TOKENS: usize = 200;

/// The two hidden sessions a workspace's files may live in.
pub fn slots(user: &str, workspace: &str) -> Slots {
    let a = format!("ws:{user}:{workspace}");
    Slots { ids: [a.clone(), format!("{a}:b")], label: format!("workspace {workspace}") }
}

/// Whether a session id is a workspace's (never shown as a chat).
pub fn is_workspace(session: &str) -> bool {
    session.starts_with("ws:")
}

/// Cuts `text` into chunks of about [`CHUNK_TOKENS`], on paragraph and then line boundaries;
/// a single longer line is cut by words.
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let pieces = text.split("\n\n").flat_map(|paragraph| {
        if tokens::count(paragraph) <= CHUNK_TOKENS {
            vec![paragraph.to_string()]
        } else {
            paragraph.lines().flat_map(split_long_line).collect()
        }
    });
    for piece in pieces.map(|p| p.trim().to_string()).filter(|p| !p.is_empty()) {
        if !current.is_empty() && tokens::count(&current) + tokens::count(&piece) > CHUNK_TOKENS {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(&piece);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn split_long_line(line: &str) -> Vec<String> {
    if tokens::count(line) <= CHUNK_TOKENS {
        return vec![line.to_string()];
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    // Roughly three words per four tokens in English prose.
    words.chunks(CHUNK_TOKENS * 3 / 4).map(|w| w.join(" ")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks keep paragraphs together, stay near the size, and lose no words.
    #[test]
    fn chunks_respect_boundaries_and_size() {
        let paragraph = "The deploy key lives in the team vault. ".repeat(5);
        let text = (0..12).map(|i| format!("Section {i}. {paragraph}")).collect::<Vec<_>>().join("\n\n");
        let chunks = chunks(&text);
        assert!(chunks.len() > 2);
        assert!(
            chunks.iter().all(|c| tokens::count(c) <= CHUNK_TOKENS + 60),
            "{:?}",
            chunks.iter().map(|c| tokens::count(c)).collect::<Vec<_>>()
        );
        let words = |s: &str| s.split_whitespace().count();
        assert_eq!(chunks.iter().map(|c| words(c)).sum::<usize>(), words(&text));
        assert!(chunks[0].starts_with("Section 0."));
    }

    /// A single huge line is still cut.
    #[test]
    fn long_lines_are_cut() {
        let line = "word ".repeat(2000);
        assert!(chunks(&line).len() >= 5);
        assert!(chunks("").is_empty());
    }
}
