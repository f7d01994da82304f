//! A ZKTeco terminal's address book, kept by commands: each poll
//! (`getrequest`) may carry one batch of at most [`MAX_COMMANDS`], made
//! from the tenant's change log since the version the terminal holds (as
//! its book sees each version, like a WeCom terminal's pushes; a version
//! too large for one batch in parts), or, for a new or re-bound terminal,
//! from its whole book page by page.
//! The terminal holds a version only once every command of the batch that
//! brings it there is confirmed (`devicecmd`); a batch not all confirmed
//! within `device.push_resend_secs`, or with a failure a retry may mend,
//! is made and sent again. The queue lives in the terminal's row, so it
//! survives restarts and serves whichever node the terminal reaches.

use std::collections::BTreeMap;

use super::Change;
use super::hub::{MAX_REPLAY, Views};
use super::messages::Push;
use super::sync::Page;
use super::zk::ZkTerminal;
use super::zk_bio::ZkAlgorithm;
use super::zk_commands::{Action, Group, MAX_COMMANDS, ZkCommand, numbered, within_budget};
use crate::domain::Core;
use crate::model::error::Result;
use crate::model::{FullSync, Stream, ZkQueue};

/// Result codes a retry may mend (parameter or storage error, flash I/O,
/// no space); any other failure is given up and logged, since sending the
/// same command again would fail the same way.
fn retryable(code: i64) -> bool {
    matches!(code, -1 | -3 | -5)
}

/// Sends of one batch before it is given up (a failure a retry may mend
/// that does not mend).
const MAX_TRIES: u32 = 5;

/// People a full sync's page reads when templates go with them.
const TEMPLATE_PAGE: usize = 20;

impl Core {
    /// The commands for the terminal's next poll: a new batch, the last one
    /// again (unconfirmed too long, or failed in a way a retry may mend),
    /// or none (nothing to do, or a batch is waiting for its results).
    pub async fn zk_poll(&self, t: &ZkTerminal) -> Result<Vec<ZkCommand>> {
        let now = self.now();
        let mut old = t.row.zk_queue.clone();
        let resend = self.config().device.push_resend_secs as i64;
        let mut seen = t.row.seen_version;
        // What it reads, and the types it is sent photos of: a terminal
        // that starts taking photos gets its book again, with them.
        let reads: Vec<String> = t
            .readable()
            .iter()
            .map(ZkAlgorithm::name)
            .chain(
                t.photo_types()
                    .iter()
                    .map(|p| format!("photo-{}", p.code())),
            )
            .collect();
        if old.reads != reads {
            // What it reads changed while it holds a book (or gets one):
            // the book is sent anew, page by page with each person's
            // templates cleared first, then the change log from the
            // version it holds, so that removals still reach it.
            let holds = seen > 0 || old.full.is_some();
            let full = holds.then(|| FullSync {
                from_version: old.full.map_or(seen, |f| f.from_version),
                clear: true,
                ..FullSync::default()
            });
            old = ZkQueue {
                reads,
                full,
                ..ZkQueue::default()
            };
        }
        if !old.outstanding.is_empty() && !old.retry && now - old.sent_at < resend {
            return Ok(Vec::new());
        }
        let mut again = !old.outstanding.is_empty() || old.retry;
        if again && old.tries >= MAX_TRIES {
            tracing::warn!(
                sn = t.sn(),
                tries = old.tries,
                "a batch of commands never confirmed is given up"
            );
            (old, seen) = settled(old, seen);
            again = false;
        }
        let version = self.db.perm_version(t.row.tenant_id).await?;
        // A full sync in progress: its page again, or the next one.
        let full = match old.full {
            Some(f) if again => Some(f),
            Some(f) if !f.last => Some(FullSync { after: f.end, ..f }),
            _ if again => None,
            _ if seen >= version && old.part_after.is_none() => {
                return self.zk_write(t, old, seen, Vec::new()).await;
            }
            _ if seen == 0 => Some(FullSync {
                from_version: version,
                ..FullSync::default()
            }),
            _ => None,
        };
        // A part of a version starts where the last confirmed part ended
        // (`settled` moves it on), so a part sent again is the same part.
        let start = old.part_after.clone();
        let max_bytes = self.config().device.push_reply_kib.clamp(1, 1 << 20) << 10;
        let (groups, upto, part_end, part_upto, full) = match full {
            Some(f) => {
                let (groups, f) = self.zk_page(t, f, max_bytes).await?;
                (groups, f.from_version, None, None, Some(f))
            }
            None => {
                let (actions, end, truncated) = self
                    .zk_changes(t, seen, version, start.as_deref(), old.part_upto)
                    .await?;
                let last_action = actions.keys().next_back().cloned();
                let groups = self.zk_groups(t, actions).await?;
                let (groups, cut) = within_budget(groups, max_bytes);
                if cut || truncated {
                    // A part: the terminal holds `seen` until the last. It
                    // ends at its last group when cut, else at the last
                    // person taken (whose PIN may not be sendable).
                    let last = if cut {
                        groups.last().map(|g| g.0.clone())
                    } else {
                        last_action
                    };
                    (groups, seen, last, Some(end), None)
                } else {
                    // The last part (or no part) brings it to `end`.
                    let part_upto = start.as_ref().map(|_| end);
                    (groups, end, None, part_upto, None)
                }
            }
        };
        let groups = self.zk_load_photos(t, groups, max_bytes).await?;
        let commands = numbered(groups, t.row.zk_next_id.max(1));
        let queue = ZkQueue {
            outstanding: commands.iter().map(ZkCommand::id).collect(),
            sent_at: now,
            retry: false,
            tries: if again { old.tries + 1 } else { 1 },
            upto,
            part_after: if full.is_some() { None } else { start },
            part_end,
            part_upto,
            full,
            reads: old.reads.clone(),
        };
        // A batch with nothing for this terminal is done at once.
        let (queue, seen) = if commands.is_empty() {
            settled(queue, seen)
        } else {
            (queue, seen)
        };
        self.zk_write(t, queue, seen, commands).await
    }

