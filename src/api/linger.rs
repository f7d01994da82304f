//! Lingering close: an answer given before the request body was read
//! reaches the client.
//!
//! A handler may refuse an upload from its first bytes (a bad header, an
//! image too large, a bad token) while the client is still sending. If the
//! server then closed the socket, the client's next write would meet a
//! reset, and a client that writes its whole body before it reads (most
//! do) would report a broken pipe and never see the answer; worse, the
//! reset discards an answer already in the client's receive buffer.
//!
//! So, as nginx's `lingering_close` does: when a request's body was not
//! read to its end, the answer carries `Connection: close` (the envelope
//! middleware arms this connection's [`Linger`]); once hyper has written
//! it and closes the connection, [`Lingering`] shuts only the write side
//! (the client gets the answer and a FIN) and reads and discards what the
//! client still sends — until it closes its side, or for at most
//! `limits.linger_secs`, at most `limits.linger_idle_secs` without a byte,
//! and at most `limits.linger_max_bytes` — and only then closes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::Limits;

/// Whether a connection lingers when it closes; one per connection, in
/// every request's extensions.
#[derive(Debug, Default)]
pub struct Linger {
    armed: AtomicBool,
}

impl Linger {
    pub fn arm(&self) {
        self.armed.store(true, Ordering::Relaxed);
    }

    fn armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }
}

/// The bounds of one lingering close.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub total: Duration,
    pub idle: Duration,
    pub bytes: u64,
}

impl Bounds {
    pub fn of(l: &Limits) -> Bounds {
        Bounds {
            total: Duration::from_secs(l.linger_secs.max(1)),
            idle: Duration::from_secs(l.linger_idle_secs.max(1)),
            bytes: l.linger_max_bytes,
        }
    }
}

/// A connection's socket, lingering on shutdown when armed.
pub struct Lingering<S> {
    inner: S,
    linger: Arc<Linger>,
    bounds: Bounds,
    state: Option<Draining>,
}

struct Draining {
    until: Instant,
    idle: Pin<Box<Sleep>>,
    drained: u64,
    scratch: Box<[u8]>,
}

impl<S> Lingering<S> {
    pub fn new(inner: S, linger: Arc<Linger>, bounds: Bounds) -> Lingering<S> {
        Lingering {
            inner,
            linger,
            bounds,
            state: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// The `AsyncWrite` methods of a stream wrapper that writes straight
/// through to its `inner` stream: all but `poll_shutdown`, where the
/// wrappers differ.
macro_rules! write_through {
    () => {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }
    };
}
pub(crate) use write_through;

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    write_through!();

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.state.is_none() {
            // The write side first: the answer, then a FIN.
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            if !this.linger.armed() {
                return Poll::Ready(Ok(()));
            }
            this.state = Some(Draining {
                until: Instant::now() + this.bounds.total,
                idle: Box::pin(tokio::time::sleep(this.bounds.idle)),
                drained: 0,
                scratch: vec![0; 16 * 1024].into_boxed_slice(),
            });
        }
        let bounds = this.bounds;
        let d = this.state.as_mut().expect("draining");
        loop {
            if Instant::now() >= d.until || d.idle.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut d.scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Pending => {
                    // Woken by the socket or the idle timer; the overall
                    // bound is checked on every wake-up, and the idle
                    // timer is never later than it.
                    let left = d.until.saturating_duration_since(Instant::now());
                    if left < bounds.idle {
                        d.idle.as_mut().reset(d.until);
                        if d.idle.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Ok(()));
                        }
                    }
                    return Poll::Pending;
                }
                // The client closed its side, or the connection broke.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    d.drained += buf.filled().len() as u64;
                    if d.drained > bounds.bytes {
                        return Poll::Ready(Ok(()));
                    }
                    let next = (Instant::now() + bounds.idle).min(d.until);
                    d.idle.as_mut().reset(next);
                }
            }
        }
    }
}

/// Whether a request body was read to its end.
#[derive(Debug, Clone, Default)]
pub struct BodyEnd(Arc<AtomicBool>);

impl BodyEnd {
    pub fn reached(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The request body, noting in a [`BodyEnd`] when it is read to its end.
pub fn tracked(body: Body) -> (Body, BodyEnd) {
    use http_body::Body as _;
    let end = BodyEnd::default();
    if body.is_end_stream() {
        end.0.store(true, Ordering::Relaxed);
        return (body, end);
    }
    (
        Body::new(Tracked {
            inner: body,
            end: end.clone(),
        }),
        end,
    )
}

struct Tracked {
    inner: Body,
    end: BodyEnd,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() || self.inner.is_end_stream() {
            self.end.0.store(true, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn bounds(total_ms: u64, idle_ms: u64, bytes: u64) -> Bounds {
        Bounds {
            total: Duration::from_millis(total_ms),
            idle: Duration::from_millis(idle_ms),
            bytes,
        }
    }

    /// A server socket over a duplex pipe, and the client's end.
    fn pair(
        armed: bool,
        b: Bounds,
    ) -> (Lingering<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let linger = Arc::new(Linger::default());
        if armed {
            linger.arm();
        }
        (Lingering::new(server, linger, b), client)
    }

    #[tokio::test]
    async fn unarmed_shutdown_is_immediate() {
        let (mut s, mut c) = pair(false, bounds(10_000, 10_000, 1 << 20));
        s.write_all(b"answer").await.unwrap();
        tokio::time::timeout(Duration::from_millis(100), s.shutdown())
            .await
            .expect("no lingering")
            .unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"answer");
    }

    #[tokio::test]
    async fn armed_shutdown_sends_the_answer_then_drains_until_the_client_closes() {
        let (mut s, mut c) = pair(true, bounds(10_000, 10_000, 1 << 30));
        s.write_all(b"answer").await.unwrap();
        let closing = tokio::spawn(async move {
            s.shutdown().await.unwrap();
        });
        // The answer and the FIN arrive while the client still sends.
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"answer");
        for _ in 0..100 {
            c.write_all(&[7; 10_000]).await.unwrap();
        }
        assert!(
            !closing.is_finished(),
            "stopped lingering while the client sent"
        );
        drop(c);
        tokio::time::timeout(Duration::from_secs(1), closing)
            .await
            .expect("ends once the client closes")
            .unwrap();
    }

    #[tokio::test]
    async fn lingering_is_bounded_in_bytes_idle_time_and_total_time() {
        // Bytes.
        let (mut s, mut c) = pair(true, bounds(10_000, 10_000, 50_000));
        let closing = tokio::spawn(async move { s.shutdown().await });
        let mut sent = 0;
        while sent < 10_000_000 && c.write_all(&[1; 10_000]).await.is_ok() {
            sent += 10_000;
        }
        closing.await.unwrap().unwrap();
        // Cut off after its 50,000 bytes (and what the pipe held).
        assert!(sent < 200_000, "{sent} bytes sent");
        // Idle.
        let (mut s, _c) = pair(true, bounds(10_000, 100, 1 << 30));
        let started = std::time::Instant::now();
        s.shutdown().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        // Total, with a client that never stops.
        let (mut s, mut c) = pair(true, bounds(300, 200, 1 << 40));
        let started = std::time::Instant::now();
        let closing = tokio::spawn(async move { s.shutdown().await });
        while !closing.is_finished() {
            if c.write_all(&[1; 1000]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_is_noted() {
        use http_body_util::BodyExt;
        let (body, end) = tracked(Body::from("abc"));
        assert!(!end.reached());
        let _ = body.collect().await.unwrap();
        assert!(end.reached());
        let (_, end) = tracked(Body::empty());
        assert!(end.reached());
    }
}
