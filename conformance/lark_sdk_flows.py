"""Drives facehub's punch records (attendance user_flows) with the official
Feishu Python SDK (lark-oapi), unchanged: a terminal's punch is read back
with query and get; records from another system are created (twice, with
one idempotent_id: stored once), queried and deleted.

Run by tests/it/sdk_python.rs with a person who punched at a simulated
terminal, passed in the environment.
"""

import os

import lark_oapi as lark
import lark_oapi.api.attendance.v1 as att

from sdk_common import APP_ID, APP_SECRET, BASE, check

USER_ID = os.environ["FACEHUB_USER_ID"]
DEVICE_ID = os.environ["FACEHUB_DEVICE_ID"]
SN = os.environ["FACEHUB_SN"]
PUNCH_TIME = os.environ["FACEHUB_PUNCH_TIME"]


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

    print("lark-oapi user_flows conformance: all checks passed")


if __name__ == "__main__":
    main()
