//! Terminals: registration, binding, and what each has subscribed to and
//! been sent. Their templates, change log, enrolments and punch records
//! have files of their own (`templates`, `changes`, `enrolments`,
//! `flows`).

use super::Db;
use crate::model::{DeviceKey, DeviceRow, Seen};

impl Db {
    pub async fn insert_device(
        &self,
        sn: &str,
        tenant_id: i64,
        sealed_secret_no: &[u8],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO devices(sn, tenant_id, secret_no, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(sn)
        .bind(tenant_id)
        .bind(sealed_secret_no)
        .bind(now)
        .execute(self.pool()?)
        .await?;
        Ok(())
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
        let sql = match column {
            DeviceKey::ActiveCode => "SELECT * FROM devices WHERE active_code_hash = $1",
            DeviceKey::Secret => "SELECT * FROM devices WHERE secret_hash = $1",
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
                            seen_visitor_version = 0
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
