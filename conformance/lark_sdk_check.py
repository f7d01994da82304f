"""Drives facehub with the official Feishu Python SDK (lark-oapi), unchanged.

Run by tests/it/sdk_python.rs, which starts facehub and passes the base URL,
app credentials, a person and a photo in the environment. Exits non-zero
on the first mismatch.
"""

import asyncio
import os

import lark_oapi as lark
from lark_oapi.api.attendance.v1 import (
    DownloadFileRequest,
    ModifyUserSettingRequest,
    ModifyUserSettingRequestBody,
    QueryUserSettingRequest,
    QueryUserSettingRequestBody,
    UploadFileRequest,
    UploadFileRequestBody,
    UserSetting,
)

from sdk_common import APP_ID, APP_SECRET, BASE, check

USER_ID = os.environ["FACEHUB_USER_ID"]
EMPLOYEE_NO = os.environ["FACEHUB_EMPLOYEE_NO"]
PHOTO = os.environ["FACEHUB_PHOTO"]
JPEG = os.environ["FACEHUB_JPEG"]


def client(secret=APP_SECRET):
    return (
        lark.Client.builder()
        .app_id(APP_ID)
        .app_secret(secret)
        .domain(BASE)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )


def upload(c, name, path):
    with open(path, "rb") as f:
        req = (
            UploadFileRequest.builder()
            .file_name(name)
            .request_body(UploadFileRequestBody.builder().file(f).build())
            .build()
        )
        return c.attendance.v1.file.upload(req)


def modify(c, employee_type, user_id, face_key, when=None):
    setting = UserSetting.builder().user_id(user_id).face_key(face_key)
    if when is not None:
        setting = setting.face_key_update_time(when)
    req = (
        ModifyUserSettingRequest.builder()
        .employee_type(employee_type)
        .request_body(
            ModifyUserSettingRequestBody.builder().user_setting(setting.build()).build()
        )
        .build()
    )
    return c.attendance.v1.user_setting.modify(req)


def query(c, employee_type, ids):
    req = (
        QueryUserSettingRequest.builder()
        .employee_type(employee_type)
        .request_body(QueryUserSettingRequestBody.builder().user_ids(ids).build())
        .build()
    )
    return c.attendance.v1.user_setting.query(req)


def main():
    # A wrong secret first: the SDK caches tokens per app_id for the process,
    # so this must run before any successful token fetch.
    wrong = client("definitely-wrong")
    try:
        r = upload(wrong, "a.png", PHOTO)
        check(not r.success(), "wrong secret is refused", r)
    except Exception as e:  # lark-oapi raises when the token call fails
        check("10015" in str(e) or "wrong app secret" in str(e), f"wrong secret is refused ({e})")

    c = client()
    photo = open(PHOTO, "rb").read()
    jpeg = open(JPEG, "rb").read()

    # Upload (sync path: part without filename or Content-Type).
    up = upload(c, "人脸照片.png", PHOTO)
    check(up.success(), "upload succeeds", up)
    file_id = up.data.file.file_id
    check(isinstance(file_id, str) and len(file_id) == 32, "file_id is 32 hex")
    check(bool(up.get_log_id()), "upload carries a log id")

    # Download: bytes equal, name from Content-Disposition (filename*).
    dl = c.attendance.v1.file.download(DownloadFileRequest.builder().file_id(file_id).build())
    check(dl.success(), "download succeeds", dl)
    check(dl.file.read() == photo, "downloaded bytes equal the upload")
    check(dl.file_name == "人脸照片.png", f"download file name is kept ({dl.file_name!r})")

    # Async upload path (httpx: filename and part Content-Type present).
    async def aupload():
        with open(JPEG, "rb") as f:
            req = (
                UploadFileRequest.builder()
                .file_name("face.jpg")
                .request_body(UploadFileRequestBody.builder().file(f).build())
                .build()
            )
            return await c.attendance.v1.file.aupload(req)

    aup = asyncio.run(aupload())
    check(aup.success(), "async upload succeeds", aup)
    adl = c.attendance.v1.file.download(
        DownloadFileRequest.builder().file_id(aup.data.file.file_id).build()
    )
    check(adl.file.read() == jpeg, "async-uploaded JPEG downloads byte-identical")

    # Bind and read back.
    m = modify(c, "employee_id", USER_ID, file_id, "1625681917")
    check(m.success(), "user_settings.modify succeeds", m)
    check(m.data.user_setting.face_key == file_id, "modify echoes face_key")
    check(m.data.user_setting.face_key_update_time == "1625681917", "modify echoes the time")
    q = query(c, "employee_id", [USER_ID])
    check(q.success(), "user_settings.query succeeds", q)
    check(len(q.data.user_settings) == 1, "query returns the person")
    s = q.data.user_settings[0]
    check(
        (s.user_id, s.face_key, s.face_key_update_time) == (USER_ID, file_id, "1625681917"),
        "query returns the bound face",
    )
    m2 = modify(c, "employee_no", EMPLOYEE_NO, aup.data.file.file_id)
    check(m2.success(), "modify by employee_no succeeds", m2)
    q2 = query(c, "employee_no", [EMPLOYEE_NO])
    check(q2.data.user_settings[0].face_key == aup.data.file.file_id, "query by employee_no")

    # Errors reach the SDK caller as codes, never as a "file".
    bad = c.attendance.v1.file.download(DownloadFileRequest.builder().file_id("0" * 32).build())
    check(not bad.success() and bad.code == 1220001, "unknown file_id gives 1220001", bad)
    check(bad.file is None, "an error is not saved as a file")
    text = os.path.join(os.path.dirname(PHOTO), "not-an-image.png")
    with open(text, "wb") as f:
        f.write(b"this is not a picture at all" * 10)
    bu = upload(c, "x.png", text)
    check(not bu.success() and bu.code == 1220001, "non-image upload gives 1220001", bu)
    mu = modify(c, "employee_id", "ghost-user", file_id)
    check(not mu.success() and mu.code == 1220004, "unknown user gives 1220004", mu)

    print("lark-oapi conformance: all checks passed")


if __name__ == "__main__":
    main()
