// Drives facehub with the official Feishu Node SDK (@larksuiteoapi/node-sdk),
// unchanged. Run by tests/it/sdk_node.rs, which starts facehub and passes the
// base URL, credentials, a person and photos in the environment.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const assert = require('assert');
const lark = require('@larksuiteoapi/node-sdk');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing ${k}`);
  return v;
};
const BASE = env('FACEHUB_BASE_URL');
const APP_ID = env('FACEHUB_APP_ID');
const APP_SECRET = env('FACEHUB_APP_SECRET');
const USER_ID = env('FACEHUB_USER_ID');
const PHOTO = env('FACEHUB_PHOTO');
const JPEG = env('FACEHUB_JPEG');
const WIKI_APP_ID = env('FACEHUB_WIKI_APP_ID');
const WIKI_APP_SECRET = env('FACEHUB_WIKI_APP_SECRET');
const USER_TOKEN = env('FACEHUB_USER_TOKEN');
const WIKI_IMAGE = env('FACEHUB_WIKI_IMAGE');
const ACS_APP_ID = env('FACEHUB_ACS_APP_ID');
const ACS_APP_SECRET = env('FACEHUB_ACS_APP_SECRET');
const DEVICE_SN = env('FACEHUB_DEVICE_SN');
const FLOWS_APP_ID = env('FACEHUB_FLOWS_APP_ID');
const FLOWS_APP_SECRET = env('FACEHUB_FLOWS_APP_SECRET');
const DOORS_APP_ID = env('FACEHUB_DOORS_APP_ID');
const DOORS_APP_SECRET = env('FACEHUB_DOORS_APP_SECRET');
const DOOR_DEVICE_ID = env('FACEHUB_DOOR_DEVICE_ID');
const DOOR_SN = env('FACEHUB_DOOR_SN');
const PUNCH_TIME = env('FACEHUB_PUNCH_TIME');
const QR_PUNCH_TIME = env('FACEHUB_QR_PUNCH_TIME');
const CAPTURE_PHOTO = env('FACEHUB_CAPTURE_PHOTO');

function ok(what) {
  console.log(`ok: ${what}`);
}

async function expectStatus(promise, status, code, what) {
  try {
    await promise;
  } catch (e) {
    assert.strictEqual(e.response && e.response.status, status, `${what}: status`);
    if (code !== undefined) {
      assert.strictEqual(e.response.data.code, code, `${what}: code`);
    }
    ok(what);
    return;
  }
  throw new Error(`${what}: expected HTTP ${status}, the call succeeded`);
}

async function streamToBuffer(stream) {
  const parts = [];
  for await (const p of stream) parts.push(p);
  return Buffer.concat(parts);
}

async function main() {
  const client = new lark.Client({
    appId: APP_ID,
    appSecret: APP_SECRET,
    domain: BASE,
    loggerLevel: lark.LoggerLevel.error,
  });
  const photo = fs.readFileSync(PHOTO);
  const jpeg = fs.readFileSync(JPEG);

  // Upload a Buffer: part with Content-Type, no filename.
  const up = await client.attendance.v1.file.upload({
    params: { file_name: 'face.png' },
    data: { file: photo },
  });
  assert.ok(up && up.file && /^[0-9a-f]{32}$/.test(up.file.file_id), JSON.stringify(up));
  ok('upload of a Buffer returns data.file.file_id');

  // Upload a ReadStream: filename and image Content-Type on the part.
  const up2 = await client.attendance.v1.file.upload({
    params: { file_name: '人脸.jpg' },
    data: { file: fs.createReadStream(JPEG) },
  });
  assert.ok(up2 && up2.file && up2.file.file_id);
  ok('upload of a ReadStream');

  // Download (GET with a `{}` JSON body), both as a stream and to a file.
  const dl = await client.attendance.v1.file.download({ path: { file_id: up.file.file_id } });
  assert.ok(photo.equals(await streamToBuffer(dl.getReadableStream())), 'bytes differ');
  ok('download returns the uploaded bytes');
  const out = path.join(os.tmpdir(), `facehub-node-${process.pid}.jpg`);
  const dl2 = await client.attendance.v1.file.download({ path: { file_id: up2.file.file_id } });
  await dl2.writeFile(out);
  assert.ok(jpeg.equals(fs.readFileSync(out)));
  fs.unlinkSync(out);
  assert.ok(String(dl2.headers['content-disposition']).includes("filename*=UTF-8''%E4%BA%BA%E8%84%B8.jpg"));
  ok('download writeFile and Content-Disposition');

  // Bind and read back.
  const m = await client.attendance.v1.userSetting.modify({
    params: { employee_type: 'employee_id' },
    data: { user_setting: { user_id: USER_ID, face_key: up.file.file_id, face_key_update_time: '1625681917' } },
  });
  assert.strictEqual(m.code, 0);
  assert.strictEqual(m.data.user_setting.face_key, up.file.file_id);
  ok('userSetting.modify');
  const q = await client.attendance.v1.userSetting.query({
    params: { employee_type: 'employee_id' },
    data: { user_ids: [USER_ID] },
  });
  assert.strictEqual(q.code, 0);
  assert.strictEqual(q.data.user_settings.length, 1);
  assert.strictEqual(q.data.user_settings[0].face_key, up.file.file_id);
  assert.strictEqual(q.data.user_settings[0].face_key_update_time, '1625681917');
  ok('userSetting.query (GET with a JSON body)');

  // Errors arrive as non-2xx, so the SDK throws instead of returning null.
  await expectStatus(
    client.attendance.v1.file.upload({ params: { file_name: 'x.png' }, data: { file: Buffer.from('not an image at all') } }),
    400, 1220001, 'a non-image upload throws with 400/1220001');
  await expectStatus(
    client.attendance.v1.file.download({ path: { file_id: '0'.repeat(32) } }),
    400, undefined, 'an unknown file_id download throws with 400');
  await expectStatus(
    client.attendance.v1.userSetting.modify({
      params: { employee_type: 'employee_id' },
      data: { user_setting: { user_id: 'ghost', face_key: up.file.file_id } },
    }),
    400, 1220004, 'an unknown user throws with 400/1220004');

  // A caller-supplied token that is not valid (the SDK uses per-call tokens
  // only with its token cache disabled).
  const manual = new lark.Client({
    appId: APP_ID,
    appSecret: APP_SECRET,
    domain: BASE,
    disableTokenCache: true,
    loggerLevel: lark.LoggerLevel.error,
  });
  await expectStatus(
    manual.attendance.v1.userSetting.query(
      { params: { employee_type: 'employee_id' }, data: { user_ids: [USER_ID] } },
      lark.withTenantToken('t-0000000000000000000000000000000000000000'),
    ),
    400, 99991663, 'an invalid tenant token throws with 400/99991663');

  // Wiki (lingo) images: Buffer and ReadStream uploads, download, user token.
  const wiki = new lark.Client({
    appId: WIKI_APP_ID,
    appSecret: WIKI_APP_SECRET,
    domain: BASE,
    loggerLevel: lark.LoggerLevel.error,
  });
  const image = fs.readFileSync(WIKI_IMAGE);
  const w1 = await wiki.lingo.v1.file.upload({ data: { name: '词条图片.png', file: image } });
  assert.ok(w1 && /^box[0-9a-f]{32}$/.test(w1.file_token), JSON.stringify(w1));
  ok('lingo upload of a Buffer returns data.file_token');
  const w2 = await wiki.lingo.v1.file.upload({ data: { name: 'b.png', file: fs.createReadStream(WIKI_IMAGE) } });
  assert.ok(w2 && w2.file_token && w2.file_token !== w1.file_token);
  ok('lingo upload of a ReadStream');
  const wd = await wiki.lingo.v1.file.download({ path: { file_token: w1.file_token } });
  assert.ok(image.equals(await streamToBuffer(wd.getReadableStream())), 'lingo bytes differ');
  assert.strictEqual(wd.headers['content-type'], 'image/png');
  ok('lingo download returns the uploaded bytes');
  const wu = await wiki.lingo.v1.file.upload(
    { data: { name: 'user.png', file: image } },
    lark.withUserAccessToken(USER_TOKEN),
  );
  assert.ok(wu && wu.file_token);
  ok('lingo upload with a user access token');
  await expectStatus(
    wiki.lingo.v1.file.upload({ data: { name: 'tiny.png', file: photo } }),
    400, 2250001, 'a too-small lingo image throws with 400/2250001');
  await expectStatus(
    wiki.lingo.v1.file.download({ path: { file_token: 'box' + '0'.repeat(32) } }),
    400, undefined, 'an unknown file_token download throws with 400');
  await expectStatus(
    client.lingo.v1.file.upload({ data: { name: 'a.png', file: image } }),
    400, 99991672, 'an app without a wiki scope throws with 400/99991672');

  // An image refused from its header (4097 px wide) while the SDK is still
  // sending its ~8 MB: the SDK must read the 400 naming the rule, every
  // time, not fail with EPIPE under its write.
  const wide = fs.readFileSync(env('FACEHUB_WIDE_IMAGE'));
  const quiet = new lark.Client({
    appId: WIKI_APP_ID,
    appSecret: WIKI_APP_SECRET,
    domain: BASE,
    loggerLevel: lark.LoggerLevel.fatal,
  });
  for (let i = 0; i < 100; i++) {
    try {
      await quiet.lingo.v1.file.upload({ data: { name: 'wide.png', file: wide } });
      throw new Error('a 4097-px lingo image was accepted');
    } catch (e) {
      if (!e.response) throw new Error(`run ${i}: no answer, only ${e.code || e.message}`);
      assert.strictEqual(e.response.status, 400, `run ${i}: status`);
      assert.strictEqual(e.response.data.code, 2250001, `run ${i}: code`);
      assert.ok(String(e.response.data.msg).includes('width 4097 exceeds 4096'), e.response.data.msg);
    }
  }
  ok('a lingo image refused from its header: 100 of 100 uploads read the 400');

  // The terminals, as the platform lists them.
  const acs = new lark.Client({
    appId: ACS_APP_ID,
    appSecret: ACS_APP_SECRET,
    domain: BASE,
    loggerLevel: lark.LoggerLevel.error,
  });
  const devices = await acs.acs.v1.device.list();
  assert.strictEqual(devices.code, 0, JSON.stringify(devices));
  assert.strictEqual(devices.data.items.length, 1, JSON.stringify(devices));
  const d = devices.data.items[0];
  assert.strictEqual(d.device_sn, DEVICE_SN);
  assert.strictEqual(d.device_name, DEVICE_SN);
  assert.ok(/^[0-9]{1,19}$/.test(d.device_id), d.device_id);
  assert.deepStrictEqual(d.property, {
    current_device_face_count: 0,
    device_name: DEVICE_SN,
    is_clock_in: true,
    online_status: 0,
    version: '',
  });
  ok('acs device.list: a terminal that never connected');

  // Punch records from another system: created once, read, deleted.
  const flows = new lark.Client({
    appId: FLOWS_APP_ID,
    appSecret: FLOWS_APP_SECRET,
    domain: BASE,
    loggerLevel: lark.LoggerLevel.error,
  });
  const record = {
    user_id: USER_ID,
    creator_id: 'hr-system',
    location_name: 'Gate 3',
    check_time: '1763900000',
    comment: 'from node',
    idempotent_id: 'node-1',
    check_result: 'Normal',
  };
  const create = () => flows.attendance.v1.userFlow.batchCreate({
    params: { employee_type: 'employee_id' },
    data: { flow_records: [record] },
  });
  const made = await create();
  assert.strictEqual(made.code, 0, JSON.stringify(made));
  const id = made.data.flow_records[0].record_id;
  assert.ok(/^[0-9]+$/.test(id), id);
  const again = await create();
  assert.strictEqual(again.data.flow_records[0].record_id, id, 'idempotent_id');
  const found = await flows.attendance.v1.userFlow.query({
    params: { employee_type: 'employee_id' },
    data: { user_ids: [USER_ID], check_time_from: '1763899000', check_time_to: '1763901000' },
  });
  assert.strictEqual(found.code, 0, JSON.stringify(found));
  assert.deepStrictEqual(found.data.user_flow_results.map((r) => r.record_id), [id]);
  const one = await flows.attendance.v1.userFlow.get({
    path: { user_flow_id: id },
    params: { employee_type: 'employee_id' },
  });
  assert.strictEqual(one.data.comment, 'from node', JSON.stringify(one));
  assert.strictEqual(one.data.check_result, 'Normal');
  const del = await flows.attendance.v1.userFlow.batchDel({ data: { record_ids: [id] } });
  assert.deepStrictEqual(del.data, { fail_record_ids: [], success_record_ids: [id] });
  ok('attendance user_flow: batchCreate (idempotent), query, get, batchDel');

  // Door records of a terminal (another tenant's): a face pass with its
  // capture photo, and an hour before a QR-code pass without one.
  const doors = new lark.Client({
    appId: DOORS_APP_ID,
    appSecret: DOORS_APP_SECRET,
    domain: BASE,
    loggerLevel: lark.LoggerLevel.error,
  });
  const capture = fs.readFileSync(CAPTURE_PHOTO);
  const from = Number(QR_PUNCH_TIME) - 60;
  const to = Number(PUNCH_TIME) + 60;
  const list = (params) => doors.acs.v1.accessRecord.list({ params: { from, to, user_id_type: 'user_id', ...params } });
  const all = await list({});
  assert.strictEqual(all.code, 0, JSON.stringify(all));
  assert.strictEqual(all.data.items.length, 2, JSON.stringify(all));
  const [face, qr] = all.data.items;
  assert.ok(/^[0-9]+$/.test(face.access_record_id), face.access_record_id);
  assert.ok(/^[0-9]+$/.test(qr.access_record_id) && qr.access_record_id !== face.access_record_id, qr.access_record_id);
  // Every field, and no other, newest first.
  assert.deepStrictEqual(all.data, {
    has_more: false,
    items: [
      {
        access_record_id: face.access_record_id,
        access_time: PUNCH_TIME,
        access_type: 'FA',
        device_id: DOOR_DEVICE_ID,
        is_clock_in: true,
        is_door_open: true,
        user_id: USER_ID,
      },
      {
        access_record_id: qr.access_record_id,
        access_time: QR_PUNCH_TIME,
        access_type: 'QRCode',
        device_id: DOOR_DEVICE_ID,
        is_clock_in: true,
        is_door_open: true,
        user_id: USER_ID,
      },
    ],
  });
  ok('acs accessRecord.list: both passes, field by field, newest first');
  const p1 = await list({ page_size: 1 });
  assert.strictEqual(p1.data.has_more, true, JSON.stringify(p1));
  assert.ok(p1.data.page_token, JSON.stringify(p1));
  assert.deepStrictEqual(p1.data.items, [all.data.items[0]]);
  const p2 = await list({ page_size: 1, page_token: p1.data.page_token });
  assert.deepStrictEqual(p2.data, { has_more: false, items: [all.data.items[1]] });
  ok('acs accessRecord.list page by page (page_size 1): the same records, then no more');
  const edge = await list({ from: Number(PUNCH_TIME), to: Number(PUNCH_TIME), device_id: DOOR_DEVICE_ID });
  assert.deepStrictEqual(edge.data, { has_more: false, items: [all.data.items[0]] });
  const byOpenId = await doors.acs.v1.accessRecord.list({ params: { from: Number(PUNCH_TIME), to } });
  assert.strictEqual(byOpenId.data.items.length, 1, JSON.stringify(byOpenId));
  assert.ok(/^ou_/.test(byOpenId.data.items[0].user_id), JSON.stringify(byOpenId));
  ok('acs accessRecord.list: one terminal, the window\'s ends count; open_id by default');
  const shot = await doors.acs.v1.accessRecordAccessPhoto.get({ path: { access_record_id: face.access_record_id } });
  assert.strictEqual(shot.headers['content-type'], 'image/jpeg');
  const got = await streamToBuffer(shot.getReadableStream());
  assert.ok(capture.equals(got), `capture photo: ${got.length} bytes, uploaded ${capture.length}`);
  ok('acs accessRecordAccessPhoto.get returns the capture photo byte for byte');
  // A refusal of a download arrives as a stream too: its body is the
  // platform's envelope.
  try {
    await doors.acs.v1.accessRecordAccessPhoto.get({ path: { access_record_id: qr.access_record_id } });
    throw new Error('the photo of a pass without one was served');
  } catch (e) {
    if (!e.response) throw e;
    assert.strictEqual(e.response.status, 400);
    const body = JSON.parse((await streamToBuffer(e.response.data)).toString('utf8'));
    assert.strictEqual(body.code, 99992402, JSON.stringify(body));
    assert.ok(/has no capture photo/.test(body.msg), JSON.stringify(body));
  }
  ok('a pass without a capture photo throws with 400/99992402');
  await expectStatus(
    flows.acs.v1.accessRecord.list({ params: { from, to } }),
    400, 99991672, 'an app without an access_record scope throws with 400/99991672');

  // Access rules of the same terminal: Ann on workdays, then no rule.
  const rule = {
    name: 'front door',
    users: [{ user_type: 1, user_id: USER_ID }],
    devices: [{ id: DOOR_DEVICE_ID }],
    opening_time: { weekdays: [1, 2, 3, 4, 5], day_times: [{ start_hhmm: 830, end_hhmm: 1800 }] },
  };
  const created = await doors.acs.v1.ruleExternal.create({ data: { rule }, params: { user_id_type: 'user_id' } });
  assert.strictEqual(created.code, 0, JSON.stringify(created));
  const ruleId = created.data.rule_id;
  assert.ok(/^[0-9]+$/.test(ruleId), JSON.stringify(created));
  ok('acs ruleExternal.create');
  const rulesOf = (params) => doors.acs.v1.ruleExternal.get({ params: { user_id_type: 'user_id', ...params } });
  const listed = await rulesOf({ device_id: DOOR_DEVICE_ID });
  assert.deepStrictEqual(listed.data, {
    rules: [
      {
        devices: [{ id: DOOR_DEVICE_ID, name: DOOR_SN }],
        id: ruleId,
        is_temp: false,
        name: 'front door',
        opening_time: { day_times: [{ end_hhmm: 1800, start_hhmm: 830 }], weekdays: [1, 2, 3, 4, 5] },
        remind_face: false,
        user_count: '1',
        users: [{ user_id: USER_ID, user_name: 'Ann', user_type: 1 }],
        visitor_count: '0',
        visitors: [],
      },
    ],
  });
  ok('acs ruleExternal.get by device_id: the rule, field by field');
  const visitor = await doors.acs.v1.visitor.create({
    data: { user: { user_type: 2, user_name: 'Vic', department_id: 'od-42' } },
    params: { user_id_type: 'user_id' },
  });
  assert.strictEqual(visitor.code, 0, JSON.stringify(visitor));
  const visitorId = visitor.data.visitor_id;
  assert.ok(/^[0-9]+$/.test(visitorId), JSON.stringify(visitor));
  const withVisitor = await doors.acs.v1.ruleExternal.create({
    data: { rule: { visitors: [{ user_type: 2, user_id: visitorId }] } },
    params: { rule_id: ruleId, user_id_type: 'user_id' },
  });
  assert.strictEqual(withVisitor.code, 0, JSON.stringify(withVisitor));
  const seen = (await rulesOf({ device_id: DOOR_DEVICE_ID })).data.rules[0];
  assert.strictEqual(seen.name, 'front door');
  assert.strictEqual(seen.visitor_count, '1');
  assert.deepStrictEqual(seen.visitors, [{ department_id: 'od-42', user_id: visitorId, user_name: 'Vic', user_type: 2 }]);
  assert.strictEqual(seen.user_count, '1');
  ok('acs visitor.create, named by a rule (the rest of the rule kept)');
  const removed = await doors.acs.v1.visitor.delete({ path: { visitor_id: visitorId } });
  assert.strictEqual(removed.code, 0, JSON.stringify(removed));
  assert.deepStrictEqual((await rulesOf({})).data.rules[0].visitors, []);
  await expectStatus(
    doors.acs.v1.visitor.delete({ path: { visitor_id: visitorId } }),
    400, 99992402, 'deleting a visitor that is gone throws with 400/99992402');
  ok('acs visitor.delete');
  const unbound = await doors.acs.v1.ruleExternal.deviceBind({ data: { device_id: DOOR_DEVICE_ID, rule_ids: [] } });
  assert.strictEqual(unbound.code, 0, JSON.stringify(unbound));
  assert.deepStrictEqual((await rulesOf({ device_id: DOOR_DEVICE_ID })).data, { rules: [] });
  assert.strictEqual((await rulesOf({})).data.rules.length, 1);
  ok('acs ruleExternal.deviceBind with no rule leaves the terminal bound to none');
  const deleted = await doors.acs.v1.ruleExternal.delete({ params: { rule_id: ruleId } });
  assert.strictEqual(deleted.code, 0, JSON.stringify(deleted));
  assert.deepStrictEqual((await rulesOf({})).data, { rules: [] });
  ok('acs ruleExternal.delete');
  await expectStatus(
    doors.acs.v1.ruleExternal.delete({ params: { rule_id: ruleId } }),
    400, 99992402, 'deleting a rule that is gone throws with 400/99992402');

  console.log('node-sdk conformance: all checks passed');
  // Do not wait for the SDK's idle keep-alive sockets to time out.
  process.exit(0);
}

main().catch((e) => {
  console.error('FAIL:', e && e.stack ? e.stack : e);
  if (e && e.response) console.error('response:', e.response.status, JSON.stringify(e.response.data));
  process.exit(1);
});
