//! One request: its `cmd` → the frame's body read into typed values
//! ([`frames::read`]) → a call on the core → the reply's body
//! ([`frames`]). A command that needs a login checks it before reading
//! its body, so a device that is not logged in is told so first.

use serde_json::{Value, json};

use super::admission::UNMETERED;
use super::connection::Conn;
use super::frames::{self, read};
use crate::domain::devices::{clip, codes};
use crate::domain::guard::ClientKey;
use crate::model::Stream;
use crate::model::error::{Error, Result};

/// What a request is answered with.
pub(super) enum Answer {
    /// A JSON reply with this body.
    Body(Value),
    /// `download_photo`'s binary reply.
    Photo(Vec<u8>),
}

/// Runs `f` off the async threads: reading an upload decodes thousands of
/// templates, and writing a page encodes as many.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("device frame worker: {e}")))
}

impl Conn {
    pub(super) async fn dispatch(&mut self, cmd: &str, body: Value) -> Result<Answer> {
        let core = self.core.clone();
        let reply = match cmd {
            "ping" => json!({}),
            "register" => {
                read::register_sn(&body)?;
                let key = format!("addr:{}", ClientKey::of(self.client));
                self.limiter.check(&key, "device.register", false).await?;
                let r = read::register(&body)?;
                let code = core
                    .register_device(r.sn, &r.timestamp, &r.nonce, r.signature, self.client)
                    .await
                    .inspect_err(|_| self.failed_bring_ups += 1)?;
                self.identified();
                self.attach(r.sn);
                frames::active_code_reply(&code)
            }
            "active" => {
                let code = read::active_code(&body)?;
                match core.activate_device(code).await {
                    Ok((sn, secret)) => {
                        self.identified();
                        self.attach(&sn);
                        frames::secret_reply(&secret)
                    }
                    // A live code of a terminal not bound yet: it has proved
                    // who it is, and waits here for push_bind_corp.
                    Err(e @ Error::DeviceRefused(codes::NOT_AUTHORISED, _)) => {
                        if let Some(sn) = core.active_code_device(code).await? {
                            self.identified();
                            self.attach(&sn);
                        }
                        return Err(e);
                    }
                    Err(e) => {
                        if matches!(e, Error::DeviceRefused(codes::INVALID_ACTIVE_CODE, _)) {
                            self.failed_bring_ups += 1;
                        }
                        return Err(e);
                    }
                }
            }
            "subscribe_corp" => {
                let sub = read::subscription(&body)?;
                let session = core
                    .subscribe_device(&sub)
                    .await
                    .inspect_err(|_| self.failed_bring_ups += 1)?;
                let seen = core.sync_position(&session.sn).await?;
                if self.sn.as_deref() != Some(session.sn.as_str())
                    && let Some(old) = self.sn.take()
                {
                    core.hub().detach(&old, self.id);
                }
                self.sn = Some(session.sn.clone());
                core.hub().login(&session, &self.peer(), seen);
                self.session = Some(session);
                self.identified();
                self.allowance.set(UNMETERED);
                json!({})
            }
            "get_secret_no" => {
                return Err(Error::param(
                    "get_secret_no is not offered: devices are added with their SecretNo",
                ));
            }
            "get_perm_version" => {
                let s = self.session()?;
                frames::perm_version_reply(core.perm_version(s.tenant_id).await?)
            }
            "get_userinfo_by_ids" => {
                let s = self.session()?;
                let users = read::users_by_ids(&body)?;
                let wanted = read::wanted(&body)?;
                let info = core.users_by_ids(s, &users, wanted).await?;
                blocking(move || frames::userinfo_reply(&info)).await?
            }
            cmd @ ("get_userinfo_by_page" | "get_visitor_list") => {
                let s = self.session()?;
                let list = if cmd == "get_visitor_list" {
                    Stream::Visitors
                } else {
                    Stream::People
                };
                let page = read::page(&body)?;
                let wanted = read::wanted(&body)?;
                let page = core.users_page(s, list, page, wanted).await?;
                blocking(move || frames::page_reply(&page)).await?
            }
            "check_userid" => {
                let s = self.session()?;
                let (users, old_form) = read::check_userid(&body)?;
                frames::check_reply(&core.check_users(s, &users).await?, old_form)
            }
            "upload_userinfo" => {
                let s = self.session()?;
                let upload = blocking(move || read::upload(body)).await??;
                frames::upload_reply(&core.upload_userinfo(s, upload).await?.fail_list)
            }
            "checkin" => {
                let s = self.session()?;
                // Capture photos make a frame megabytes of base64.
                let punches = blocking(move || read::checkin(&body)).await??;
                frames::checkin_reply(&core.checkin(s, punches).await?)
            }
            "download_photo" => {
                let s = self.session()?;
                let photo = core.download_photo(s, read::media_id(&body)?).await?;
                return Ok(Answer::Photo(photo));
            }
            other => return Err(Error::param(format!("unknown cmd {:?}", clip(other, 64)))),
        };
        Ok(Answer::Body(reply))
    }
}
