"""Drives facehub's access rules (acs rule_external) and visitors with the
official Feishu Python SDK (lark-oapi), unchanged: a rule is created for a
terminal with weekday windows, read back whole and by terminal, replaced,
given a visitor (created and deleted), bound with device_bind and deleted;
a rule or visitor that is not one is refused in the platform's envelope. The SDK sends these calls with a user access token
and types their ids as integers.

Run by tests/it/sdk_python.rs, which then checks what the terminal holds.
"""

import json
import os

import lark_oapi as lark
import lark_oapi.api.acs.v1 as acs

from sdk_common import APP_ID, APP_SECRET, BASE, check

USER_TOKEN = os.environ["FACEHUB_USER_TOKEN"]
DEVICE_ID = int(os.environ["FACEHUB_DEVICE_ID"])
SN = os.environ["FACEHUB_SN"]
OPT = lark.RequestOption.builder().user_access_token(USER_TOKEN).build()


def rule(users, weekdays, window, visitors=()):
    opening = (
        acs.OpeningTimeExternal.builder()
        .weekdays(weekdays)
        .day_times([acs.OpeningTimePeriodExternal.builder().start_hhmm(window[0]).end_hhmm(window[1]).build()])
        .valid_day(acs.OpeningTimeValidDayExternal.builder().start_day(1_700_000_000).end_day(4_100_000_000).build())
        .build()
    )
    return (
        acs.Rule.builder()
        .name("front door")
        .users([acs.UserExternal.builder().user_type(1).user_id(u).build() for u in users])
        .visitors([acs.UserExternal.builder().user_type(2).user_id(v).build() for v in visitors])
        .devices([acs.DeviceExternal.builder().id(DEVICE_ID).build()])
        .remind_face(True)
        .opening_time(opening)
        .build()
    )


def put(c, body_rule, rule_id=None):
    b = acs.CreateRuleExternalRequest.builder().user_id_type("user_id")
    if rule_id is not None:
        b = b.rule_id(rule_id)
    req = b.request_body(acs.CreateRuleExternalRequestBody.builder().rule(body_rule).build()).build()
    return c.acs.v1.rule_external.create(req, OPT)


def get(c, device_id=None):
    b = acs.GetRuleExternalRequest.builder().user_id_type("user_id")
    if device_id is not None:
        b = b.device_id(device_id)
    return c.acs.v1.rule_external.get(b.build(), OPT)


