//! What a device connection may do before it has proved who it is.
//!
//! A connection passes three stages:
//! 1. **anonymous** — from the upgrade until a `register`, `active` or
//!    `subscribe_corp` succeeds: it counts against a cap of such
//!    connections (in all and per client address), must prove itself
//!    within `security.prelogin_deadline_secs`, and may send at most
//!    `security.prelogin_bytes` in all;
//! 2. **identified** — it proved a SecretNo or an active code but is not
//!    logged in (a terminal polling `active` until an admin binds it): no
//!    deadline, but each frame is still at most `prelogin_bytes`;
//! 3. **logged in** — after `subscribe_corp`: frames up to
//!    `device.max_frame_mib`.
//!
//! The byte limits are enforced below the WebSocket library, on the bytes
//! read from the socket ([`Metered`]): tungstenite reserves a frame's whole
//! declared length as soon as it has read the frame's header, so a limit
//! checked on finished messages would come after the memory is taken.
//!
//! Browsers send `Origin` with every WebSocket upgrade and terminals do
//! not, so an upgrade with an `Origin` outside `security.device_origins` is
//! refused: a web page cannot make a browser on the company network speak
//! the device protocol.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::http::{HeaderMap, header};
use base64::Engine;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::config::SecurityConfig;
use crate::domain::guard::ClientKey;
use crate::model::error::Error;

/// The WebSocket handshake's answer to `Sec-WebSocket-Key` (RFC 6455
/// §4.2.2), written out here because facehub performs the upgrade itself
/// (to put [`Metered`] under the WebSocket library).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Checks an upgrade request's headers (RFC 6455 §4.2.1); the client's
/// `Sec-WebSocket-Key`.
pub fn upgrade_key(headers: &HeaderMap) -> Result<&[u8], Error> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let refuse =
        |why: &str| Error::param(format!("this endpoint takes a WebSocket upgrade: {why}"));
    if !has_token(header::CONNECTION, "upgrade") {
        return Err(refuse("Connection header did not include 'upgrade'"));
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err(refuse("`Upgrade` header did not include 'websocket'"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(refuse(
            "`Sec-WebSocket-Version` header did not include '13'",
        ));
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(k) if !k.is_empty() => Ok(k.as_bytes()),
        _ => Err(refuse("`Sec-WebSocket-Key` header missing")),
    }
}

/// `Ok` if the upgrade carries no `Origin` (a terminal) or an allowed one.
pub fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), Error> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(&origin))
    {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "origin {:?} may not open the device protocol (security.device_origins)",
        crate::domain::devices::clip(&origin, 100)
    )))
}

/// Connections that have not proved who they are, in all and per address.
pub struct Anonymous {
    total: usize,
    per_address: usize,
    counts: Arc<Mutex<(usize, HashMap<ClientKey, usize>)>>,
}

/// One anonymous connection; dropping it (at login or at the end) frees
/// its place.
#[derive(Debug)]
pub struct AnonymousSlot {
    counts: Arc<Mutex<(usize, HashMap<ClientKey, usize>)>>,
    client: ClientKey,
}

impl Drop for AnonymousSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("anonymous connections");
        c.0 -= 1;
        if let Some(n) = c.1.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.1.remove(&self.client);
            }
        }
    }
}

impl Anonymous {
    pub fn new(c: &SecurityConfig) -> Anonymous {
        Anonymous {
            total: c.prelogin_connections.max(1),
            per_address: c.prelogin_connections_per_address.max(1),
            counts: Arc::default(),
        }
    }

    /// A place for one more anonymous connection from `client`, or the
    /// refusal's words.
    pub fn admit(&self, client: ClientKey) -> Result<AnonymousSlot, String> {
        let mut c = self.counts.lock().expect("anonymous connections");
        if c.0 >= self.total {
            return Err(format!(
                "too many device connections are not logged in ({}); retry later",
                self.total
            ));
        }
        let mine = c.1.entry(client).or_default();
        if *mine >= self.per_address {
            return Err(format!(
                "too many device connections from this address are not logged in ({}); retry later",
                self.per_address
            ));
        }
        *mine += 1;
        c.0 += 1;
        Ok(AnonymousSlot {
            counts: self.counts.clone(),
            client,
        })
    }
}

/// Bytes the connection may still send; [`UNMETERED`] once logged in.
#[derive(Clone, Default)]
pub struct Allowance(Arc<AtomicUsize>);

pub const UNMETERED: usize = usize::MAX;

impl Allowance {
    pub fn new(bytes: usize) -> Allowance {
        Allowance(Arc::new(AtomicUsize::new(bytes)))
    }

    pub fn set(&self, bytes: usize) {
        self.0.store(bytes, Ordering::Relaxed);
    }
}

/// The socket under the WebSocket library, counting what the peer sends
/// against its [`Allowance`] while it is metered.
pub struct Metered<S> {
    inner: S,
    allowance: Allowance,
    frames: FrameScan,
}

impl<S> Metered<S> {
    pub fn new(inner: S, allowance: Allowance) -> Metered<S> {
        Metered {
            inner,
            allowance,
            frames: FrameScan::default(),
        }
    }
}

