//! A minimal MySQL wire-protocol server for the FE's query port (StarRocks' `9030`):
//! handshake v10 with `mysql_native_password`, `COM_QUERY` with text result sets,
//! `COM_INIT_DB`, `COM_PING`, `COM_RESET_CONNECTION`, `COM_QUIT`. Enough for `mysql_async`
//! and the `mysql` command-line client. Classic EOF packets (no `CLIENT_DEPRECATE_EOF`), no
//! TLS, no prepared statements (answered with an error).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::sql;
use super::state::State;
use crate::doris::QueryResult;

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_FOUND_ROWS: u32 = 2;
const CLIENT_LONG_FLAG: u32 = 4;
const CLIENT_CONNECT_WITH_DB: u32 = 8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x20000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
const CLIENT_CONNECT_ATTRS: u32 = 0x0010_0000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x0020_0000;
const SERVER_CAPS: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC;
const STATUS_AUTOCOMMIT: u16 = 2;
const NATIVE_PASSWORD: &str = "mysql_native_password";

/// The listening MySQL port.
#[derive(Debug)]
pub(crate) struct MySqlServer {
    port: u16,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl MySqlServer {
    /// Binds a free `127.0.0.1` port and serves in the current runtime.
    pub(crate) fn start(state: Arc<Mutex<State>>) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let port = std_listener.local_addr()?.port();
        let listener = TcpListener::from_std(std_listener)?;
        let ids = Arc::new(AtomicU32::new(1));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let id = ids.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let _ = serve(stream, state, id).await;
                });
            }
        });
        Ok(Self {
            port,
            task: Mutex::new(Some(task)),
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting connections.
    pub(crate) fn stop(&self) {
        if let Some(t) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            t.abort();
        }
    }
}

struct Conn {
    stream: TcpStream,
    seq: u8,
}

impl Conn {
    async fn read_packet(&mut self) -> std::io::Result<Vec<u8>> {
        let mut payload = Vec::new();
        loop {
            let mut head = [0u8; 4];
            self.stream.read_exact(&mut head).await?;
            let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
            self.seq = head[3].wrapping_add(1);
            let start = payload.len();
            payload.resize(start + len, 0);
            self.stream.read_exact(&mut payload[start..]).await?;
            if len < 0xff_ffff {
                return Ok(payload);
            }
        }
    }

    async fn write_packet(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut chunks = payload.chunks(0xff_ffff).peekable();
        if payload.is_empty() {
            self.stream.write_all(&[0, 0, 0, self.seq]).await?;
            self.seq = self.seq.wrapping_add(1);
        }
        while let Some(chunk) = chunks.next() {
            let len = chunk.len();
            let head = [len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq];
            self.seq = self.seq.wrapping_add(1);
            self.stream.write_all(&head).await?;
            self.stream.write_all(chunk).await?;
            if chunks.peek().is_none() && len == 0xff_ffff {
                self.stream.write_all(&[0, 0, 0, self.seq]).await?;
                self.seq = self.seq.wrapping_add(1);
            }
        }
        Ok(())
    }

    async fn ok(&mut self) -> std::io::Result<()> {
        let mut p = vec![0x00, 0, 0];
        p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        self.write_packet(&p).await
    }

    async fn eof(&mut self) -> std::io::Result<()> {
        let mut p = vec![0xfe, 0, 0];
        p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
        self.write_packet(&p).await
    }

    async fn err(&mut self, code: u16, state: &str, msg: &str) -> std::io::Result<()> {
        let mut p = vec![0xff];
        p.extend_from_slice(&code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(state.as_bytes());
        p.extend_from_slice(msg.as_bytes());
        self.write_packet(&p).await
    }

    async fn result_set(&mut self, r: &QueryResult) -> std::io::Result<()> {
        let mut p = Vec::new();
        lenenc_int(&mut p, r.columns.len() as u64);
        self.write_packet(&p).await?;
        for name in &r.columns {
            let mut p = Vec::new();
            for s in ["def", "", "", "", name.as_str(), name.as_str()] {
                lenenc_str(&mut p, s.as_bytes());
            }
            p.push(0x0c);
            p.extend_from_slice(&33u16.to_le_bytes());
            p.extend_from_slice(&1_048_576u32.to_le_bytes());
            p.push(0xfd); // VAR_STRING
            p.extend_from_slice(&0u16.to_le_bytes());
            p.push(0);
            p.extend_from_slice(&[0, 0]);
            self.write_packet(&p).await?;
        }
        self.eof().await?;
        for row in &r.rows {
            let mut p = Vec::new();
            for v in row {
                match v {
                    Some(s) => lenenc_str(&mut p, s.as_bytes()),
                    None => p.push(0xfb),
                }
            }
            self.write_packet(&p).await?;
        }
        self.eof().await
    }
}

fn lenenc_int(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    lenenc_int(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn read_lenenc(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *buf.get(*pos)?;
    *pos += 1;
    let n = match first {
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        v => return Some(u64::from(v)),
    };
    let bytes = buf.get(*pos..*pos + n)?;
    *pos += n;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)),
    )
}

