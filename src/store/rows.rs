//! Row mappers: the one place that knows which column fills which field
//! of the model's types, where that takes more than a name (the types
//! whose fields are their columns derive `sqlx::FromRow` in the model).
//! A column of an unexpected type, or a stored name no enum knows, is a
//! decode error of the read, never a panic.

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::AcsRow;
use crate::image::ImageFormat;
use crate::model::{
    App, DeviceRow, Enrolment, FileKind, FileRecord, PendingDevice, Person, Protocol, UserFlow,
    UserType,
};

/// A stored name that no variant of the field's type knows.
fn unknown(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("unknown value {value:?}").into(),
    }
}

/// A JSON text column, empty when it does not parse.
fn json_or_default<T: serde::de::DeserializeOwned + Default>(
    r: &AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    Ok(serde_json::from_str(r.try_get(column)?).unwrap_or_default())
}

impl FromRow<'_, AnyRow> for App {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(App {
            app_id: r.try_get("app_id")?,
            tenant_id: r.try_get("tenant_id")?,
            secret_hash: r.try_get("secret_hash")?,
            scopes: (r.try_get::<&str, _>("scopes")?)
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            disabled: r.try_get::<i64, _>("disabled")? != 0,
            created_at: r.try_get("created_at")?,
        })
    }
}

impl FromRow<'_, AnyRow> for AcsRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        acs_from_row(r, "")
    }
}

/// A door-access user's row from columns named `{prefix}person_id` and so
/// on: a join with `people` renames them, since the tables share names.
pub(super) fn acs_from_row(r: &AnyRow, prefix: &str) -> Result<AcsRow, sqlx::Error> {
    let col = |name: &str| format!("{prefix}{name}");
    Ok(AcsRow {
        person_id: r.try_get(col("person_id").as_str())?,
        card: r.try_get(col("card").as_str())?,
        face_file_id: r.try_get(col("face_file_id").as_str())?,
        crop_file_id: r.try_get(col("crop_file_id").as_str())?,
        face_box: r.try_get(col("face_box").as_str())?,
    })
}

/// A file's record, with its owner's user id in `owner`, and its sealed
/// name apart (`file_name` is left empty).
pub(super) struct SealedFile(pub FileRecord, pub Vec<u8>);

impl FromRow<'_, AnyRow> for SealedFile {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        let kind: &str = r.try_get("kind")?;
        let format: &str = r.try_get("format")?;
        let record = FileRecord {
            file_id: r.try_get("file_id")?,
            tenant_id: r.try_get("tenant_id")?,
            kind: FileKind::parse(kind).ok_or_else(|| unknown("kind", kind))?,
            file_name: String::new(),
            format: ImageFormat::parse(format).ok_or_else(|| unknown("format", format))?,
            width: r.try_get("width")?,
            height: r.try_get("height")?,
            size: r.try_get("size")?,
            sha256: r.try_get("sha256")?,
            key_id: r.try_get("key_id")?,
            created_at: r.try_get("created_at")?,
            owner: r.try_get("owner")?,
        };
        Ok(SealedFile(record, r.try_get("file_name")?))
    }
}

impl FromRow<'_, AnyRow> for Person {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Person {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            user_id: r.try_get("user_id")?,
            union_id: r.try_get("union_id")?,
            name: r.try_get("name")?,
            employee_no: r.try_get("employee_no")?,
            extra: json_or_default(r, "extra")?,
            user_type: UserType::from_i64(r.try_get("user_type")?).unwrap_or_default(),
            fa_ver: r.try_get("fa_ver")?,
            fp_ver: r.try_get("fp_ver")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

impl FromRow<'_, AnyRow> for DeviceRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(DeviceRow {
            sn: r.try_get("sn")?,
            tenant_id: r.try_get("tenant_id")?,
            sealed_secret_no: r.try_get("secret_no")?,
            sealed_secret: r.try_get("secret")?,
            bound: r.try_get::<i64, _>("bound")? != 0,
            firmware_version: r.try_get("firmware_version")?,
            fa_algorithms: json_or_default(r, "fa_algorithms")?,
            fp_algorithms: json_or_default(r, "fp_algorithms")?,
            seen_version: r.try_get("seen_version")?,
            seen_visitor_version: r.try_get("seen_visitor_version")?,
            last_seen: r.try_get("last_seen")?,
            online_until: r.try_get("online_until")?,
            register_ts: r.try_get("register_ts")?,
            created_at: r.try_get("created_at")?,
            book: super::books::parse_key(r.try_get("access_rules")?)
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            protocol: protocol(r.try_get("protocol")?)?,
            utc_offset_min: match r.try_get("utc_offset_min")? {
                m @ -720..=840 => m,
                m => return Err(unknown("utc_offset_min", &m.to_string())),
            },
            // Strict: an unreadable list must not read as "any address".
            allow_from: serde_json::from_str(r.try_get("allow_from")?)
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            push_info: r
                .try_get::<Option<&str>, _>("push_info")?
                .and_then(|j| serde_json::from_str(j).ok()),
            zk_queue: r
                .try_get::<Option<&str>, _>("zk_queue")?
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
            zk_queue_rev: r.try_get("zk_queue_rev")?,
            zk_next_id: r.try_get("zk_next_id")?,
        })
    }
}

fn protocol(name: &str) -> Result<Protocol, sqlx::Error> {
    Protocol::parse(name).ok_or_else(|| unknown("protocol", name))
}

impl FromRow<'_, AnyRow> for PendingDevice {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(PendingDevice {
            sn: r.try_get("sn")?,
            protocol: protocol(r.try_get("protocol")?)?,
            address: r.try_get("address")?,
            first_seen: r.try_get("first_seen")?,
            last_seen: r.try_get("last_seen")?,
        })
    }
}

impl FromRow<'_, AnyRow> for UserFlow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(UserFlow {
            record_id: r.try_get("record_id")?,
            tenant_id: r.try_get("tenant_id")?,
            person_id: r.try_get("person_id")?,
            check_time: r.try_get("check_time")?,
            creator_id: r.try_get("creator_id")?,
            location_name: r.try_get("location_name")?,
            comment: r.try_get("comment")?,
            idempotent_id: r.try_get("idempotent_id")?,
            sn: r.try_get("sn")?,
            pass_type: r.try_get("pass_type")?,
            pass_method: r.try_get("pass_method")?,
            photo_file_id: r.try_get("photo_file_id")?,
            extras: json_or_default(r, "extras")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

impl FromRow<'_, AnyRow> for Enrolment {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Enrolment {
            oper_id: r.try_get("oper_id")?,
            tenant_id: r.try_get("tenant_id")?,
            person_id: r.try_get("person_id")?,
            sn: r.try_get("sn")?,
            kind: r.try_get("kind")?,
            file_ids: json_or_default(r, "file_ids")?,
            status: r.try_get("status")?,
            errcode: r.try_get("errcode")?,
            errmsg: r.try_get("errmsg")?,
            created_at: r.try_get("created_at")?,
            finished_at: r.try_get("finished_at")?,
        })
    }
}
