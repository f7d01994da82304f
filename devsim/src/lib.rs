//! A simulated terminal speaking the WeCom device protocol, as firmware
//! does: bring-up (register → active → subscribe_corp), heartbeat, the
//! request/reply correlation by `req_id`, pushes, the binary
//! `download_photo` reply, and a local address book kept in sync the way
//! the platform describes (incremental on a +1 version, full pull on a gap).

pub mod zk;
pub mod zk_access;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// What answers a request: a JSON reply frame or a binary photo frame.
#[derive(Debug)]
pub enum Reply {
    Json(Value),
    Binary(Vec<u8>),
}

type Pending = Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

/// The templates a device holds for one person and modality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    pub algorithm: Option<String>,
    pub slots: BTreeMap<i64, String>,
}

/// A person in the device's local address book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalUser {
    pub name: String,
    pub fa: Slots,
    pub fp: Slots,
    /// `pass_rule_list[].rule`, in the order sent.
    pub pass_rules: Vec<String>,
}

/// The device's local copy of the address book.
#[derive(Debug, Clone, Default)]
pub struct Book {
    pub perm_version: i64,
    pub users: HashMap<(String, i64), LocalUser>,
    /// The visitor list, kept apart with its own version.
    pub visitor_version: i64,
    pub visitors: HashMap<(String, i64), LocalUser>,
    pub full_pulls: u64,
    pub incremental: u64,
}

/// The two lists a terminal keeps, each with its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Staff,
    Visitors,
}

impl List {
    fn pull_cmd(self) -> &'static str {
        match self {
            List::Staff => "get_userinfo_by_page",
            List::Visitors => "get_visitor_list",
        }
    }

    fn version_field(self) -> &'static str {
        match self {
            List::Staff => "perm_version",
            List::Visitors => "visitor_version",
        }
    }

    /// The push's create, update and delete lists.
    fn change_fields(self) -> [&'static str; 3] {
        match self {
            List::Staff => ["create_user", "update_user", "delete_user"],
            List::Visitors => ["create_visitor", "update_visitor", "delete_visitor"],
        }
    }

    fn users(self, book: &mut Book) -> &mut HashMap<(String, i64), LocalUser> {
        match self {
            List::Staff => &mut book.users,
            List::Visitors => &mut book.visitors,
        }
    }

    fn version(self, book: &mut Book) -> &mut i64 {
        match self {
            List::Staff => &mut book.perm_version,
            List::Visitors => &mut book.visitor_version,
        }
    }
}

/// One simulated terminal on one connection.
pub struct Device {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    pushes: Mutex<mpsc::UnboundedReceiver<Value>>,
    errors: Mutex<mpsc::UnboundedReceiver<Value>>,
    closed: Mutex<mpsc::UnboundedReceiver<Option<(u16, String)>>>,
    next: AtomicU64,
    pub sn: String,
    pub book: Mutex<Book>,
    pub fa_algorithms: Vec<String>,
    pub fp_algorithms: Vec<String>,
}

/// Frames up to 256 MiB: full pages of templates are large.
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(256 << 20);
    config.max_frame_size = Some(256 << 20);
    config
}

/// The WeCom signature: SHA-1 hex of the sorted values concatenated.
pub fn signature(values: &[&str]) -> String {
    let mut v = values.to_vec();
    v.sort_unstable();
    hex::encode(Sha1::digest(v.concat().as_bytes()))
}

/// Parses the binary `download_photo` reply: (req_id, photo).
pub fn parse_photo_frame(b: &[u8]) -> anyhow::Result<(String, Vec<u8>)> {
    let int = |at: usize| -> anyhow::Result<usize> {
        let s = b.get(at..at + 4).context("binary frame truncated")?;
        Ok(i32::from_le_bytes(s.try_into()?) as usize)
    };
    anyhow::ensure!(int(0)? == 1, "format_version is not 1");
    let id_len = int(4)?;
    let req_id =
        std::str::from_utf8(b.get(8..8 + id_len).context("truncated req_id")?)?.to_string();
    let data_len = int(8 + id_len)?;
    let data = b
        .get(12 + id_len..12 + id_len + data_len)
        .context("truncated data")?
        .to_vec();
    Ok((req_id, data))
}

