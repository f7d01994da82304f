//! One terminal's WebSocket: the upgrade, the stages of admission, the
//! read loop and the one writer that sends replies and pushes in order.
//! A frame that cannot be read as a request gets a connection-level error
//! (no `headers`) and the connection keeps going.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::admission::{self, Allowance, AnonymousSlot, Metered};
use super::dispatch::Answer;
use super::frames::{self, Frame, FrameError, device_code, parse_frame};
use crate::api::AppState;
use crate::api::client::ClientIp;
use crate::api::ratelimit::RateLimiter;
use crate::domain::Core;
use crate::domain::devices::hub::{Closing, Peer};
use crate::domain::devices::messages::Push;
use crate::domain::devices::{Session, codes};
use crate::domain::guard::ClientKey;
use crate::model::error::{Error, Result};

/// What a connection's writer sends.
#[derive(Debug)]
pub(super) enum Outgoing {
    Text(Arc<str>),
    /// A push from the hub, encoded by the writer: not under the hub's
    /// lock, and on this connection's task rather than the sync pass's.
    Push(Arc<Push>),
    Binary(bytes::Bytes),
    /// Close with a code and reason, then stop writing.
    Close(u16, &'static str),
    /// The peer closed: send the Close the library answers it with (the
    /// peer's code, RFC 6455 §5.5.1). Frames queued ahead of it are not
    /// sent: a peer that closed reads no more.
    CloseReply,
    /// A frame holding part of its connection's reply budget until written.
    Held(Box<Outgoing>, tokio::sync::OwnedSemaphorePermit),
}

/// Queue depth per connection; a device that falls this far behind gets
/// its pushes again from a later pass.
const QUEUE: usize = 256;

/// The close frame for each reason the hub closes a connection
/// (docs/device-protocol.md).
fn close_frame(why: Closing) -> (u16, &'static str) {
    match why {
        Closing::Replaced => (4000, "replaced by a newer connection"),
        Closing::Unbound => (4001, "unbound"),
        Closing::Stopping => (1012, "server restarting"),
    }
}

/// How the hub reaches one connection: its queue, and a close signal that
/// does not wait behind queued frames.
struct Link {
    id: u64,
    tx: mpsc::Sender<Outgoing>,
    kill: watch::Sender<Option<Closing>>,
}

impl Peer for Link {
    fn id(&self) -> u64 {
        self.id
    }

    fn push(&self, pushes: &[Arc<Push>]) -> bool {
        if self.tx.capacity() < pushes.len() {
            return false;
        }
        pushes
            .iter()
            .all(|p| self.tx.try_send(Outgoing::Push(p.clone())).is_ok())
    }

    fn close(&self, why: Closing) {
        self.kill.send_replace(Some(why));
    }
}

/// Replies one connection may have queued, in KiB (a full page of
/// templates is about 6.5 MiB; one larger frame still goes out alone).
const REPLY_BUDGET_KIB: usize = 16 * 1024;

/// Refused credentials (a `register` signature, an active code, a secret)
/// one connection may present before it is closed: a terminal that fails
/// retries on a new connection after a pause, a guesser is made to pay
/// for a connection (and its pre-login place) every few guesses.
const MAX_FAILED_BRING_UPS: u32 = 5;

/// The WebSocket upgrade, performed here rather than by axum so that the
/// socket under the WebSocket library is [`Metered`] until login (see
/// [`admission`]).
pub(super) async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    mut req: axum::extract::Request,
) -> Result<Response> {
    let core = state.core.clone();
    let sec = &core.config().security;
    admission::check_origin(req.headers(), &sec.device_origins)
        .inspect_err(|_| core.metrics().attempt_refused("device_connect", "origin"))?;
    let accept = admission::accept_key(admission::upgrade_key(req.headers())?);
    let slot = state
        .device_anonymous
        .admit(ClientKey::of(client))
        .map_err(|msg| {
            core.metrics()
                .attempt_refused("device_connect", "prelogin_cap");
            Error::Throttled {
                msg,
                retry_after_secs: 5,
            }
        })?;
    let on_upgrade = req
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| {
            Error::param(
                "this endpoint takes a WebSocket upgrade: the connection cannot be upgraded",
            )
        })?;
    let limiter = state.limiter.clone();
    let commands = state.device_commands.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "device upgrade failed");
                return;
            }
        };
        let sec = &core.config().security;
        let allowance = Allowance::new(sec.prelogin_bytes.max(1024));
        let max = core.config().device.max_frame_mib.max(1) << 20;
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
            // Each connection keeps this much for reading; a fleet of
            // idle terminals should not cost 128 KiB each.
            .read_buffer_size(16 * 1024);
        let io = Metered::new(TokioIo::new(upgraded), allowance.clone());
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let admitted = Admitted {
            client,
            slot,
            allowance,
            limiter,
            commands,
        };
        serve(core, socket, admitted).await
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .map_err(|e| Error::internal(e.to_string()))
}

