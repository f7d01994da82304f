//! Door-access users: who may open doors, with their card and enrolled
//! face.

use sqlx::FromRow;

use super::Db;
use super::rows::acs_from_row;
use super::sql::{audit_in, delete_files_in};
use crate::model::{AuditEvent, Person};

/// A door-access user's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsRow {
    pub person_id: i64,
    pub card: Option<i64>,
    pub face_file_id: Option<String>,
    pub crop_file_id: Option<String>,
    pub face_box: Option<String>,
}

impl AcsRow {
    /// The ids of the face files the row holds.
    fn face_files(&self) -> impl Iterator<Item = &str> {
        [&self.face_file_id, &self.crop_file_id]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

impl Db {
    /// Grants door access; `false` if the person already had it.
    pub async fn acs_grant(
        &self,
        tenant_id: i64,
        person_id: i64,
        now: i64,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "INSERT INTO acs_users(person_id, tenant_id, granted_at, updated_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(person_id)
        .bind(tenant_id)
        .bind(now)
        .bind(now)
        .execute(self.pool()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes door access; returns the row that was removed.
    /// The face files' rows go in the same transaction: their blobs are
    /// the caller's to delete (a crash first leaves orphan blobs, which the
    /// start-up sweep removes, never rows without a person).
    pub async fn acs_revoke(&self, person_id: i64) -> anyhow::Result<Option<AcsRow>> {
        let mut tx = self.pool()?.begin().await?;
        let row: Option<AcsRow> =
            sqlx::query_as("DELETE FROM acs_users WHERE person_id = $1 RETURNING *")
                .bind(person_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(r) = &row {
            delete_files_in(&mut tx, r.face_files()).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// A person's door-access row, if they have door access.
    pub async fn acs_user(&self, person_id: i64) -> anyhow::Result<Option<AcsRow>> {
        self.row_by("SELECT * FROM acs_users WHERE person_id = $1", person_id)
            .await
    }

    /// A page of the tenant's door-access users, in person order, after
    /// `after` (a person id).
    pub async fn acs_users_page(
        &self,
        tenant_id: i64,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(Person, AcsRow)>> {
        let rows = sqlx::query(
            "SELECT p.*, a.person_id AS a_person_id, a.card AS a_card,
                    a.face_file_id AS a_face_file_id, a.crop_file_id AS a_crop_file_id,
                    a.face_box AS a_face_box
             FROM acs_users a JOIN people p ON p.id = a.person_id
             WHERE a.tenant_id = $1 AND a.person_id > $2 ORDER BY a.person_id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool()?)
        .await?;
        rows.iter()
            .map(|r| Ok((Person::from_row(r)?, acs_from_row(r, "a_")?)))
            .collect()
    }

    /// Sets (or, with `None`, clears) a door-access user's card number.
    pub async fn acs_set_card(
        &self,
        person_id: i64,
        card: Option<i64>,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE acs_users SET card = $1, updated_at = $2 WHERE person_id = $3")
            .bind(card)
            .bind(now)
            .bind(person_id)
            .execute(self.pool()?)
            .await?;
        Ok(())
    }

    /// Records a newly enrolled face and drops the previous face's file
    /// rows with it; returns the previous row so its blobs can be deleted.
    pub async fn acs_set_face(
        &self,
        person_id: i64,
        face_file_id: &str,
        crop_file_id: &str,
        face_box: &str,
        now: i64,
        audit: Option<&AuditEvent>,
    ) -> anyhow::Result<Option<AcsRow>> {
        let mut tx = self.pool()?.begin().await?;
        // Write first (see the module comment in mod.rs): reading the old row before
        // taking the write lock lets a concurrent enrolment make this
        // transaction fail with SQLITE_BUSY instead of waiting. The tenant
        // row first, since a change is recorded.
        super::people::lock_tenant_of(&mut tx, person_id).await?;
        sqlx::query("UPDATE acs_users SET updated_at = updated_at WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        let old: Option<AcsRow> = sqlx::query_as("SELECT * FROM acs_users WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE acs_users SET face_file_id = $1, crop_file_id = $2, face_box = $3, updated_at = $4
             WHERE person_id = $5",
        )
        .bind(face_file_id)
        .bind(crop_file_id)
        .bind(face_box)
        .bind(now)
        .bind(person_id)
        .execute(&mut *tx)
        .await?;
        if let Some(o) = &old {
            delete_files_in(&mut tx, o.face_files()).await?;
        }
        // The photos are theirs, for erasure.
        sqlx::query("UPDATE files SET person_id = $1 WHERE file_id IN ($2, $3)")
            .bind(person_id)
            .bind(face_file_id)
            .bind(crop_file_id)
            .execute(&mut *tx)
            .await?;
        super::people::photo_changed_in(&mut tx, person_id, now).await?;
        audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(old)
    }
}
