//! The accept loop: one task per connection on hyper's server builder, so the edge can set what
//! `axum::serve` does not expose. Connections are capped by a semaphore taken at accept; each
//! gets `TCP_NODELAY`, a header-read timeout and graceful shutdown; on shutdown the listener
//! closes, requests and streams in flight get a grace period, and whatever is left is cut.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::EdgeConfig;

/// The whole reply to a connection over the cap: small enough for one non-blocking write.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 139\r\n\r\n{\"error\":{\"message\":\"the server has as many connections \
as it accepts; retry shortly\",\"type\":\"server_error\",\"code\":\"too_many_connections\"}}";

/// Accepts one connection and turns off Nagle's algorithm on it: a streamed reply is a series
/// of small writes, and with Nagle each waits for the client's delayed ACK (~40 ms on Linux)
/// whenever an earlier one is unacknowledged, as on every reused keep-alive connection.
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY on a connection from {peer}: {e}");
    }
    Ok((stream, peer))
}

/// Serves `app` on `listener` until `shutdown` completes, then drains within the grace period.
pub async fn run(
    listener: TcpListener,
    app: Router,
    config: &EdgeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    let header_timeout = Duration::from_millis(config.header_timeout_ms);
    // hyper starts this timer at accept and again whenever a connection goes idle between
    // requests, so it bounds both a slow request head and an idle keep-alive connection.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    // HTTP/2 (prior knowledge) has no request-head timer; pings drop peers that went away.
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(header_timeout));
    let service = TowerToHyperService::new(app);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            // Reaps finished connections, so the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = accept(&listener) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    on_accept_error(e).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, peer);
            continue;
        };
        metrics::gauge!("codexcontinue_connections_open").increment(1.0);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service.clone()).into_owned());
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer}: {e}");
            }
            metrics::gauge!("codexcontinue_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    tracing::info!("stopped accepting; {} connections have {} ms to finish", connections.len(), grace.as_millis());
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("cutting {} connections still open after the shutdown grace period", connections.len());
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Over the cap: a fixed 503 written without waiting, then close. Nothing is kept per refused
/// connection, so a flood of them cannot grow memory.
fn refuse(stream: TcpStream, peer: SocketAddr) {
    metrics::counter!("codexcontinue_connections_refused_total").increment(1);
    tracing::debug!("refused a connection from {peer}: at the connection cap");
    let _ = stream.try_write(BUSY);
    // Read what already arrived, so closing sends FIN rather than a reset that could overtake
    // the reply.
    let mut sink = [0u8; 4096];
    while matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {}
}

/// Per-connection failures (the peer gave up before accept) are routine; anything else (out of
/// file descriptors) is logged and given a moment to clear, rather than spinning.
async fn on_accept_error(e: io::Error) {
    use io::ErrorKind as K;
    if matches!(e.kind(), K::ConnectionAborted | K::ConnectionRefused | K::ConnectionReset) {
        return;
    }
    tracing::error!("accepting a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted connections have Nagle's algorithm off.
    #[tokio::test]
    async fn accepted_sockets_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = accept(&listener).await.unwrap();
        assert!(server.nodelay().unwrap());
        drop(client);
    }

    /// The refusal is a complete HTTP reply with the API's error shape.
    #[test]
    fn busy_reply_is_well_formed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections");
    }
}
