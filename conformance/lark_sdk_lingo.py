"""Drives facehub's wiki (lingo) image endpoints with the official Feishu
Python SDK (lark-oapi), unchanged: tenant and user tokens, sync and async
paths, and the error answers the SDK hands its caller.

Run by tests/it/sdk_python.rs, which starts facehub with a wiki app, a person
with a user token, and sample images, passed in the environment.
"""

import asyncio
import io
import os

import lark_oapi as lark
import lark_oapi.api.lingo.v1 as lingo

from sdk_common import APP_ID, APP_SECRET, BASE, check

USER_TOKEN = os.environ["FACEHUB_USER_TOKEN"]
IMAGES = os.environ["FACEHUB_IMAGES"].split(os.pathsep)
BAD = os.environ["FACEHUB_BAD_IMAGE"]
PNG = next(p for p in IMAGES if p.endswith(".png"))


def client(set_token=False):
    b = lark.Client.builder().app_id(APP_ID).app_secret(APP_SECRET).domain(BASE)
    return b.enable_set_token(set_token).log_level(lark.LogLevel.ERROR).build()


def upload_req(name, f):
    return lingo.UploadFileRequest.builder().request_body(
        lingo.File.builder().name(name).file(f).build()
    ).build()


def download_req(token):
    return lingo.DownloadFileRequest.builder().file_token(token).build()


def main():
    c = client()
    # Every format, each uploaded and read back byte-identical.
    for path in IMAGES:
        name = os.path.basename(path)
        data = open(path, "rb").read()
        with open(path, "rb") as f:
            up = c.lingo.v1.file.upload(upload_req(name, f))
        check(up.success(), f"upload {name}", up)
        token = up.data.file_token
        check(token.startswith("box"), f"{name}: file_token {token!r}")
        dl = c.lingo.v1.file.download(download_req(token))
        check(dl.success(), f"download {name}", dl)
        check(dl.file.read() == data, f"{name} downloads byte-identical")
        check(dl.file_name == name, f"{name}: file name from Content-Disposition ({dl.file_name!r})")

    # Async path (httpx multipart: the file part has a filename and type).
    async def flow():
        with open(PNG, "rb") as f:
            up = await c.lingo.v1.file.aupload(upload_req("异步.png", f))
        dl = await c.lingo.v1.file.adownload(download_req(up.data.file_token))
        return up, dl

    check(hasattr(c.lingo.v1.file, "aupload"), "the SDK has an async lingo upload")
    aup, adl = asyncio.run(flow())
    check(aup.success() and adl.success(), "async upload and download", aup)
    check(adl.file.read() == open(PNG, "rb").read(), "async round trip is byte-identical")

    # A user access token, set per request.
    u = client(set_token=True)
    opt = lark.RequestOption.builder().user_access_token(USER_TOKEN).build()
    with open(PNG, "rb") as f:
        up = u.lingo.v1.file.upload(upload_req("mine.png", io.BytesIO(f.read())), opt)
    check(up.success(), "upload with a user access token", up)
    dl = u.lingo.v1.file.download(download_req(up.data.file_token), opt)
    check(dl.success(), "download with a user access token", dl)

    # Errors reach the caller as codes, never as a file.
    with open(BAD, "rb") as f:
        bad = c.lingo.v1.file.upload(upload_req("bad.png", f))
    check(not bad.success() and bad.code == 2250001, "a refused image gives 2250001", bad)
    check("below 320" in bad.msg or "exceeds" in bad.msg, f"the refusal names its rule ({bad.msg})")
    with open(PNG, "rb") as f:
        named = c.lingo.v1.file.upload(upload_req("x" * 101, f))
    check(not named.success() and named.code == 2250001, "a 101-character name gives 2250001", named)
    missing = c.lingo.v1.file.download(download_req("box" + "0" * 32))
    check(not missing.success() and missing.code == 2250001, "unknown file_token gives 2250001", missing)
    check(missing.file is None, "an error is not saved as a file")
    unknown = u.lingo.v1.file.download(
        download_req(up.data.file_token),
        lark.RequestOption.builder().user_access_token("u-" + "0" * 40).build(),
    )
    check(not unknown.success() and unknown.code == 99991668, "unknown user token gives 99991668", unknown)

    print("lark-oapi lingo conformance: all checks passed")


if __name__ == "__main__":
    main()
