"""Drives facehub's door-access (ACS) endpoints with the official Feishu
Python SDK (lark-oapi), unchanged: list/get/patch users, upload a face
(sync multipart: files, file_type, file_name) and read it back cropped and
original; list the terminals.

Run by tests/it/sdk_python.rs with an ACS app, people in the directory and
scikit-image photographs, passed in the environment.
"""

import os

import lark_oapi as lark
import lark_oapi.api.acs.v1 as acs

from sdk_common import APP_ID, APP_SECRET, BASE, check

FACE = os.environ["FACEHUB_FACE"]
NO_FACE = os.environ["FACEHUB_NO_FACE"]
DEVICE_SN = os.environ["FACEHUB_DEVICE_SN"]


def update(c, user_id, path, file_type="png", id_type="user_id"):
    with open(path, "rb") as f:
        req = (
            acs.UpdateUserFaceRequest.builder()
            .user_id(user_id)
            .user_id_type(id_type)
            .request_body(
                acs.File.builder().files(f).file_type(file_type).file_name(os.path.basename(path)).build()
            )
            .build()
        )
        return c.acs.v1.user_face.update(req)


def get_face(c, user_id, cropped, id_type="user_id"):
    req = (
        acs.GetUserFaceRequest.builder()
        .user_id(user_id)
        .user_id_type(id_type)
        .is_cropped(cropped)
        .build()
    )
    return c.acs.v1.user_face.get(req)


def main():
    c = (
        lark.Client.builder()
        .app_id(APP_ID)
        .app_secret(APP_SECRET)
        .domain(BASE)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )
    ls = c.acs.v1.user.list(acs.ListUserRequest.builder().page_size(10).user_id_type("user_id").build())
    check(ls.success(), "user.list", ls)
    check([u.user_id for u in ls.data.items] == ["u1", "u2"], "the directory lists its two users")
    check(ls.data.has_more is False, "has_more is false")
    check(ls.data.items[0].feature.face_uploaded is False, "no face uploaded yet")

    p = c.acs.v1.user.patch(
        acs.PatchUserRequest.builder()
        .user_id("u2")
        .user_id_type("user_id")
        .request_body(acs.User.builder().feature(acs.Feature.builder().card(424242).build()).build())
        .build()
    )
    check(p.success(), "user.patch sets a card", p)
    g = c.acs.v1.user.get(acs.GetUserRequest.builder().user_id("u2").user_id_type("user_id").build())
    check(g.success() and g.data.user.feature.card == 424242, "user.get shows the card", g)

    up = update(c, "u1", FACE)
    check(up.success(), "user_face.update with a portrait", up)
    crop = get_face(c, "u1", True)
    check(crop.success(), "user_face.get cropped", crop)
    data = crop.file.read()
    check(data[:3] == b"\xff\xd8\xff", "the crop is a JPEG")
    orig = get_face(c, "u1", False)
    check(orig.success() and orig.file.read() == open(FACE, "rb").read(), "the original is byte-identical", orig)
    g = c.acs.v1.user.get(acs.GetUserRequest.builder().user_id("u1").user_id_type("user_id").build())
    check(g.data.user.feature.face_uploaded is True, "face_uploaded is true")

    bad = update(c, "u1", NO_FACE)
    check(not bad.success() and bad.code == 1490108, "a photo without a face gives 1490108", bad)
    missing = update(c, "u3", FACE)
    check(not missing.success() and missing.code == 1490101, "a user outside the directory gives 1490101", missing)
    none = get_face(c, "u3", True)
    check(not none.success() and none.code == 1490101 and none.file is None, "no face file for an unknown user", none)

    devices = c.acs.v1.device.list(acs.ListDeviceRequest.builder().build())
    check(devices.success() and len(devices.data.items) == 1, "device.list lists the terminal", devices)
    d = devices.data.items[0]
    check(d.device_sn == DEVICE_SN and d.device_name == DEVICE_SN, "the terminal by its sn")
    check(d.device_id.isdigit() and 0 < int(d.device_id) < 2**63, "device_id is a 63-bit number")
    p = d.property
    check(
        p.online_status == 0 and p.current_device_face_count == 0 and p.is_clock_in is True
        and p.version == "" and p.device_name == DEVICE_SN,
        "a terminal that never connected: offline, no faces, no firmware version",
    )

    print("lark-oapi acs conformance: all checks passed")


if __name__ == "__main__":
    main()
