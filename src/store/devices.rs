//! Terminals: registration, binding, and what each has subscribed to and
//! been sent. Their templates, change log, enrolments and punch records
//! have files of their own (`templates`, `changes`, `enrolments`,
//! `flows`).

use super::Db;
use crate::model::{
    DeviceKey, DeviceRow, PendingDevice, Protocol, PushInfo, Seen, ZkQueue, ZkSettings,
};

impl Db {
    /// Adds a terminal; a ZKTeco one with its settings. Its serial number
    /// leaves the pending list in the same transaction.
    pub async fn insert_device(
        &self,
        sn: &str,
        tenant_id: i64,
        sealed_secret_no: &[u8],
        zk: Option<&ZkSettings>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let (protocol, offset, allow) = match zk {
            None => (Protocol::WeCom, 0, "[]".to_string()),
            Some(z) => (
                Protocol::ZkTeco,
                z.utc_offset_min,
                serde_json::to_string(&z.allow_from).expect("strings serialise"),
            ),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO devices(sn, tenant_id, secret_no, created_at, protocol, utc_offset_min,
                                 allow_from)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sn)
        .bind(tenant_id)
        .bind(sealed_secret_no)
        .bind(now)
        .bind(protocol.as_str())
        .bind(offset)
        .bind(allow)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM pending_devices WHERE sn = $1")
            .bind(sn)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Notes a call from a serial number no terminal has: a new one (the
    /// stalest dropped when `max` are pending), a known one's address and
    /// time at most once a minute.
    pub async fn note_pending(
        &self,
        sn: &str,
        protocol: Protocol,
        address: &str,
        now: i64,
        max: i64,
    ) -> anyhow::Result<()> {
        let r = sqlx::query(
            "UPDATE pending_devices SET address = $1, last_seen = $2
             WHERE sn = $3 AND last_seen < $4",
        )
        .bind(address)
        .bind(now)
        .bind(sn)
        .bind(now - 60)
        .execute(self.pool()?)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM pending_devices WHERE sn = $1")
            .bind(sn)
            .fetch_optional(self.pool()?)
            .await?;
        if known.is_some() {
            return Ok(()); // noted within the minute
        }
        // A full list makes room by its stalest entries: a flood of made-up
        // serial numbers cannot keep a real terminal off it for good.
        let mut tx = self.begin_write().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_devices")
            .fetch_one(&mut *tx)
            .await?;
        if count >= max {
            sqlx::query(
                "DELETE FROM pending_devices WHERE sn IN
                   (SELECT sn FROM pending_devices ORDER BY last_seen, sn LIMIT $1)",
            )
            .bind(count - max + 1)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO pending_devices(sn, protocol, address, first_seen, last_seen)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sn) DO NOTHING",
        )
        .bind(sn)
        .bind(protocol.as_str())
        .bind(address)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Serial numbers that called before they were added, newest first.
    pub async fn pending_devices(&self) -> anyhow::Result<Vec<PendingDevice>> {
        self.rows("SELECT * FROM pending_devices ORDER BY last_seen DESC, sn")
            .await
    }

    /// A ZKTeco terminal's commands in flight, the version it holds and
    /// its next command id; `false` (nothing written) unless the queue is
    /// still at revision `rev`, as read (two polls of one terminal cannot
    /// both send a batch).
    pub async fn set_zk_queue(
        &self,
        sn: &str,
        rev: i64,
        queue: &ZkQueue,
        (seen_version, next_id): (i64, i64),
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET zk_queue = $1, seen_version = $2, zk_next_id = $3,
                    zk_queue_rev = zk_queue_rev + 1
             WHERE sn = $4 AND bound = 1 AND zk_queue_rev = $5",
        )
        .bind(serde_json::to_string(queue)?)
        .bind(seen_version)
        .bind(next_id)
        .bind(sn)
        .bind(rev)
        .execute(self.pool()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A ZKTeco terminal's report of itself, and that it called now,
    /// written only over the report `old` that it merges (a terminal's
    /// calls overlap: a poll must not undo what an upload just reported).
    /// Whether it was written.
    pub async fn set_push_info(
        &self,
        sn: &str,
        old: Option<&PushInfo>,
        info: &PushInfo,
        (now, online_until): (i64, i64),
    ) -> anyhow::Result<bool> {
        let old = old.map(serde_json::to_string).transpose()?;
        let r = sqlx::query(
            "UPDATE devices SET push_info = $1, last_seen = $2, online_until = $3,
                    firmware_version = COALESCE($4, firmware_version)
             WHERE sn = $5 AND push_info IS NOT DISTINCT FROM $6",
        )
        .bind(serde_json::to_string(info)?)
        .bind(now)
        .bind(online_until)
        .bind(info.firmware.as_deref())
        .bind(sn)
        .bind(old)
        .execute(self.pool()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn device(&self, sn: &str) -> anyhow::Result<Option<DeviceRow>> {
        self.row_by("SELECT * FROM devices WHERE sn = $1", sn).await
    }

    pub async fn devices(&self, tenant_id: i64) -> anyhow::Result<Vec<DeviceRow>> {
        self.rows_by(
            "SELECT * FROM devices WHERE tenant_id = $1 ORDER BY sn",
            tenant_id,
        )
        .await
    }

    /// Records a `register` and its new active code, unless its
    /// (timestamp, nonce) is older than or the same as the last one's — a
    /// replay. `false` for a replay.
    pub async fn record_register(
        &self,
        sn: &str,
        ts: i64,
        nonce: &str,
        code_hash: &str,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET active_code_hash = $1, register_ts = $2, register_nonce = $3
             WHERE sn = $4 AND (register_ts IS NULL OR register_ts < $5
                               OR (register_ts = $6 AND register_nonce IS DISTINCT FROM $7))",
        )
        .bind(code_hash)
        .bind(ts)
        .bind(nonce)
        .bind(sn)
        .bind(ts)
        .bind(ts)
        .bind(nonce)
        .execute(self.pool()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn device_by(
        &self,
        column: DeviceKey,
        hash: &str,
    ) -> anyhow::Result<Option<DeviceRow>> {
        // WeCom credentials name WeCom terminals only.
        let sql = match column {
            DeviceKey::ActiveCode => {
                "SELECT * FROM devices WHERE active_code_hash = $1 AND protocol = 'wecom'"
            }
            DeviceKey::Secret => {
                "SELECT * FROM devices WHERE secret_hash = $1 AND protocol = 'wecom'"
            }
        };
        self.row_by(sql, hash).await
    }

    /// Binds (with the secret `active` will hand out) or unbinds; unbinding
    /// kills the secret and the active code. `false` if nothing changed.
    pub async fn set_bound(
        &self,
        sn: &str,
        tenant_id: i64,
        secret: Option<(&[u8], &str)>,
    ) -> anyhow::Result<bool> {
        let r = match secret {
            Some((sealed, hash)) => {
                sqlx::query(
                    "UPDATE devices SET bound = 1, secret = $1, secret_hash = $2
                     WHERE sn = $3 AND tenant_id = $4 AND bound = 0",
                )
                .bind(sealed)
                .bind(hash)
                .bind(sn)
                .bind(tenant_id)
                .execute(self.pool()?)
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE devices SET bound = 0, secret = NULL, secret_hash = NULL,
                            active_code_hash = NULL, seen_version = 0,
                            seen_visitor_version = 0, zk_queue = NULL,
                            zk_queue_rev = zk_queue_rev + 1
                     WHERE sn = $1 AND tenant_id = $2 AND bound = 1",
                )
                .bind(sn)
                .bind(tenant_id)
                .execute(self.pool()?)
                .await?
            }
        };
        Ok(r.rows_affected() == 1)
    }

    pub async fn unbound_devices(&self, tenant_id: i64) -> anyhow::Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT sn FROM devices WHERE tenant_id = $1 AND bound = 0")
                .bind(tenant_id)
                .fetch_all(self.pool()?)
                .await?,
        )
    }

    pub async fn set_subscription(
        &self,
        sn: &str,
        firmware: &str,
        fa: &[String],
        fp: &[String],
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE devices SET firmware_version = $1, fa_algorithms = $2, fp_algorithms = $3, last_seen = $4
             WHERE sn = $5",
        )
        .bind(firmware)
        .bind(serde_json::to_string(fa)?)
        .bind(serde_json::to_string(fp)?)
        .bind(now)
        .bind(sn)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    /// Renews the presence lease of devices logged in on this node, with
    /// the versions they were sent: one transaction for the lot. (A CASE,
    /// not a two-argument MAX, which PostgreSQL lacks.)
    pub async fn renew_presence(
        &self,
        devices: &[(String, Seen, String)],
        now: i64,
        until: i64,
    ) -> anyhow::Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool()?.begin().await?;
        for (sn, seen, owner) in devices {
            sqlx::query(&format!(
                "UPDATE devices SET {SEEN}, last_seen = $3, online_until = $4, online_owner = $5
                 WHERE sn = $6"
            ))
            .bind(seen.people)
            .bind(seen.visitors)
            .bind(now)
            .bind(until)
            .bind(owner)
            .bind(sn)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that the device was sent everything up to `seen`, as
    /// connection `owner` ends: the lease it held (and only that one) ends
    /// with it.
    pub async fn set_seen(
        &self,
        sn: &str,
        seen: Seen,
        now: i64,
        owner: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(&format!(
            "UPDATE devices SET {SEEN}, last_seen = $3,
                    online_until = CASE WHEN online_owner = $4 THEN NULL ELSE online_until END,
                    online_owner = CASE WHEN online_owner = $4 THEN NULL ELSE online_owner END
             WHERE sn = $5"
        ))
        .bind(seen.people)
        .bind(seen.visitors)
        .bind(now)
        .bind(owner)
        .bind(sn)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }
}

/// Moves both positions forward to `$1` (staff) and `$2` (visitors), never
/// back.
const SEEN: &str = "seen_version = CASE WHEN seen_version > $1 THEN seen_version ELSE $1 END,
    seen_visitor_version = CASE WHEN seen_visitor_version > $2 THEN seen_visitor_version ELSE $2 END";
