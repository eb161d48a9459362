//! Splits a byte stream that arrives in arbitrary pieces into text lines; shared by the
//! [`sse`](crate::sse) and [`ndjson`](crate::ndjson) parsers, which give the lines meaning.

/// Buffers bytes until a line ends at `\n`, `\r\n` or a lone `\r`.
///
/// Lines are split on bytes before decoding, so a UTF-8 character cut between two chunks is
/// decoded whole; invalid UTF-8 is replaced rather than refused.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` opening this one belongs to that line end.
    skip_lf: bool,
}

impl LineSplitter {
    /// Appends `chunk` and returns the lines it completes, without their line ends.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.skip_lf) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' => lines.push(self.take_line()),
                b'\r' => {
                    lines.push(self.take_line());
                    self.skip_lf = true;
                }
                _ => self.partial.push(byte),
            }
        }
        lines
    }

    /// The unterminated last line at the end of the stream, if any.
    pub(crate) fn finish(&mut self) -> Option<String> {
        self.skip_lf = false;
        (!self.partial.is_empty()).then(|| self.take_line())
    }

    fn take_line(&mut self) -> String {
        let bytes = std::mem::take(&mut self.partial);
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line-end form is recognised, including `\r\n` split across two chunks.
    #[test]
    fn line_ends_across_chunks() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.feed(b"a\nb\r"), ["a", "b"]);
        assert_eq!(splitter.feed(b"\nc\rd"), ["c"]);
        assert_eq!(splitter.feed(b"\r\n\n"), ["d", ""]);
        assert_eq!(splitter.finish(), None);
    }

    /// A multi-byte character cut between chunks decodes whole.
    #[test]
    fn utf8_across_chunks() {
        let mut splitter = LineSplitter::default();
        let text = "héllo\n".as_bytes();
        assert!(splitter.feed(&text[..2]).is_empty());
        assert_eq!(splitter.feed(&text[2..]), ["héllo"]);
    }

    /// An unterminated last line is returned by `finish`.
    #[test]
    fn trailing_line() {
        let mut splitter = LineSplitter::default();
        assert!(splitter.feed(b"{\"done\":true}").is_empty());
        assert_eq!(splitter.finish().as_deref(), Some("{\"done\":true}"));
        assert_eq!(splitter.finish(), None);
    }
}
