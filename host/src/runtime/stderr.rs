//! Captures what a guest writes to stdout/stderr (a Rust guest's panic message goes there), so
//! the host can log it with the plugin's name instead of losing it — with the plugin's secret
//! values masked, since a guest may print what a vendor echoed back.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::capabilities::mask::Masker;

/// Keeps the first `capacity` bytes written and silently drops the rest, so a chatty guest can
/// neither fill the host's memory nor fail (and panic) on a full pipe.
#[derive(Clone, Debug)]
pub struct CapturedOutput {
    capacity: usize,
    buffer: Arc<Mutex<Vec<u8>>>,
    masker: Arc<Masker>,
}

impl CapturedOutput {
    /// An empty capture of at most `capacity` bytes, masking nothing.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, buffer: Arc::default(), masker: Arc::default() }
    }

    /// The same capture, masking `masker`'s values in [`text`](Self::text).
    pub fn masking(self, masker: Arc<Masker>) -> Self {
        Self { masker, ..self }
    }

    /// What was written, lossily decoded, trimmed and masked. When the capture is full, its
    /// last bytes may be the start of a value cut off by the limit, so they are dropped too.
    pub fn text(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::from_utf8_lossy(&buffer).into_owned();
        self.masker.mask_in_place(&mut text);
        if buffer.len() >= self.capacity && !self.masker.is_empty() {
            let keep = text.len().saturating_sub(self.masker.longest().saturating_sub(1));
            let kept = crate::capabilities::log::truncate(&text, keep).len();
            text.truncate(kept);
        }
        text.trim().to_string()
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.capacity.saturating_sub(buffer.len());
        buffer.extend_from_slice(&buf[..buf.len().min(room)]);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A value the guest prints is masked, even when it is written in two pieces; one cut by the
    /// capacity is dropped rather than shown in part.
    #[tokio::test]
    async fn masks_secret_values() {
        let masker = Arc::new(Masker::new([("OPENAI_API_KEY", "sk-test-0123456789")]));
        let output = CapturedOutput::new(1024).masking(masker.clone());
        let mut stream = Box::into_pin(output.async_stream());
        stream.write_all(b"vendor said: Bearer sk-test-01").await.unwrap();
        stream.write_all(b"23456789 bye").await.unwrap();
        assert_eq!(output.text(), "vendor said: Bearer [redacted:OPENAI_API_KEY] bye");

        let full = CapturedOutput::new(20).masking(masker);
        Box::into_pin(full.async_stream()).write_all(b"0123456789 sk-test-0123456789").await.unwrap();
        assert!(!full.text().contains("sk-test-01"), "{}", full.text());
    }
}
