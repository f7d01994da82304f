"""Drives facehub's punch records (attendance user_flows) and door records
(acs access_records) with the official Feishu Python SDK (lark-oapi),
unchanged: a terminal's punch is read back with query and get; records from
another system are created (twice, with one idempotent_id: stored once),
queried and deleted; the terminal's door passes are listed (whole and page
by page) and the face pass's capture photo is downloaded byte for byte.

Run by tests/it/sdk_python.rs with a person who punched at a simulated
terminal (by face with a capture photo, and an hour earlier by QR code),
passed in the environment.
"""

import json
import os

import lark_oapi as lark
import lark_oapi.api.acs.v1 as acs
import lark_oapi.api.attendance.v1 as att

from sdk_common import APP_ID, APP_SECRET, BASE, check

USER_ID = os.environ["FACEHUB_USER_ID"]
DEVICE_ID = os.environ["FACEHUB_DEVICE_ID"]
SN = os.environ["FACEHUB_SN"]
PUNCH_TIME = os.environ["FACEHUB_PUNCH_TIME"]
QR_PUNCH_TIME = os.environ["FACEHUB_QR_PUNCH_TIME"]
with open(os.environ["FACEHUB_CAPTURE_PHOTO"], "rb") as f:
    CAPTURE_PHOTO = f.read()


def query(c, start, end):
    req = (
        att.QueryUserFlowRequest.builder()
        .employee_type("employee_id")
        .include_terminated_user(False)
        .request_body(
            att.QueryUserFlowRequestBody.builder()
            .user_ids([USER_ID])
            .check_time_from(str(start))
            .check_time_to(str(end))
            .build()
        )
        .build()
    )
    return c.attendance.v1.user_flow.query(req)


def main():
    c = lark.Client.builder().app_id(APP_ID).app_secret(APP_SECRET).domain(BASE).build()
    t = int(PUNCH_TIME)

    q = query(c, t - 60, t + 60)
    check(q.success() and len(q.data.user_flow_results) == 1, "user_flow.query finds the terminal's punch", q)
    punch = q.data.user_flow_results[0]
    check(punch.user_id == USER_ID and punch.check_time == PUNCH_TIME, "the punch: who and when")
    check(punch.device_id == DEVICE_ID and punch.location_name == SN, "the punch: at which terminal")
    check(punch.type == 5 and punch.creator_id == USER_ID, "the punch: an attendance machine's, by the person")

    g = c.attendance.v1.user_flow.get(
        att.GetUserFlowRequest.builder().user_flow_id(punch.record_id).employee_type("employee_id").build()
    )
    check(g.success() and g.data.record_id == punch.record_id and g.data.check_time == PUNCH_TIME, "user_flow.get", g)

    flow = (
        att.UserFlow.builder()
        .user_id(USER_ID)
        .creator_id("hr-system")
        .location_name("Gate 3")
        .check_time(str(t + 3600))
        .comment("imported by the SDK")
        .idempotent_id("sdk-1")
        .is_wifi(True)
        .ssid("office")
        .type(7)
        .build()
    )
    create = lambda: c.attendance.v1.user_flow.batch_create(  # noqa: E731
        att.BatchCreateUserFlowRequest.builder()
        .employee_type("employee_id")
        .request_body(att.BatchCreateUserFlowRequestBody.builder().flow_records([flow]).build())
        .build()
    )
    first = create()
    check(first.success() and len(first.data.flow_records) == 1, "user_flow.batch_create", first)
    made = first.data.flow_records[0]
    check(made.record_id and made.comment == "imported by the SDK" and made.is_wifi is True, "the record as stored")
    second = create()
    check(second.success() and second.data.flow_records[0].record_id == made.record_id, "the same idempotent_id stores nothing new", second)

    q = query(c, t - 60, t + 7200)
    ids = [r.record_id for r in q.data.user_flow_results]
    check(ids == [punch.record_id, made.record_id], "query: the punch and the record, by time", q)

    d = c.attendance.v1.user_flow.batch_del(
        att.BatchDelUserFlowRequest.builder()
        .request_body(att.BatchDelUserFlowRequestBody.builder().record_ids([made.record_id, "42"]).build())
        .build()
    )
    check(
        d.success() and d.data.success_record_ids == [made.record_id] and d.data.fail_record_ids == ["42"],
        "user_flow.batch_del",
        d,
    )
    q = query(c, t - 60, t + 7200)
    check([r.record_id for r in q.data.user_flow_results] == [punch.record_id], "the deleted record is gone", q)

    access_records(c, t)

    print("lark-oapi user_flows and access_records conformance: all checks passed")


def list_records(c, start, end, page_size=None, page_token=None, user_id_type="user_id"):
    b = acs.ListAccessRecordRequest.builder().from_(start).to(end)
    if page_size is not None:
        b = b.page_size(page_size)
    if page_token is not None:
        b = b.page_token(page_token)
    if user_id_type is not None:
        b = b.user_id_type(user_id_type)
    return c.acs.v1.access_record.list(b.build())