/// What the upgrade settled about a connection.
struct Admitted {
    client: IpAddr,
    slot: AnonymousSlot,
    allowance: Allowance,
    limiter: Arc<RateLimiter>,
    commands: Arc<RateLimiter>,
}

/// The state of one connection.
pub(super) struct Conn {
    pub(super) core: Arc<Core>,
    pub(super) id: u64,
    tx: mpsc::Sender<Outgoing>,
    /// How the hub reaches this connection.
    peer: Arc<dyn Peer>,
    /// KiB of replies queued but not yet written: a device that sends
    /// requests without reading replies waits instead of growing memory.
    budget: Arc<tokio::sync::Semaphore>,
    /// The device named by `register`/`active` on this connection.
    pub(super) sn: Option<String>,
    pub(super) session: Option<Session>,
    pub(super) client: IpAddr,
    pub(super) limiter: Arc<RateLimiter>,
    /// Commands per terminal.
    commands: Arc<RateLimiter>,
    /// Held until the connection proves who it is.
    anonymous: Option<AnonymousSlot>,
    /// What the peer may still send before login.
    pub(super) allowance: Allowance,
    pub(super) failed_bring_ups: u32,
}

async fn serve(
    core: Arc<Core>,
    socket: WebSocketStream<Metered<TokioIo<hyper::upgrade::Upgraded>>>,
    admitted: Admitted,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(QUEUE);
    // One writer, so replies and pushes never interleave inside a frame.
    // A device that stops reading is cut off rather than held forever.
    // The allowance per frame grows with its size, so slow links can still
    // receive full pages.
    let idle_secs = core.config().device.idle_timeout_secs.max(1);
    let rate = core.config().device.min_send_rate_kib.max(1) * 1024;
    let write_timeout = move |len: usize| Duration::from_secs(idle_secs + len as u64 / rate);
    let writer = tokio::spawn(async move {
        while let Some(mut out) = rx.recv().await {
            // The permit of a held frame is released once it is written.
            let mut _permit = None;
            if let Outgoing::Held(inner, permit) = out {
                out = *inner;
                _permit = Some(permit);
            }
            let msg = match out {
                Outgoing::Text(t) => Message::Text(Utf8Bytes::from(t.as_ref())),
                Outgoing::Push(p) => Message::Text(Utf8Bytes::from(frames::push_frame(&p))),
                Outgoing::Binary(b) => Message::Binary(b),
                Outgoing::Close(code, reason) => {
                    let close = Message::Close(Some(CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    }));
                    let _ = tokio::time::timeout(write_timeout(0), sink.send(close)).await;
                    break;
                }
                Outgoing::CloseReply => {
                    // Closed by the peer, the library only flushes its reply.
                    let _ = tokio::time::timeout(write_timeout(0), sink.close()).await;
                    break;
                }
                Outgoing::Held(..) => continue, // never nested
            };
            let len = match &msg {
                Message::Text(t) => t.len(),
                Message::Binary(b) => b.len(),
                _ => 0,
            };
            match tokio::time::timeout(write_timeout(len), sink.send(msg)).await {
                Ok(Ok(())) => {}
                // After the peer's Close the library refuses data frames;
                // the Close it owes the peer still goes out. (A link that
                // is gone fails this at once; one that does not drain
                // holds it a second at most.)
                Ok(Err(_)) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                    break;
                }
                Err(_) => break,
            }
        }
    });
    let idle = Duration::from_secs(core.config().device.idle_timeout_secs.max(1));
    let prelogin_bytes = core.config().security.prelogin_bytes.max(1024);
    let deadline_secs = core.config().security.prelogin_deadline_secs.max(1);
    let deadline = tokio::time::sleep(Duration::from_secs(deadline_secs));
    tokio::pin!(deadline);
    let id = core.hub().new_connection_id();
    let (kill, mut closing) = watch::channel(None);
    let peer: Arc<dyn Peer> = Arc::new(Link {
        id,
        tx: tx.clone(),
        kill,
    });
    let mut conn = Conn {
        id,
        core,
        tx,
        peer,
        budget: Arc::new(tokio::sync::Semaphore::new(REPLY_BUDGET_KIB)),
        sn: None,
        session: None,
        client: admitted.client,
        limiter: admitted.limiter,
        commands: admitted.commands,
        anonymous: Some(admitted.slot),
        allowance: admitted.allowance,
        failed_bring_ups: 0,
    };
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(idle, stream.next()) => n,
            // The writer gave up on the device.
            () = conn.tx.closed() => break,
            // Replaced by a newer connection, unbound, or the server stops.
            _ = closing.changed() => {
                let (code, reason) = (*closing.borrow()).map_or((1000, ""), close_frame);
                conn.send(Outgoing::Close(code, reason)).await;
                break;
            }
            // An anonymous connection has a short time to prove itself.
            () = &mut deadline, if conn.anonymous.is_some() => {
                conn.core.metrics().attempt_refused("device_connect", "prelogin_deadline");
                conn.send(Outgoing::Close(1008, "not registered within the pre-login deadline"))
                    .await;
                break;
            }
        };
        match next {
            Err(_) => {
                conn.send(Outgoing::Close(1001, "no frame within the idle timeout"))
                    .await;
                break;
            }
            Ok(None) => break,
            Ok(Some(Ok(Message::Close(_)))) => {
                conn.send(Outgoing::CloseReply).await;
                break;
            }
            Ok(Some(Err(e))) => {
                use tokio_tungstenite::tungstenite::Error as WsError;
                use tokio_tungstenite::tungstenite::error::CapacityError;
                match &e {
                    // Oversize frames end here: tungstenite stops reading.
                    WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
                        conn.send(Outgoing::Close(1009, "frame too large")).await;
                    }
                    // RFC 6455 §8.1: invalid UTF-8 in a text frame fails
                    // the connection with 1007.
                    WsError::Utf8(_) => {
                        conn.send(Outgoing::Close(1007, "text frame is not UTF-8"))
                            .await;
                    }
                    // The pre-login allowance (admission::Metered).
                    WsError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                        conn.core
                            .metrics()
                            .attempt_refused("device_connect", "prelogin_bytes");
                        conn.send(Outgoing::Close(1009, "frames before login are limited"))
                            .await;
                    }
                    _ => {}
                }
                tracing::debug!(error = %e, "device connection error");
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                conn.handle(text).await;
                if conn.failed_bring_ups >= MAX_FAILED_BRING_UPS {
                    conn.send(Outgoing::Close(1008, "too many failed attempts"))
                        .await;
                    break;
                }
            }
            Ok(Some(Ok(Message::Binary(_)))) => {
                conn.reply_error(None, Error::param("binary frames are not accepted"))
                    .await;
            }
            Ok(Some(Ok(_))) => {} // ping/pong: answered by the library
        }
        // Identified but not logged in: each further frame is small.
        if conn.anonymous.is_none() && conn.session.is_none() {
            conn.allowance.set(prelogin_bytes);
        }
    }
    if let Some(sn) = &conn.sn
        && let Some(version) = conn.core.hub().detach(sn, conn.id)
        && let Err(e) = conn.core.record_sync_position(sn, version, conn.id).await
    {
        tracing::warn!(error = %e, "could not record a device's sync position");
    }
    drop(conn);
    let _ = writer.await;
}

