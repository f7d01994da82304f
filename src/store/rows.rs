//! Row mappers: the one place that knows which column fills which field
//! of the model's types.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::AcsRow;
use crate::model::{App, DeviceRow, Enrolment, FileRecord, Person, Tenant, UserType};

pub(super) fn tenant_from_row(r: &AnyRow) -> Tenant {
    Tenant {
        id: r.get("id"),
        name: r.get("name"),
        tenant_key: r.get("tenant_key"),
        created_at: r.get("created_at"),
    }
}

pub(super) fn app_from_row(r: &AnyRow) -> App {
    let scopes: String = r.get("scopes");
    App {
        app_id: r.get("app_id"),
        tenant_id: r.get("tenant_id"),
        secret_hash: r.get("secret_hash"),
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        disabled: r.get::<i64, _>("disabled") != 0,
        created_at: r.get("created_at"),
    }
}

/// A door-access user's row from columns named `{prefix}person_id` and so
/// on: a join with `people` renames them, since the tables share names.
pub(super) fn acs_from_row(r: &AnyRow, prefix: &str) -> AcsRow {
    let col = |name: &str| format!("{prefix}{name}");
    AcsRow {
        person_id: r.get(col("person_id").as_str()),
        card: r.get(col("card").as_str()),
        face_file_id: r.get(col("face_file_id").as_str()),
        crop_file_id: r.get(col("crop_file_id").as_str()),
        face_box: r.get(col("face_box").as_str()),
    }
}

/// A file's record, with its owner's user id in `owner`, and its sealed
/// name apart (`file_name` is left empty).
pub(super) fn file_from_row(r: &AnyRow) -> (FileRecord, Vec<u8>) {
    (
        FileRecord {
            file_id: r.get("file_id"),
            tenant_id: r.get("tenant_id"),
            kind: r.get("kind"),
            file_name: String::new(),
            format: r.get("format"),
            width: r.get("width"),
            height: r.get("height"),
            size: r.get("size"),
            sha256: r.get("sha256"),
            key_id: r.get("key_id"),
            created_at: r.get("created_at"),
            owner: r.get("owner"),
        },
        r.get("file_name"),
    )
}

pub(super) fn person_from_row(r: &AnyRow) -> Person {
    let extra: String = r.get("extra");
    Person {
        id: r.get("id"),
        tenant_id: r.get("tenant_id"),
        user_id: r.get("user_id"),
        union_id: r.get("union_id"),
        name: r.get("name"),
        employee_no: r.get("employee_no"),
        extra: serde_json::from_str(&extra).unwrap_or_default(),
        user_type: UserType::from_i64(r.get("user_type")).unwrap_or_default(),
        fa_ver: r.get("fa_ver"),
        fp_ver: r.get("fp_ver"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

pub(super) fn device_from_row(r: &AnyRow) -> DeviceRow {
    let list = |col: &str| -> Vec<String> {
        let json: String = r.get(col);
        serde_json::from_str(&json).unwrap_or_default()
    };
    DeviceRow {
        sn: r.get("sn"),
        tenant_id: r.get("tenant_id"),
        sealed_secret_no: r.get("secret_no"),
        sealed_secret: r.get("secret"),
        bound: r.get::<i64, _>("bound") != 0,
        firmware_version: r.get("firmware_version"),
        fa_algorithms: list("fa_algorithms"),
        fp_algorithms: list("fp_algorithms"),
        seen_version: r.get("seen_version"),
        last_seen: r.get("last_seen"),
        register_ts: r.get("register_ts"),
        created_at: r.get("created_at"),
    }
}

pub(super) fn enrolment_from_row(r: &AnyRow) -> Enrolment {
    Enrolment {
        oper_id: r.get("oper_id"),
        tenant_id: r.get("tenant_id"),
        person_id: r.get("person_id"),
        sn: r.get("sn"),
        kind: r.get("kind"),
        file_ids: serde_json::from_str(r.get::<&str, _>("file_ids")).unwrap_or_default(),
        status: r.get("status"),
        errcode: r.get("errcode"),
        errmsg: r.get("errmsg"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
    }
}
