//! A small HTTP/1 server on hyper: accept loop, per-connection reset, and taking the
//! listener down (connections refused) and up again on the same port.

use std::future::Future;
use std::net::{Shutdown, SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A response body.
pub(crate) type Resp = Response<Full<Bytes>>;

/// Returned by a handler to drop the connection without an answer.
#[derive(Debug)]
pub(crate) struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the emulator")
    }
}

impl std::error::Error for Reset {}

/// Lets a handler reset its own connection.
#[derive(Debug)]
pub(crate) struct ConnCtl {
    sock: Mutex<Option<socket2::Socket>>,
}

impl ConnCtl {
    /// Arms an RST: the connection is closed with SO_LINGER 0 once the handler returns
    /// [`Reset`].
    pub(crate) fn arm_reset(&self) {
        let taken = self
            .sock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(s) = taken {
            let _ = s.set_linger(Some(Duration::ZERO));
        }
    }
}

/// A request handler.
pub(crate) type Handler = Arc<
    dyn Fn(
            Request<Incoming>,
            Arc<ConnCtl>,
        ) -> Pin<Box<dyn Future<Output = Result<Resp, Reset>> + Send>>
        + Send
        + Sync,
>;

#[derive(Default)]
struct Inner {
    accept: Option<JoinHandle<()>>,
    ctl: Option<socket2::Socket>,
}

/// One listening HTTP server (HTTPS with a TLS configuration).
pub(crate) struct Server {
    port: u16,
    handler: Handler,
    tls: Option<tokio_rustls::TlsAcceptor>,
    kill: watch::Sender<u64>,
    runtime: tokio::runtime::Handle,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `127.0.0.1:port` (0 = a free port) and starts serving, over TLS when `tls` is
    /// set.
    pub(crate) fn start(
        port: u16,
        handler: Handler,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Arc<Self>> {
        let listener = StdListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let port = listener.local_addr()?.port();
        let (kill, _) = watch::channel(0);
        let server = Arc::new(Self {
            port,
            handler,
            tls: tls.map(tokio_rustls::TlsAcceptor::from),
            kill,
            runtime: tokio::runtime::Handle::current(),
            inner: Mutex::new(Inner::default()),
        });
        server.serve(listener)?;
        Ok(server)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: StdListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let ctl = socket2::Socket::from(listener.try_clone()?);
        let _guard = self.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let handler = self.handler.clone();
        let kill = self.kill.clone();
        let tls = self.tls.clone();
        let task = self.runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let Ok(std_stream) = stream.into_std() else {
                    continue;
                };
                let dup = std_stream.try_clone().ok().map(socket2::Socket::from);
                let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
                    continue;
                };
                let conn_ctl = Arc::new(ConnCtl {
                    sock: Mutex::new(dup),
                });
                let handler = handler.clone();
                let mut kill_rx = kill.subscribe();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let serve = async move {
                        match tls {
                            None => serve_connection(stream, handler, conn_ctl).await,
                            Some(acceptor) => {
                                // a failed handshake (a client that does not trust the
                                // certificate) just closes the connection
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    serve_connection(stream, handler, conn_ctl).await;
                                }
                            }
                        }
                    };
                    tokio::select! {
                        () = serve => {}
                        _ = kill_rx.changed() => {}
                    }
                });
            }
        });
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.accept = Some(task);
        inner.ctl = Some(ctl);
        Ok(())
    }

    /// Whether the server listens (it is not [`down`](Self::down)).
    pub(crate) fn is_up(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .accept
            .is_some()
    }

    /// Stops accepting (new connections are refused) and drops open connections.
    pub(crate) fn down(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ctl) = inner.ctl.take() {
            let _ = ctl.shutdown(Shutdown::Both);
        }
        if let Some(task) = inner.accept.take() {
            task.abort();
        }
        drop(inner);
        self.kill.send_modify(|g| *g += 1);
    }

    /// Listens again on the same port.
    pub(crate) fn up(&self) -> std::io::Result<()> {
        if self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .accept
            .is_some()
        {
            return Ok(());
        }
        let listener = StdListener::bind(SocketAddr::from(([127, 0, 0, 1], self.port)))?;
        self.serve(listener)
    }
}

async fn serve_connection<S>(stream: S, handler: Handler, conn_ctl: Arc<ConnCtl>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handler(req, conn_ctl.clone()));
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}
