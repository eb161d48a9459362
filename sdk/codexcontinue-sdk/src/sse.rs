//! An incremental parser for `text/event-stream` (server-sent events) bodies, as OpenAI,
//! Anthropic, Mistral and others stream replies. Pure Rust: feed it the pieces from
//! [`Response::chunks`](crate::http::Response::chunks).

use crate::lines::LineSplitter;

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, or `message` when the event named none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Parses server-sent events from byte chunks split at arbitrary points.
///
/// Follows the WHATWG rules: lines end in `\n`, `\r\n` or `\r`; lines starting with `:` are
/// comments (keep-alives); one space after the field's colon is dropped; several `data:` lines
/// join with `\n`; a blank line dispatches the event, and an event without data is dropped.
/// `id:` and `retry:` are ignored: a plugin never reconnects.
#[derive(Debug, Default)]
pub struct Parser {
    lines: LineSplitter,
    event: Option<String>,
    data: Option<String>,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes the next piece of the body and returns the events it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.lines.feed(chunk).into_iter().filter_map(|line| self.line(line)).collect()
    }

    /// Ends the stream: returns the last event if the body stopped without its blank line.
    ///
    /// Browsers drop such an event; vendors' final events sometimes lack the blank line, and
    /// losing the end of a reply is worse than accepting it.
    pub fn finish(&mut self) -> Option<Event> {
        let last = self.lines.finish().and_then(|line| self.line(line));
        last.or_else(|| self.dispatch())
    }

    fn line(&mut self, line: String) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        let data = self.data.take()?;
        Some(Event { event: event.unwrap_or_else(|| "message".to_owned()), data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> Event {
        Event { event: event.to_owned(), data: data.to_owned() }
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::new();
        let mut events: Vec<Event> = chunks.iter().flat_map(|c| parser.feed(c)).collect();
        events.extend(parser.finish());
        events
    }

    /// OpenAI-style `data:` events, the `[DONE]` marker included.
    #[test]
    fn data_only_events() {
        let body = b"data: {\"a\":1}\n\ndata: [DONE]\n\n";
        assert_eq!(parse_all(&[body]), [event("message", "{\"a\":1}"), event("message", "[DONE]")]);
    }

    /// Anthropic-style named events with `\r\n` line ends and keep-alive comments.
    #[test]
    fn named_events_crlf_and_comments() {
        let body = b": ping\r\nevent: content_block_delta\r\ndata: {\"t\":\"hi\"}\r\n\r\n:\r\n\r\nevent: message_stop\r\ndata: {}\r\n\r\n";
        assert_eq!(parse_all(&[body]), [event("content_block_delta", "{\"t\":\"hi\"}"), event("message_stop", "{}")]);
    }

    /// An event split at every possible byte still parses the same.
    #[test]
    fn split_anywhere() {
        let body: &[u8] = b"event: e\r\ndata: one\r\ndata:two\r\n\r\ndata: three\n\n";
        let expected = [event("e", "one\ntwo"), event("message", "three")];
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(parse_all(&[a, b]), expected, "split at {split}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(parse_all(&bytes), expected);
    }

    /// Multi-line data keeps empty lines and only one leading space is stripped.
    #[test]
    fn multi_line_data() {
        let body = b"data:  indented\ndata\ndata: end\n\n";
        assert_eq!(parse_all(&[body]), [event("message", " indented\n\nend")]);
    }

    /// Events without data are dropped, and their name does not leak into the next event.
    #[test]
    fn event_without_data() {
        let body = b"event: lonely\nid: 7\nretry: 10\n\ndata: x\n\n";
        assert_eq!(parse_all(&[body]), [event("message", "x")]);
    }

    /// A stream that stops without its final blank line still yields its last event.
    #[test]
    fn unterminated_last_event() {
        assert_eq!(parse_all(&[b"data: a\n\ndata: b"]), [event("message", "a"), event("message", "b")]);
        assert_eq!(parse_all(&[b"data: c\n"]), [event("message", "c")]);
        assert_eq!(parse_all(&[b""]), []);
    }
}