impl Conn {
    async fn send(&self, out: Outgoing) {
        // A full queue means the device does not read; the writer's
        // timeout closes it, so waiting is bounded.
        let _ = self.tx.send(out).await;
    }

    /// Queues a reply of `len` bytes within the connection's reply budget.
    async fn send_reply(&self, out: Outgoing, len: usize) {
        let kib = u32::try_from(len.div_ceil(1024).clamp(1, REPLY_BUDGET_KIB)).unwrap_or(u32::MAX);
        tokio::select! {
            permit = self.budget.clone().acquire_many_owned(kib) => {
                if let Ok(permit) = permit {
                    self.send(Outgoing::Held(Box::new(out), permit)).await;
                }
            }
            // The writer gave up on the device.
            () = self.tx.closed() => {}
        }
    }

    async fn reply(&self, req_id: &str, answer: Answer) {
        let out = match answer {
            Answer::Body(body) => Outgoing::Text(frames::reply_frame(req_id, body).into()),
            Answer::Photo(photo) => Outgoing::Binary(frames::photo_frame(req_id, &photo)),
        };
        let len = match &out {
            Outgoing::Text(t) => t.len(),
            Outgoing::Binary(b) => b.len(),
            _ => 0,
        };
        self.send_reply(out, len).await;
    }