fn read_cstr(buf: &[u8], pos: &mut usize) -> Option<String> {
    let rest = buf.get(*pos..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    *pos += end + 1;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// A scramble of 20 printable bytes (never 0, which ends the handshake string).
fn scramble(id: u32) -> [u8; 20] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = Sha1::new();
    h.update(nanos.to_le_bytes());
    h.update(id.to_le_bytes());
    let d = h.finalize();
    let mut out = [0u8; 20];
    for (o, b) in out.iter_mut().zip(d.iter()) {
        *o = b'!' + (b % 90);
    }
    out
}

/// `SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))`, what `mysql_native_password` sends.
fn native_token(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stage2);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

struct Login {
    user: String,
    auth: Vec<u8>,
    db: Option<String>,
    plugin: Option<String>,
}

fn parse_login(p: &[u8]) -> Option<Login> {
    let caps = u32::from_le_bytes(p.get(0..4)?.try_into().ok()?);
    let mut pos = 32;
    let user = read_cstr(p, &mut pos)?;
    let auth = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        let n = read_lenenc(p, &mut pos)? as usize;
        let a = p.get(pos..pos + n)?.to_vec();
        pos += n;
        a
    } else if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = usize::from(*p.get(pos)?);
        pos += 1;
        let a = p.get(pos..pos + n)?.to_vec();
        pos += n;
        a
    } else {
        read_cstr(p, &mut pos)?.into_bytes()
    };
    let db = if caps & CLIENT_CONNECT_WITH_DB != 0 {
        read_cstr(p, &mut pos).filter(|d| !d.is_empty())
    } else {
        None
    };
    let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 {
        read_cstr(p, &mut pos)
    } else {
        None
    };
    Some(Login {
        user,
        auth,
        db,
        plugin,
    })
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>, id: u32) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut c = Conn { stream, seq: 0 };
    let salt = scramble(id);
    let mut hs = vec![0x0a];
    hs.extend_from_slice(b"8.0.33-StarRocks-emulator\0");
    hs.extend_from_slice(&id.to_le_bytes());
    hs.extend_from_slice(&salt[..8]);
    hs.push(0);
    hs.extend_from_slice(&(SERVER_CAPS as u16).to_le_bytes());
    hs.push(33);
    hs.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    hs.extend_from_slice(&((SERVER_CAPS >> 16) as u16).to_le_bytes());
    hs.push(21);
    hs.extend_from_slice(&[0; 10]);
    hs.extend_from_slice(&salt[8..]);
    hs.push(0);
    hs.extend_from_slice(NATIVE_PASSWORD.as_bytes());
    hs.push(0);
    c.write_packet(&hs).await?;
    let packet = c.read_packet().await?;
    let Some(mut login) = parse_login(&packet) else {
        return c.err(1043, "08S01", "Bad handshake").await;
    };
    if login
        .plugin
        .as_deref()
        .is_some_and(|p| p != NATIVE_PASSWORD)
    {
        // Ask the client to answer the scramble with mysql_native_password.
        let mut sw = vec![0xfe];
        sw.extend_from_slice(NATIVE_PASSWORD.as_bytes());
        sw.push(0);
        sw.extend_from_slice(&salt);
        sw.push(0);
        c.write_packet(&sw).await?;
        login.auth = c.read_packet().await?;
    }
    let expected = {
        let st = state.lock().unwrap_or_else(PoisonError::into_inner);
        st.password_of(&login.user).map(|p| native_token(p, &salt))
    };
    if expected.as_deref() != Some(login.auth.as_slice()) {
        let msg = format!(
            "Access denied for user '{}'@'127.0.0.1' (using password: {})",
            login.user,
            if login.auth.is_empty() { "NO" } else { "YES" }
        );
        return c.err(1045, "28000", &msg).await;
    }
    let mut current = login.db.clone();
    if let Some(db) = &current {
        let exists = state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dbs
            .contains_key(db);
        if !exists {
            return c
                .err(1049, "42000", &format!("Unknown database '{db}'"))
                .await;
        }
    }
    c.ok().await?;
    loop {
        let Ok(packet) = c.read_packet().await else {
            return Ok(());
        };
        let Some((&cmd, rest)) = packet.split_first() else {
            continue;
        };
        match cmd {
            0x01 => return Ok(()),
            0x0e | 0x1f => c.ok().await?,
            0x02 => {
                let db = String::from_utf8_lossy(rest).into_owned();
                let exists = state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .dbs
                    .contains_key(&db);
                if exists {
                    current = Some(db);
                    c.ok().await?;
                } else {
                    c.err(1049, "42000", &format!("Unknown database '{db}'"))
                        .await?;
                }
            }
            0x03 => {
                let text = String::from_utf8_lossy(rest).into_owned();
                let result = {
                    let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                    sql::execute(&mut st, &mut current, &text)
                };
                match result {
                    Ok(r) if r.is_result_set => c.result_set(&r).await?,
                    Ok(_) => c.ok().await?,
                    Err(msg) => c.err(1064, "HY000", &msg).await?,
                }
            }
            other => {
                c.err(
                    1047,
                    "08S01",
                    &format!("command {other:#04x} is not supported by the StarRocks emulator"),
                )
                .await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trips() {
        for v in [0u64, 250, 251, 65535, 65536, 1 << 24, u64::MAX] {
            let mut b = Vec::new();
            lenenc_int(&mut b, v);
            let mut pos = 0;
            assert_eq!(read_lenenc(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
        }
    }

    #[test]
    fn empty_password_sends_no_token() {
        assert!(native_token("", b"12345678901234567890").is_empty());
        assert_eq!(native_token("pw", b"12345678901234567890").len(), 20);
    }
}
