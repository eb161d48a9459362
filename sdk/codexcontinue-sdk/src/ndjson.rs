//! An incremental splitter for newline-delimited JSON bodies (Ollama, Cohere streams): yields
//! one complete line per JSON value; parsing each value is left to the plugin's own types.

use crate::lines::LineSplitter;

/// Splits NDJSON byte chunks, cut at arbitrary points, into complete non-blank lines.
#[derive(Debug, Default)]
pub struct Splitter {
    lines: LineSplitter,
}

impl Splitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes the next piece of the body and returns the lines it completes; blank lines
    /// are skipped and surrounding whitespace is trimmed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.lines.feed(chunk).into_iter().filter_map(non_blank).collect()
    }

    /// Ends the stream: returns the last line if the body did not end with a newline.
    pub fn finish(&mut self) -> Option<String> {
        self.lines.finish().and_then(non_blank)
    }
}

fn non_blank(line: String) -> Option<String> {
    let trimmed = line.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values split across chunks come out whole; blank lines and `\r\n` are tolerated.
    #[test]
    fn lines_across_chunks() {
        let mut splitter = Splitter::new();
        assert_eq!(splitter.feed(b"{\"a\":1}\r\n{\"b\""), ["{\"a\":1}"]);
        assert_eq!(splitter.feed(b":2}\n\n  \n{\"c\":3}"), ["{\"b\":2}"]);
        assert_eq!(splitter.finish().as_deref(), Some("{\"c\":3}"));
        assert_eq!(splitter.finish(), None);
    }
}