    /// An error reply; with no `req_id`, a connection-level error.
    async fn reply_error(&self, req_id: Option<&str>, e: Error) {
        if let Error::Internal(inner) = &e {
            tracing::error!(error = format!("{inner:#}"), "device request failed");
        }
        let frame = frames::error_frame(req_id, &e);
        let len = frame.len();
        self.send_reply(Outgoing::Text(frame.into()), len).await;
    }

    async fn handle(&mut self, text: Utf8Bytes) {
        // A full upload is megabytes of JSON: parse it off the async threads.
        let parsed = if text.len() > 256 * 1024 {
            tokio::task::spawn_blocking(move || parse_frame(text.as_str()))
                .await
                .unwrap_or_else(|e| {
                    Err(FrameError {
                        req_id: None,
                        error: frames::not_json(e),
                    })
                })
        } else {
            parse_frame(text.as_str())
        };
        let (req_id, cmd, body) = match parsed {
            Ok(Frame::Request { req_id, cmd, body }) => (req_id, cmd, body),
            Ok(Frame::Reply) => return,
            Err(FrameError { req_id, error }) => {
                return self.reply_error(req_id.as_deref(), error).await;
            }
        };
        let core = self.core.clone();
        let metrics = |errcode: i64| core.metrics().device_command(&cmd, errcode);
        let result = match self.admit_command().await {
            Ok(()) => self.dispatch(&cmd, body).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(answer) => {
                metrics(0);
                self.reply(&req_id, answer).await
            }
            Err(e) => {
                metrics(device_code(&e).0);
                self.reply_error(Some(&req_id), e).await
            }
        }
    }

    /// Spends one command of this terminal's quota once the connection
    /// has named its terminal. Before that the pre-login byte allowance,
    /// the cap on anonymous connections and the `register` limit bound
    /// it; a per-address quota would refuse a site whose terminals all
    /// come back at once from behind one NAT address.
    async fn admit_command(&self) -> Result<()> {
        match &self.sn {
            Some(sn) => self.commands.check(sn, "device.command", false).await,
            None => Ok(()),
        }
    }

    /// The session of the device logged in on this connection, if it still is.
    pub(super) fn session(&self) -> Result<&Session> {
        let not_logged_in = || {
            Error::DeviceRefused(
                codes::NOT_LOGGED_IN,
                "not logged in: call subscribe_corp first".into(),
            )
        };
        let s = self.session.as_ref().ok_or_else(not_logged_in)?;
        // Replaced or unbound since: the session is over.
        if !self.core.hub().is_current(&s.sn, self.id) {
            return Err(not_logged_in());
        }
        Ok(s)
    }

    /// How the hub reaches this connection.
    pub(super) fn peer(&self) -> Arc<dyn Peer> {
        self.peer.clone()
    }

    /// The connection proved a credential: it no longer counts as
    /// anonymous, and its pre-login deadline is lifted.
    pub(super) fn identified(&mut self) {
        self.anonymous = None;
        self.failed_bring_ups = 0;
    }

    /// Remembers which device this connection speaks for, so pushes such
    /// as `push_bind_corp` reach it before it logs in.
    pub(super) fn attach(&mut self, sn: &str) {
        if self.session.is_some() {
            return;
        }
        if let Some(old) = self.sn.replace(sn.to_string())
            && old != sn
        {
            self.core.hub().detach(&old, self.id);
        }
        self.core.hub().attach(sn, &self.peer);
    }
}