impl Device {
    /// Opens the WebSocket; `heartbeat` sends `ping` at that interval.
    pub async fn connect(
        url: &str,
        sn: &str,
        algorithms: (&[&str], &[&str]),
        heartbeat: Option<Duration>,
    ) -> anyhow::Result<Arc<Device>> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
            .await
            .with_context(|| format!("connecting {url}"))?;
        Ok(Self::over(ws, sn, algorithms, heartbeat))
    }

    /// A device on an established WebSocket (e.g. over TLS).
    pub fn over<S>(
        ws: tokio_tungstenite::WebSocketStream<S>,
        sn: &str,
        algorithms: (&[&str], &[&str]),
        heartbeat: Option<Duration>,
    ) -> Arc<Device>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let (err_tx, errors) = mpsc::unbounded_channel();
        let (close_tx, closed) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let p = pending.clone();
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let Ok(v) = serde_json::from_str::<Value>(&t) else {
                            continue;
                        };
                        if v.get("cmd").is_some() {
                            let _ = push_tx.send(v);
                        } else if let Some(id) =
                            v.pointer("/headers/req_id").and_then(Value::as_str)
                        {
                            if let Some(tx) = p.lock().unwrap().remove(id) {
                                let _ = tx.send(Reply::Json(v));
                            }
                        } else {
                            let _ = err_tx.send(v);
                        }
                    }
                    Ok(Message::Binary(b)) => {
                        if let Ok((id, data)) = parse_photo_frame(&b)
                            && let Some(tx) = p.lock().unwrap().remove(&id)
                        {
                            let _ = tx.send(Reply::Binary(data));
                        }
                    }
                    Ok(Message::Close(f)) => {
                        let _ = close_tx.send(f.map(|f| (u16::from(f.code), f.reason.to_string())));
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let _ = close_tx.send(None);
                        break;
                    }
                }
            }
            p.lock().unwrap().clear();
        });
        let dev = Arc::new(Device {
            out,
            pending,
            pushes: Mutex::new(pushes),
            errors: Mutex::new(errors),
            closed: Mutex::new(closed),
            next: AtomicU64::new(1),
            sn: sn.to_string(),
            book: Mutex::default(),
            fa_algorithms: algorithms.0.iter().map(|s| s.to_string()).collect(),
            fp_algorithms: algorithms.1.iter().map(|s| s.to_string()).collect(),
        });
        if let Some(every) = heartbeat {
            let weak = Arc::downgrade(&dev);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(d) = weak.upgrade() else { break };
                    if d.request("ping", json!({})).await.is_err() {
                        break;
                    }
                }
            });
        }
        dev
    }

    /// Sends any message as is.
    pub fn send_raw(&self, m: Message) -> anyhow::Result<()> {
        self.out.send(m).map_err(|_| anyhow!("connection closed"))
    }

    /// Sends a request and waits for its reply (10 s).
    pub async fn request_reply(&self, cmd: &str, body: Value) -> anyhow::Result<Reply> {
        let req_id = format!("{}-{}", self.sn, self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(req_id.clone(), tx);
        let frame = json!({"cmd": cmd, "headers": {"req_id": req_id}, "body": body});
        self.send_raw(Message::Text(frame.to_string().into()))?;
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .with_context(|| format!("{cmd}: no reply"))?
            .map_err(|_| anyhow!("{cmd}: connection closed"))
    }

    /// Sends a whole frame as given and waits for the reply to its
    /// `headers.req_id`.
    pub async fn request_frame(&self, frame: &Value) -> anyhow::Result<Value> {
        let req_id = frame
            .pointer("/headers/req_id")
            .and_then(Value::as_str)
            .context("frame has no req_id")?
            .to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(req_id, tx);
        self.send_raw(Message::Text(frame.to_string().into()))?;
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(Reply::Json(v))) => Ok(v),
            Ok(Ok(Reply::Binary(_))) => bail!("unexpected binary reply"),
            _ => bail!("no reply"),
        }
    }

    /// The reply frame of a request.
    pub async fn request(&self, cmd: &str, body: Value) -> anyhow::Result<Value> {
        match self.request_reply(cmd, body).await? {
            Reply::Json(v) => Ok(v),
            Reply::Binary(_) => bail!("{cmd}: unexpected binary reply"),
        }
    }

    /// The reply body of a request that must succeed.
    pub async fn call(&self, cmd: &str, body: Value) -> anyhow::Result<Value> {
        let r = self.request(cmd, body).await?;
        if r["errcode"] != 0 {
            bail!("{cmd} failed: {} {}", r["errcode"], r["errmsg"]);
        }
        Ok(r["body"].clone())
    }

    /// The next push within `wait`.
    pub async fn next_push(&self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.pushes.lock().await.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next push of `cmd`, skipping others.
    pub async fn push_of(&self, cmd: &str, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let p = self.next_push(left).await?;
            if p["cmd"] == cmd {
                return Some(p);
            }
        }
    }

    /// The next connection-level error frame (no `headers`).
    pub async fn next_error(&self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.errors.lock().await.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for the server to close: `Some((code, reason))` of its close frame.
    pub async fn closed(&self, wait: Duration) -> Option<Option<(u16, String)>> {
        tokio::time::timeout(wait, self.closed.lock().await.recv())
            .await
            .ok()
            .flatten()
    }

    /// `register` with the factory SecretNo: the active code.
    pub async fn register(&self, secret_no: &str, timestamp: i64) -> anyhow::Result<String> {
        let ts = timestamp.to_string();
        // Fresh per register, as firmware does (the server refuses replays).
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                d.as_nanos() as u64 ^ self.next.fetch_add(1, Ordering::Relaxed)
            })
            .to_string();
        let sig = signature(&[&self.sn, secret_no, &ts, &nonce, "register"]);
        let b = self
            .call(
                "register",
                json!({"sn": self.sn, "timestamp": timestamp, "nonce": nonce,
                       "device_signature": sig, "net_info": {"wifi_name": "", "mac_address": "00:00:00:00:00:00"}}),
            )
            .await?;
        Ok(b["active_code"]
            .as_str()
            .context("no active_code")?
            .to_string())
    }

    /// `subscribe_corp` with the device's algorithm lists.
    pub async fn subscribe(&self, secret: &str) -> anyhow::Result<()> {
        self.call(
            "subscribe_corp",
            json!({"secret": secret, "firmware_version": "devsim-1.0",
                   "ext_args": {"fa_algorithm": self.fa_algorithms, "fp_algorithm": self.fp_algorithms}}),
        )
        .await?;
        Ok(())
    }

    /// The full bring-up for a device an admin has bound: the secret.
    pub async fn bring_up(&self, secret_no: &str, now: i64) -> anyhow::Result<String> {
        let code = self.register(secret_no, now).await?;
        let secret = self.call("active", json!({"active_code": code})).await?["secret"]
            .as_str()
            .context("no secret")?
            .to_string();
        self.subscribe(&secret).await?;
        Ok(secret)
    }

    /// `download_photo`: the photo bytes.
    pub async fn download_photo(&self, media_id: &str) -> anyhow::Result<Vec<u8>> {
        match self
            .request_reply(
                "download_photo",
                json!({"media_id": media_id, "format_version": 1}),
            )
            .await?
        {
            Reply::Binary(b) => Ok(b),
            Reply::Json(v) => bail!("download_photo failed: {} {}", v["errcode"], v["errmsg"]),
        }
    }

    fn absorb(book: &mut HashMap<(String, i64), LocalUser>, info: &Value) {
        for u in info.as_array().into_iter().flatten() {
            let key = (
                u["userid"].as_str().unwrap_or_default().to_string(),
                u["user_type"].as_i64().unwrap_or(0),
            );
            let slots = |list: &str, alg: &str| Slots {
                algorithm: u[alg].as_str().map(str::to_string),
                slots: u[list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        (
                            s["id"].as_i64().unwrap_or(-1),
                            s["data"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            };
            book.insert(
                key,
                LocalUser {
                    name: u["name"].as_str().unwrap_or_default().to_string(),
                    fa: slots("fa_list", "fa_algorithm"),
                    fp: slots("fp", "fp_algorithm"),
                    pass_rules: u["pass_rule_list"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| r["rule"].as_str().unwrap_or_default().to_string())
                        .collect(),
                },
            );
        }
    }

    /// The full pull of the staff list, `page` users at a time.
    pub async fn full_pull(&self, page: i64) -> anyhow::Result<()> {
        self.pull(List::Staff, page).await
    }

    /// The full pull of a list, `page` users at a time; restarts from
    /// offset 0 if the version moves under it, as the platform asks.
    pub async fn pull(&self, list: List, page: i64) -> anyhow::Result<()> {
        'again: loop {
            let mut fresh = HashMap::new();
            let mut offset = 0;
            let mut version = None;
            loop {
                let b = self
                    .call(list.pull_cmd(), json!({"offset": offset, "limit": page}))
                    .await?;
                let v = b[list.version_field()]
                    .as_i64()
                    .with_context(|| format!("no {}", list.version_field()))?;
                if version.is_some_and(|old| old != v) {
                    continue 'again;
                }
                version = Some(v);
                let n = b["userinfo"].as_array().map_or(0, Vec::len) as i64;
                Self::absorb(&mut fresh, &b["userinfo"]);
                offset += n;
                if b["is_last"] == true || n == 0 {
                    break;
                }
            }
            let mut book = self.book.lock().await;
            *list.users(&mut book) = fresh;
            *list.version(&mut book) = version.unwrap_or(0);
            if let List::Staff = list {
                book.full_pulls += 1;
            }
            return Ok(());
        }
    }

    /// Acts on a `push_change_contact` or `push_visitor_list_change`: the
    /// named users on a +1 version, a full pull of the list on a gap.
    pub async fn apply_change(&self, push: &Value) -> anyhow::Result<()> {
        let list = if push["cmd"] == "push_visitor_list_change" {
            List::Visitors
        } else {
            List::Staff
        };
        let body = &push["body"];
        let [create, update, delete] = list.change_fields();
        let v = body[list.version_field()]
            .as_i64()
            .with_context(|| format!("no {}", list.version_field()))?;
        let local = *list.version(&mut *self.book.lock().await);
        if v <= local {
            return Ok(());
        }
        if v != local + 1 {
            return self.pull(list, 200).await;
        }
        let mut ask = Vec::new();
        for field in [create, update] {
            for u in body[field].as_array().into_iter().flatten() {
                ask.push(u.clone());
            }
        }
        let mut book = self.book.lock().await;
        for u in body[delete].as_array().into_iter().flatten() {
            list.users(&mut book).remove(&(
                u["userid"].as_str().unwrap_or_default().to_string(),
                u["user_type"].as_i64().unwrap_or(0),
            ));
        }
        drop(book);
        for chunk in ask.chunks(200) {
            let b = self
                .call("get_userinfo_by_ids", json!({"user_item": chunk}))
                .await?;
            Self::absorb(list.users(&mut *self.book.lock().await), &b["userinfo"]);
        }
        let mut book = self.book.lock().await;
        *list.version(&mut book) = v;
        if let List::Staff = list {
            book.incremental += 1;
        }
        Ok(())
    }

    /// After login: compare each list's version and pull the list if they
    /// differ (the visitor list's version comes with its first page).
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        let v = self.call("get_perm_version", json!({})).await?["perm_version"]
            .as_i64()
            .context("no perm_version")?;
        if v != self.book.lock().await.perm_version {
            self.full_pull(200).await?;
        }
        let first = self
            .call("get_visitor_list", json!({"offset": 0, "limit": 1}))
            .await?;
        let v = first["visitor_version"]
            .as_i64()
            .context("no visitor_version")?;
        if v != self.book.lock().await.visitor_version {
            self.pull(List::Visitors, 200).await?;
        }
        Ok(())
    }

    /// A simulated feature extractor: deterministic bytes derived from the
    /// input, never the input itself (templates must not be pictures).
    pub fn extract(input: &[u8], slot: u8) -> String {
        use base64::Engine;
        let mut out = Vec::with_capacity(512);
        let mut h = Sha1::digest(input).to_vec();
        while out.len() < 512 {
            h.push(slot);
            h = Sha1::digest(&h).to_vec();
            out.extend_from_slice(&h);
        }
        out.truncate(512);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// Answers an enrolment push as a terminal does: `push_enter_page`
    /// "captures" a template, `push_user_face` downloads each photo and
    /// extracts one; both upload with the `oper_id`. `false` for other
    /// pushes.
    pub async fn answer_enrolment(&self, push: &Value) -> anyhow::Result<bool> {
        let body = &push["body"];
        let user = json!({"userid": body["userid"], "user_type": body["user_type"]});
        let capture = |input: &[u8], slot: u8, page: &str| {
            let mut u = user.clone();
            if page == "fp" {
                u["fp"] = json!([{"id": slot, "data": Self::extract(input, slot)}]);
                u["fp_algorithm"] =
                    json!(self.fp_algorithms.first().map_or("default", String::as_str));
            } else {
                u["fa_list"] = json!([{"id": slot, "data": Self::extract(input, slot)}]);
                u["fa_algorithm"] =
                    json!(self.fa_algorithms.first().map_or("default", String::as_str));
            }
            u
        };
        let users = match push["cmd"].as_str() {
            Some("push_enter_page") => {
                let seed = format!("{}:{}", self.sn, body["userid"]);
                vec![capture(
                    seed.as_bytes(),
                    0,
                    body["page_type"].as_str().unwrap_or("fa"),
                )]
            }
            Some("push_user_face") => {
                let mut merged = user.clone();
                let mut list = Vec::new();
                for (i, f) in body["face_info"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let photo = self
                        .download_photo(f["media_id"].as_str().context("no media_id")?)
                        .await?;
                    list.push(capture(&photo, i as u8, "fa")["fa_list"][0].clone());
                }
                merged["fa_list"] = json!(list);
                merged["fa_algorithm"] =
                    json!(self.fa_algorithms.first().map_or("default", String::as_str));
                vec![merged]
            }
            _ => return Ok(false),
        };
        self.call(
            "upload_userinfo",
            json!({"oper_id": body["oper_id"], "errcode": 0, "errmsg": "ok", "userinfo": users}),
        )
        .await?;
        Ok(true)
    }

    /// Handles pushes until none arrives for `quiet`: change pushes update
    /// the book; others are returned.
    pub async fn drain_pushes(&self, quiet: Duration) -> anyhow::Result<Vec<Value>> {
        let mut other = Vec::new();
        while let Some(p) = self.next_push(quiet).await {
            if p["cmd"] == "push_change_contact" || p["cmd"] == "push_visitor_list_change" {
                self.apply_change(&p).await?;
            } else {
                other.push(p);
            }
        }
        Ok(other)
    }
}