    /// Stores the queue (over the revision the terminal was read at) and
    /// hands out `commands`; none when another poll wrote first.
    async fn zk_write(
        &self,
        t: &ZkTerminal,
        queue: ZkQueue,
        seen: i64,
        commands: Vec<ZkCommand>,
    ) -> Result<Vec<ZkCommand>> {
        if queue == t.row.zk_queue && seen == t.row.seen_version {
            return Ok(commands);
        }
        let next_id = t.row.zk_next_id.max(1) + commands.len() as i64;
        let written = self
            .db
            .set_zk_queue(t.sn(), t.row.zk_queue_rev, &queue, (seen, next_id))
            .await?;
        Ok(if written { commands } else { Vec::new() })
    }

    /// Takes the results of the terminal's commands: once the batch is all
    /// confirmed, the terminal holds the version it brings.
    pub async fn zk_results(&self, sn: &str, results: &[(i64, i64)]) -> Result<()> {
        // Re-read on a lost race with a poll of the same terminal.
        for _ in 0..3 {
            let Some(row) = self.db.device(sn).await? else {
                return Ok(());
            };
            let old = row.zk_queue.clone();
            let mut queue = old.clone();
            for &(id, code) in results {
                if !queue.outstanding.contains(&id) {
                    continue; // of an earlier batch, or not ours
                }
                queue.outstanding.retain(|o| *o != id);
                // -4 (nothing matched): what was to be removed is not there.
                if code != 0 && code != -4 {
                    tracing::warn!(sn, id, code, "terminal refused a command");
                    queue.retry |= retryable(code);
                }
            }
            if queue == old {
                return Ok(());
            }
            let (queue, seen) = if queue.outstanding.is_empty() && !queue.retry {
                settled(queue, row.seen_version)
            } else {
                (queue, row.seen_version)
            };
            let ids = (seen, row.zk_next_id);
            if self
                .db
                .set_zk_queue(sn, row.zk_queue_rev, &queue, ids)
                .await?
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// One page of the terminal's whole book (people after `f.after`, by
    /// id), every person on it put, as many as fit one reply: the page
    /// ends at the last of them.
    async fn zk_page(
        &self,
        t: &ZkTerminal,
        f: FullSync,
        max_bytes: usize,
    ) -> Result<(Vec<Group>, FullSync)> {
        // People with templates rarely fit a reply by the hundred: a page
        // of them reads only what a batch can carry.
        let limit = if !t.kinds().is_empty() {
            TEMPLATE_PAGE
        } else {
            MAX_COMMANDS
        };
        let page = Page::after(f.after, limit as i64)?;
        let (session, wanted, _) = t.rank(0).expect("the first rank");
        let page = self
            .users_page(&session, Stream::People, page, wanted)
            .await?;
        let groups = self.zk_page_groups(t, page.users, f.clear).await?;
        let ids: Vec<i64> = groups.iter().map(|(id, _)| *id).collect();
        let (groups, cut) = within_budget(groups.into_iter().map(|(_, g)| g).collect(), max_bytes);
        let full = if cut {
            FullSync {
                end: ids[groups.len() - 1],
                last: false,
                ..f
            }
        } else {
            FullSync {
                end: page.last_id.unwrap_or(f.after),
                last: page.is_last,
                ..f
            }
        };
        Ok((groups, full))
    }

    /// What the versions after `seen` ask of the terminal, as its book
    /// sees each, folded per person: as many versions as fit one batch
    /// (the first whatever its size), or, for parts, exactly the versions
    /// to `bound` and of them the people after `start`; the version they
    /// bring it to; and whether people were left for a later part (at
    /// most [`MAX_COMMANDS`] are taken, in PIN order).
    async fn zk_changes(
        &self,
        t: &ZkTerminal,
        seen: i64,
        version: i64,
        start: Option<&str>,
        bound: Option<i64>,
    ) -> Result<(BTreeMap<String, Action>, i64, bool)> {
        let tenant_id = t.row.tenant_id;
        let changes = self
            .db
            .changes_after(tenant_id, Stream::People, seen, MAX_REPLAY)
            .await?;
        // A part recorded without its bound is of the first version.
        let first_only = start.is_some() && bound.is_none();
        let mut views = Views::default();
        let mut actions: BTreeMap<String, Action> = BTreeMap::new();
        let mut upto = seen;
        for (v, change) in changes
            .into_iter()
            .filter(|c| c.0 <= bound.unwrap_or(version))
        {
            let at = (Stream::People, v, self.now());
            let push = views
                .push(self, at, &change, (tenant_id, t.sn(), &t.row.book))
                .await?;
            let Push::Change {
                change: visible, ..
            } = &*push
            else {
                unreachable!("Views::push makes changes")
            };
            let mut next = actions.clone();
            fold(&mut next, visible);
            if let Some(w) = start {
                next.retain(|pin, _| pin.as_str() > w);
            }
            if bound.is_none() && upto != seen && next.len() > MAX_COMMANDS {
                break;
            }
            actions = next;
            upto = v;
            if first_only {
                break;
            }
        }
        let truncated = actions.len() > MAX_COMMANDS;
        if truncated {
            actions = actions.into_iter().take(MAX_COMMANDS).collect();
        }
        Ok((actions, upto, truncated))
    }
}

/// `change` folded into `actions`: the last word on each person counts.
/// Within one change, a user both deleted and created is a person whose
/// type changed (the old identity goes, the new one comes): a PIN has no
/// type, so they are put.
/// A person created here is new to the terminal unless these changes took
/// them off first; an update keeps what the person was.
fn fold(actions: &mut BTreeMap<String, Action>, change: &Change) {
    for u in &change.delete_user {
        actions.insert(u.userid.clone(), Action::Remove);
    }
    for u in &change.create_user {
        let new = !actions.contains_key(&u.userid);
        let put = Action::Put {
            user: u.clone(),
            new,
        };
        actions.insert(u.userid.clone(), put);
    }
    for u in &change.update_user {
        let new = matches!(actions.get(&u.userid), Some(Action::Put { new: true, .. }));
        let put = Action::Put {
            user: u.clone(),
            new,
        };
        actions.insert(u.userid.clone(), put);
    }
}

/// A batch all confirmed: the version the terminal now holds, and the
/// queue with nothing in flight.
fn settled(mut queue: ZkQueue, seen: i64) -> (ZkQueue, i64) {
    queue.outstanding.clear();
    queue.retry = false;
    // A confirmed part: the next starts after it (none after the last).
    queue.part_after = queue.part_end.take();
    if queue.part_after.is_none() {
        queue.part_upto = None;
    }
    match queue.full {
        Some(f) if f.last => {
            queue.full = None;
            (queue, f.from_version)
        }
        Some(_) => (queue, seen),
        None => {
            let upto = queue.upto.max(seen);
            (queue, upto)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::devices::DeviceUser;

    fn user(id: &str) -> DeviceUser {
        DeviceUser {
            userid: id.into(),
            user_type: 0,
        }
    }

    #[test]
    fn the_last_word_on_each_person_counts() {
        let mut a = BTreeMap::new();
        fold(
            &mut a,
            &Change {
                create_user: vec![user("1"), user("2")],
                ..Change::default()
            },
        );
        fold(
            &mut a,
            &Change {
                delete_user: vec![user("1")],
                // 2 was created in these changes: still new to the terminal.
                update_user: vec![user("3"), user("2")],
                ..Change::default()
            },
        );
        assert_eq!(
            a.into_iter().collect::<Vec<_>>(),
            [
                ("1".to_string(), Action::Remove),
                (
                    "2".to_string(),
                    Action::Put {
                        user: user("2"),
                        new: true
                    }
                ),
                (
                    "3".to_string(),
                    Action::Put {
                        user: user("3"),
                        new: false
                    }
                )
            ]
        );
    }

    #[test]
    fn a_type_change_puts_the_person() {
        let mut a = BTreeMap::new();
        let visitor = DeviceUser {
            userid: "1".into(),
            user_type: 1,
        };
        fold(
            &mut a,
            &Change {
                create_user: vec![visitor.clone()],
                delete_user: vec![user("1")],
                ..Change::default()
            },
        );
        // Taken off and put again: what the terminal holds of them is
        // cleared, not kept.
        assert_eq!(
            a["1"],
            Action::Put {
                user: visitor,
                new: false
            }
        );
    }

    #[test]
    fn a_settled_batch_moves_the_terminal_on() {
        let q = ZkQueue {
            outstanding: vec![4],
            upto: 9,
            ..ZkQueue::default()
        };
        assert_eq!(settled(q.clone(), 5).1, 9);
        let page = |last| ZkQueue {
            full: Some(FullSync {
                from_version: 7,
                after: 0,
                end: 200,
                last,
                clear: false,
            }),
            ..q.clone()
        };
        let (after, seen) = settled(page(false), 0);
        assert_eq!((seen, after.full.is_some()), (0, true));
        let (after, seen) = settled(page(true), 0);
        assert_eq!((seen, after.full, after.outstanding.len()), (7, None, 0));
        assert!(retryable(-5) && !retryable(-10) && !retryable(-1004));
    }
}
