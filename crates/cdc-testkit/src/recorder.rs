//! A plain HTTP server that records the head of every request it gets and answers each
//! with the same small text: the "somewhere else" a hostile or misconfigured server may
//! send a client to (an `ErrorURL` on another host), to check what the client sends there.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// See the module documentation. The server runs until the test's runtime ends.
#[derive(Debug, Clone)]
pub struct RequestRecorder {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RequestRecorder {
    /// Starts on a free port of 127.0.0.1; every request is answered `200 OK` with `body`.
    pub async fn start(body: &'static str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        Ok(Self { url, heads })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request heads received so far (request line and headers), in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