def access_photo(c, record_id):
    req = acs.GetAccessRecordAccessPhotoRequest.builder().access_record_id(record_id).build()
    return c.acs.v1.access_record_access_photo.get(req)


def access_records(c, t):
    qr = int(QR_PUNCH_TIME)
    start, end = qr - 60, t + 60

    r = list_records(c, start, end)
    check(r.success() and r.data is not None and len(r.data.items or []) == 2, "access_record.list finds both passes", r)
    check(r.data.has_more is False and r.data.page_token is None, "access_record.list: one page, no page_token", r)
    face, qr_pass = r.data.items
    check([face.access_time, qr_pass.access_time] == [PUNCH_TIME, QR_PUNCH_TIME], "access_record.list: newest first")
    face_id = face.access_record_id
    check(isinstance(face_id, str) and face_id.isdigit(), f"the face pass's access_record_id is digits: {face_id!r}")
    check(
        qr_pass.access_record_id != face_id and str(qr_pass.access_record_id).isdigit(),
        "the QR pass has an access_record_id of its own",
    )
    check(face.access_type == "FA", f"the face pass: access_type FA, got {face.access_type!r}")
    check(face.device_id == DEVICE_ID, f"the face pass: device_id {DEVICE_ID}, got {face.device_id!r}")
    check(face.access_time == PUNCH_TIME, f"the face pass: access_time {PUNCH_TIME}, got {face.access_time!r}")
    check(face.is_clock_in is True and face.is_door_open is True, "the face pass: is_clock_in and is_door_open")
    check(face.user_id == USER_ID, f"the face pass: user_id {USER_ID} (user_id_type user_id), got {face.user_id!r}")
    check(face.access_data is None, "the face pass: no access_data")
    check(qr_pass.access_type == "QRCode", f"the QR pass: access_type QRCode, got {qr_pass.access_type!r}")
    check(
        qr_pass.device_id == DEVICE_ID and qr_pass.user_id == USER_ID and qr_pass.is_clock_in is True
        and qr_pass.is_door_open is True,
        "the QR pass: terminal, person, clock-in and door open",
    )
    # The wire form, key for key: nothing the SDK's model would drop.
    wire = json.loads(r.raw.content)["data"]
    expected = [
        {
            "access_record_id": face_id,
            "access_time": PUNCH_TIME,
            "access_type": "FA",
            "device_id": DEVICE_ID,
            "is_clock_in": True,
            "is_door_open": True,
            "user_id": USER_ID,
        },
        {
            "access_record_id": qr_pass.access_record_id,
            "access_time": QR_PUNCH_TIME,
            "access_type": "QRCode",
            "device_id": DEVICE_ID,
            "is_clock_in": True,
            "is_door_open": True,
            "user_id": USER_ID,
        },
    ]
    same = wire == {"has_more": False, "items": expected}
    check(same, "access_record.list on the wire: every field, and no other" + ("" if same else f": {wire}"))

    # Page by page: the same records in the same order.
    first = list_records(c, start, end, page_size=1)
    check(
        first.success() and [i.access_record_id for i in first.data.items] == [face_id]
        and first.data.has_more is True and bool(first.data.page_token),
        "access_record.list page_size=1: the newest, has_more and a page_token",
        first,
    )
    second = list_records(c, start, end, page_size=1, page_token=first.data.page_token)
    check(
        second.success() and [i.access_record_id for i in second.data.items] == [qr_pass.access_record_id]
        and second.data.has_more is False and second.data.page_token is None,
        "access_record.list page 2: the older pass, no more",
        second,
    )
    # A window with the face pass only: one record, no more.
    one = list_records(c, t - 60, t + 60, page_size=1)
    check(
        one.success() and [i.access_record_id for i in one.data.items] == [face_id] and one.data.has_more is False
        and one.data.page_token is None,
        "access_record.list of a single record: has_more False",
        one,
    )
    # Without user_id_type: the person's open_id.
    d = list_records(c, t - 60, t + 60, user_id_type=None)
    check(
        d.success() and len(d.data.items) == 1 and d.data.items[0].user_id.startswith("ou_"),
        "access_record.list names the person by open_id by default",
        d,
    )

    p = access_photo(c, face_id)
    check(p.success() and p.file is not None, "access_record_access_photo.get", p)
    got = p.file.read()
    check(got == CAPTURE_PHOTO, f"the capture photo, byte for byte ({len(got)} bytes, uploaded {len(CAPTURE_PHOTO)})")
    kind = p.raw.headers.get("Content-Type")
    check(kind == "image/jpeg", f"the capture photo is image/jpeg ({kind!r})")
    n = access_photo(c, qr_pass.access_record_id)
    check(not n.success() and n.code == 99992402, "a pass without a capture photo: 99992402", n)
    check(n.file is None, "a refused photo is not saved as a file")


if __name__ == "__main__":
    main()
