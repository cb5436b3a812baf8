//! The HTTP endpoint of `pipeline.metrics.port`: `/metrics` (Prometheus text), `/healthz`
//! (the process answers) and `/readyz` (a run is reading and checkpoints keep coming).
//!
//! It must never hurt the pipeline it reports on: it listens on 127.0.0.1 unless
//! `pipeline.metrics.address` says otherwise, serves at most [`MAX_CONNECTIONS`] at once
//! (others wait in the kernel's backlog, so idle clients cannot take the process's file
//! descriptors from the source and sink connections), gives each connection
//! [`IO_TIMEOUT`] to send its request and take the answer, and backs off when accepting
//! fails (out of file descriptors) instead of spinning.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::metrics::PipelineMetrics;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// How long a client has to send its request, and to take the answer.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// The longest pause after a failed accept.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What `/readyz` checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readiness {
    /// The last checkpoint (or the run's start, before its first one) may be this old.
    pub(crate) max_checkpoint_age: Duration,
}

/// Binds `address:port` and serves until the returned task is dropped or aborted.
pub(crate) async fn serve(
    address: IpAddr,
    port: u16,
    metrics: Arc<PipelineMetrics>,
    readiness: Readiness,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(SocketAddr::new(address, port)).await?;
    Ok(tokio::spawn(accept_loop(
        listener,
        metrics,
        readiness,
        MAX_CONNECTIONS,
        IO_TIMEOUT,
    )))
}

async fn accept_loop(
    listener: TcpListener,
    metrics: Arc<PipelineMetrics>,
    readiness: Readiness,
    max_connections: usize,
    io_timeout: Duration,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut backoff = Duration::from_millis(10);
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(10);
                stream
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accepting a connection failed; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(io_timeout, answer(stream, &metrics, readiness)).await;
        });
    }
}

/// Reads one request head and answers it.
async fn answer(
    mut stream: TcpStream,
    metrics: &PipelineMetrics,
    readiness: Readiness,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        )
    } else {
        match path {
            "/metrics" => (
                "200 OK",
                "text/plain; version=0.0.4",
                metrics.render_prometheus(),
            ),
            "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
            "/readyz" => match metrics.readiness(readiness.max_checkpoint_age) {
                Ok(()) => ("200 OK", "text/plain", "ready\n".to_string()),
                Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
            },
            _ => (
                "404 Not Found",
                "text/plain",
                "try /metrics, /healthz or /readyz\n".to_string(),
            ),
        }
    };
    let body = if method == "HEAD" { "" } else { body.as_str() };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(address).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    const TEST_TIMEOUT: Duration = Duration::from_millis(200);

    async fn start(metrics: Arc<PipelineMetrics>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(accept_loop(
            listener,
            metrics,
            Readiness {
                max_checkpoint_age: Duration::from_secs(60),
            },
            MAX_CONNECTIONS,
            TEST_TIMEOUT,
        ));
        (address, task)
    }

    #[tokio::test]
    async fn health_readiness_and_metrics() {
        let metrics = Arc::new(PipelineMetrics::default());
        let (address, task) = start(metrics.clone()).await;
        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));
        let not_ready = get(address, "/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(not_ready.contains("no run is reading"), "{not_ready}");
        metrics.run_started();
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(
            get(address, "/metrics")
                .await
                .contains("cdc_checkpoints_total")
        );
        assert!(get(address, "/nope").await.starts_with("HTTP/1.1 404"));
        metrics.run_ended();
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 503"));
        task.abort();
    }

    /// Many idle connections neither stop the endpoint for others for long nor take more
    /// than MAX_CONNECTIONS file descriptors: idle ones are dropped after the I/O timeout.
    #[tokio::test]
    async fn idle_connections_are_bounded_and_time_out() {
        let metrics = Arc::new(PipelineMetrics::default());
        let (address, task) = start(metrics).await;
        let mut idle = Vec::new();
        for _ in 0..(MAX_CONNECTIONS * 3) {
            idle.push(TcpStream::connect(address).await.unwrap());
        }
        // The idle ones hold every slot until they time out; then a real request is served.
        let answer = tokio::time::timeout(TEST_TIMEOUT * 20, get(address, "/healthz"))
            .await
            .expect("the endpoint never answered after the idle connections");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        task.abort();
    }
}