def main():
    # The SDK sends a user token only to a client that sets tokens itself.
    c = (
        lark.Client.builder()
        .app_id(APP_ID)
        .app_secret(APP_SECRET)
        .domain(BASE)
        .enable_set_token(True)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )

    made = put(c, rule(["ann"], [1, 2, 3, 4, 5], (830, 1800)))
    check(made.success() and made.data.rule_id, "rule_external.create", made)
    rule_id = made.data.rule_id
    check(str(rule_id).isdigit(), f"the rule's id is digits: {rule_id!r}")

    listed = get(c)
    check(listed.success() and len(listed.data.rules) == 1, "rule_external.get lists the rule", listed)
    wire = json.loads(listed.raw.content)["data"]["rules"][0]
    want = {
        "id": str(rule_id),
        "name": "front door",
        "devices": [{"id": str(DEVICE_ID), "name": SN}],
        "user_count": "1",
        "users": [{"user_id": "ann", "user_name": "Ann", "user_type": 1}],
        "visitor_count": "0",
        "visitors": [],
        "remind_face": True,
        "opening_time": {
            "valid_day": {"start_day": 1_700_000_000, "end_day": 4_100_000_000},
            "weekdays": [1, 2, 3, 4, 5],
            "day_times": [{"start_hhmm": 830, "end_hhmm": 1800}],
        },
        "is_temp": False,
    }
    check(wire == want, "rule_external.get on the wire: every field, and no other" + ("" if wire == want else f": {wire}"))
    r = listed.data.rules[0]
    check(
        r.opening_time.day_times[0].start_hhmm == 830 and r.devices[0].name == SN and r.users[0].user_id == "ann",
        "the SDK reads the rule into its model",
    )

    mine = get(c, str(DEVICE_ID))
    check(mine.success() and [str(x.id) for x in mine.data.rules] == [str(rule_id)], "rule_external.get by device_id", mine)

    again = put(c, rule(["ann", "bob"], [6, 7], (900, 1200)), rule_id=int(rule_id))
    check(again.success() and str(again.data.rule_id) == str(rule_id), "rule_external.create with rule_id replaces it", again)
    listed = get(c)
    r = listed.data.rules[0]
    check(
        len(listed.data.rules) == 1 and sorted(u.user_id for u in r.users) == ["ann", "bob"] and r.opening_time.weekdays == [6, 7],
        "the replaced rule: both people, the weekend",
        listed,
    )

    # A visitor, named by a rule, listed with it, then deleted.
    made_visitor = c.acs.v1.visitor.create(
        acs.CreateVisitorRequest.builder()
        .user_id_type("user_id")
        .request_body(
            acs.CreateVisitorRequestBody.builder()
            .user(acs.UserExternal.builder().user_type(2).user_name("Vic").phone_num("13800000000").build())
            .build()
        )
        .build(),
        OPT,
    )
    check(made_visitor.success() and str(made_visitor.data.visitor_id).isdigit(), "visitor.create", made_visitor)
    visitor_id = made_visitor.data.visitor_id
    with_visitor = put(c, rule(["ann", "bob"], [6, 7], (900, 1200), visitors=[int(visitor_id)]), rule_id=int(rule_id))
    check(with_visitor.success(), "a rule naming the visitor (its id as an integer)", with_visitor)
    r = get(c).data.rules[0]
    check(
        r.visitor_count == "1" and [str(v.user_id) for v in r.visitors] == [str(visitor_id)] and r.visitors[0].user_name == "Vic",
        "the rule lists the visitor",
    )
    gone_visitor = c.acs.v1.visitor.delete(
        acs.DeleteVisitorRequest.builder().visitor_id(int(visitor_id)).user_id_type("user_id").build(), OPT
    )
    check(gone_visitor.success(), "visitor.delete", gone_visitor)
    r = get(c).data.rules[0]
    check(r.visitor_count == "0" and not r.visitors, "a deleted visitor leaves the rule")
    missing_visitor = c.acs.v1.visitor.delete(acs.DeleteVisitorRequest.builder().visitor_id(42).build(), OPT)
    check(missing_visitor.code == 99992402, "deleting a visitor that is not one: 99992402", missing_visitor)

    bind = c.acs.v1.rule_external.device_bind(
        acs.DeviceBindRuleExternalRequest.builder()
        .request_body(acs.DeviceBindRuleExternalRequestBody.builder().device_id(DEVICE_ID).rule_ids([str(rule_id)]).build())
        .build(),
        OPT,
    )
    check(bind.success(), "rule_external.device_bind", bind)

    missing = c.acs.v1.rule_external.delete(
        acs.DeleteRuleExternalRequest.builder().rule_id(42).build(), OPT
    )
    check(not missing.success() and missing.code == 99992402, "deleting a rule that is not one: 99992402", missing)

    # The rule stays for the test to check the terminal; another one is
    # created and deleted.
    other = put(c, rule(["bob"], [], (0, 2359)))
    check(other.success(), "a second rule", other)
    gone = c.acs.v1.rule_external.delete(
        acs.DeleteRuleExternalRequest.builder().rule_id(int(other.data.rule_id)).build(), OPT
    )
    check(gone.success(), "rule_external.delete", gone)
    left = get(c)
    check([str(x.id) for x in left.data.rules] == [str(rule_id)], "the deleted rule is gone", left)

    print("lark-oapi rule_external conformance: all checks passed")


if __name__ == "__main__":
    main()