fn over_limit() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "device sent more than it may before logging in",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.allowance.0.load(Ordering::Relaxed);
        if left == UNMETERED {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let got = &buf.filled()[before..];
        // What was just read is not handed on if it passes the allowance
        // or declares a frame that would: the library never sees (and
        // never reserves memory for) such a frame.
        if got.len() > left || self.frames.scan(got, left).is_err() {
            buf.set_filled(before);
            return Poll::Ready(Err(over_limit()));
        }
        let n = got.len();
        self.allowance.0.fetch_sub(n, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    crate::api::linger::write_through!();

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Follows the frame boundaries of the bytes a client sends (RFC 6455
/// §5.2), only to read each frame's declared length before the WebSocket
/// library does. Hand-written because it must run below that library, on
/// raw reads that split headers anywhere; it validates nothing else (the
/// library still parses every frame).
#[derive(Debug, Default)]
struct FrameScan {
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to come of the current frame.
    payload: u64,
}

impl FrameScan {
    /// Follows `bytes`; `Err` if a frame declares more than `limit` bytes.
    fn scan(&mut self, mut bytes: &[u8], limit: usize) -> Result<(), ()> {
        while !bytes.is_empty() {
            if self.payload > 0 {
                let n = usize::try_from(self.payload).map_or(bytes.len(), |p| p.min(bytes.len()));
                self.payload -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            // In a header: take bytes until its length is known and met.
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 {
                continue;
            }
            let len7 = self.header[1] & 0x7f;
            let masked = self.header[1] & 0x80 != 0;
            let need =
                2 + match len7 {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                } + if masked { 4 } else { 0 };
            if self.have < need {
                continue;
            }
            let len = match len7 {
                126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                127 => u64::from_be_bytes(self.header[2..10].try_into().expect("8 bytes")),
                n => u64::from(n),
            };
            if len > limit as u64 {
                return Err(());
            }
            self.payload = len;
            self.have = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// A masked client frame header declaring `len` bytes.
    fn header(len: u64) -> Vec<u8> {
        let mut h = vec![0x81];
        if len < 126 {
            h.push(0x80 | len as u8);
        } else if len <= u64::from(u16::MAX) {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    #[test]
    fn the_scan_follows_frames_split_anywhere() {
        let mut stream = Vec::new();
        for len in [5u64, 0, 300, 70_000] {
            stream.extend(header(len));
            stream.extend(std::iter::repeat_n(b'x', len as usize));
        }
        for chunk in [1, 2, 3, 7, 1000, stream.len()] {
            let mut scan = FrameScan::default();
            for part in stream.chunks(chunk) {
                assert_eq!(scan.scan(part, 70_000), Ok(()), "chunks of {chunk}");
            }
            assert_eq!((scan.have, scan.payload), (0, 0));
        }
    }

    #[test]
    fn a_frame_declaring_more_than_the_limit_is_refused_on_its_header() {
        for len in [65_537u64, 60 << 20, u64::MAX] {
            let h = header(len);
            let mut scan = FrameScan::default();
            // The header alone, a byte at a time: refused on its last byte.
            let (last, head) = h.split_last().unwrap();
            for b in head {
                assert_eq!(scan.scan(&[*b], 65_536), Ok(()));
            }
            assert_eq!(scan.scan(&[*last], 65_536), Err(()), "{len}");
        }
    }

    #[tokio::test]
    async fn a_metered_stream_stops_at_its_allowance() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let allowance = Allowance::new(100);
        let mut metered = Metered::new(server, allowance.clone());
        let mut frame = header(50);
        frame.extend([b'x'; 50]);
        client.write_all(&frame).await.unwrap();
        let mut buf = vec![0; 1024];
        let n = metered.read(&mut buf).await.unwrap();
        assert_eq!(n, frame.len());
        // Past the allowance: an error, and nothing handed on.
        client.write_all(&frame).await.unwrap();
        let e = metered.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // Unmetered once logged in.
        allowance.set(UNMETERED);
        client.write_all(&[7; 10]).await.unwrap();
        assert!(metered.read(&mut buf).await.unwrap() > 0);
    }

    #[test]
    fn anonymous_connections_are_capped_in_all_and_per_address() {
        let c = SecurityConfig {
            prelogin_connections: 3,
            prelogin_connections_per_address: 2,
            ..SecurityConfig::default()
        };
        let a = Anonymous::new(&c);
        let ip = |s: &str| ClientKey::of(s.parse().unwrap());
        let one = a.admit(ip("10.0.0.1")).unwrap();
        let _two = a.admit(ip("10.0.0.1")).unwrap();
        assert!(
            a.admit(ip("10.0.0.1"))
                .unwrap_err()
                .contains("from this address")
        );
        let _three = a.admit(ip("10.0.0.2")).unwrap();
        assert!(a.admit(ip("10.0.0.3")).unwrap_err().contains("(3)"));
        drop(one);
        assert!(a.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        assert!(check_origin(&h, &[]).is_ok());
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        let e = check_origin(&h, &[]).unwrap_err();
        assert_eq!(
            crate::api::facehub::CODES.render(&e).status,
            StatusCode::FORBIDDEN
        );
        assert!(check_origin(&h, &["https://evil.example/".into()]).is_ok());
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
