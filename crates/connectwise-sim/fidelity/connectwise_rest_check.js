// Fidelity check: connectwise-rest (npm), used unmodified, against the simulator.
//
// The only adaptation is the URL scheme: connectwise-rest builds
// https://{companyUrl}/... and the simulator serves plain HTTP, so each API
// object's axios baseURL is pointed at http:// after construction.
//
// Environment: CW_HOST (host:port), CW_COMPANY, CW_PUBLIC, CW_PRIVATE, CW_CLIENT_ID.
'use strict';

const http = require('http');
const { ManageAPI, utils } = require('connectwise-rest');

const HOST = process.env.CW_HOST || '127.0.0.1:8081';
const COMPANY = process.env.CW_COMPANY || 'demo';
const PUBLIC = process.env.CW_PUBLIC || 'demo-public';
const PRIVATE = process.env.CW_PRIVATE || 'demo-private';
const CLIENT_ID = process.env.CW_CLIENT_ID || '00000000-0000-0000-0000-000000000000';
const IDENT = `NodeFidelity${Date.now()}`;

let passed = 0;
const failures = [];
function check(name, ok, detail) {
  if (ok) {
    passed += 1;
  } else {
    failures.push(name);
    console.log(`FAIL ${name}`, detail === undefined ? '' : JSON.stringify(detail));
  }
}

function client(privateKey) {
  const cwm = new ManageAPI({
    companyId: COMPANY,
    companyUrl: HOST,
    publicKey: PUBLIC,
    privateKey,
    clientId: CLIENT_ID,
    entryPoint: 'v4_6_release',
  });
  for (const api of Object.values(cwm)) {
    if (api && api.instance && api.instance.defaults) {
      api.instance.defaults.baseURL = `http://${HOST}/v4_6_release/apis/3.0`;
    }
  }
  return cwm;
}

const DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

// Checks a record against the shape the library's generated types describe:
// numeric ids, `_info` a map of strings, references with numeric ids, datetimes as ISO strings.
function shapeOk(rec) {
  if (typeof rec.id !== 'number') return false;
  const stack = [rec];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) { stack.push(...v); continue; }
    if (v === null) return false; // nulls are omitted
    if (typeof v !== 'object') continue;
    if (v._info && !Object.values(v._info).every((x) => typeof x === 'string')) return false;
    if ('id' in v && typeof v.id !== 'number') return false;
    for (const [k, x] of Object.entries(v)) {
      if (/^(date|lastUpdated|time(Start|End))/.test(k) && typeof x === 'string' && !DATE.test(x)) return false;
      if (k !== '_info') stack.push(x);
    }
  }
  return true;
}

async function expectError(promise, status) {
  try {
    await promise;
    return { ok: false };
  } catch (e) {
    return { ok: e.status === status, error: e };
  }
}

async function crud(name, api) {
  const total = (await api.count()).count;
  check(`${name}: count`, total > 0, total);
  const all = await api.paginate(7);
  const ids = all.map((r) => r.id);
  check(`${name}: paginate visits every record`, ids.length === total && new Set(ids).size === total, [ids.length, total]);
  check(`${name}: records have the documented shape`, all.every(shapeOk));
  const [low, high] = [ids[3], ids[10]];
  const ranged = await api.list({ conditions: `id >= ${low} AND id < ${high}`, pageSize: 1000 });
  check(`${name}: conditions`, JSON.stringify(ranged.map((r) => r.id)) === JSON.stringify(ids.filter((i) => i >= low && i < high)));
  const one = await api.get(ids[0]);
  check(`${name}: get by id`, one.id === ids[0]);
  const since = new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const created = await api.create();
  check(`${name}: create`, typeof created.id === 'number' && !ids.includes(created.id), created);
  const patched = await api.patch(created.id);
  check(`${name}: patch`, api.patched(patched), patched);
  const recent = await api.list({ conditions: `lastUpdated > [${since}]`, pageSize: 1000 });
  check(`${name}: lastUpdated condition finds the write`, recent.some((r) => r.id === created.id), since);
  await api.remove(created.id);
  if (api.soft) {
    const gone = await api.get(created.id);
    check(`${name}: soft delete`, gone.deletedFlag === true && DATE.test(gone.dateDeleted), gone);
  } else {
    const r = await expectError(api.get(created.id), 404);
    check(`${name}: delete then 404`, r.ok && r.error.data.code === 'NotFound', r.error && r.error.data);
  }
  return ids;
}

async function callbacks(cwm, contactId) {
  const received = [];
  let notify;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ url: req.url, signature: req.headers['x-content-signature'], body });
      res.statusCode = 204;
      res.end();
      if (notify) notify();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/cw?recordId=`;
  try {
    const entry = await cwm.SystemAPI.postSystemCallbacks({ url, objectId: 0, type: 'contact', level: 'owner', description: 'node fidelity' });
    check('callback: create normalises objectId', entry.objectId === 1, entry);
    const dup = await expectError(cwm.SystemAPI.postSystemCallbacks({ url, objectId: 1, type: 'contact', level: 'owner' }), 400);
    check('callback: duplicate -> ObjectExists', dup.ok && dup.error.data.errors[0].code === 'ObjectExists', dup.error && dup.error.data);
    const arrived = new Promise((resolve) => { notify = resolve; });
    await cwm.CompanyAPI.patchCompanyContactsById(contactId, [{ op: 'replace', path: 'title', value: 'Callback from node' }]);
    await Promise.race([arrived, new Promise((_, reject) => setTimeout(() => reject(new Error('no callback within 20 s')), 20000))]);
    const got = received[0];
    const payload = JSON.parse(got.body);
    check('callback: url carries the record id', got.url === `/cw?recordId=${contactId}`, got.url);
    check('callback: payload', payload.Action === 'updated' && payload.Type === 'contact' && payload.ID === contactId, payload);
    check('callback: Entity is a JSON string of the record', JSON.parse(payload.Entity).title === 'Callback from node');
    const key = await (await fetch(payload.Metadata.key_url)).json();
    check('callback: key_url serves the signing key', typeof key.signing_key === 'string', key);
    check('callback: signature verifies with connectwise-rest', utils.Callback.verifyMessage(payload, got.signature, key.signing_key) === true);
    check('callback: wrong key does not verify', utils.Callback.verifyMessage(payload, got.signature, 'wrong') === false);
    await cwm.SystemAPI.deleteSystemCallbacksById(entry.id);
  } finally {
    server.close();
  }
}

function resource(cwm, spec) {
  return {
    soft: spec.soft,
    count: () => spec.count(),
    paginate: (pageSize) => cwm.paginate(spec.list, { startPage: 1, pageSize }, {}),
    list: (params) => spec.list(params),
    get: (id) => spec.get(id),
    create: () => spec.create(),
    patch: (id) => spec.patch(id),
    patched: spec.patched,
    remove: (id) => spec.remove(id),
  };
}

async function main() {
  const cwm = client(PRIVATE);
  const info = await cwm.SystemAPI.getSystemInfo();
  check('system/info', typeof info.version === 'string' && info.isCloud === false, info);
  const C = cwm.CompanyAPI;
  const S = cwm.ServiceAPI;
  const companies = await crud('companies', resource(cwm, {
    soft: true,
    count: () => C.getCompanyCompaniesCount(),
    list: (p) => C.getCompanyCompanies(p),
    get: (id) => C.getCompanyCompaniesById(id),
    create: () => C.postCompanyCompanies({ identifier: IDENT, name: 'Node Fidelity LLC', types: [{ id: 1 }] }),
    patch: (id) => C.patchCompanyCompaniesById(id, [{ op: 'replace', path: 'name', value: 'Node Renamed' }]),
    patched: (c) => c.name === 'Node Renamed',
    remove: (id) => C.deleteCompanyCompaniesById(id),
  }));
  const contacts = await crud('contacts', resource(cwm, {
    count: () => C.getCompanyContactsCount(),
    list: (p) => C.getCompanyContacts(p),
    get: (id) => C.getCompanyContactsById(id),
    create: () => C.postCompanyContacts({ firstName: 'Ada', lastName: 'Lovelace', company: { id: companies[0] } }),
    patch: (id) => C.patchCompanyContactsById(id, [{ op: 'replace', path: 'title', value: 'Countess' }]),
    patched: (c) => c.title === 'Countess' && c.company.id === companies[0],
    remove: (id) => C.deleteCompanyContactsById(id),
  }));
  const tickets = await crud('tickets', resource(cwm, {
    count: () => S.getServiceTicketsCount(),
    list: (p) => S.getServiceTickets(p),
    get: (id) => S.getServiceTicketsById(id),
    create: () => S.postServiceTickets({ summary: 'connectwise-rest fidelity', company: { id: companies[1] }, board: { name: 'Help Desk' } }),
    patch: (id) => S.patchServiceTicketsById(id, [{ op: 'replace', path: 'summary', value: 'patched by node' }]),
    patched: (t) => t.summary === 'patched by node',
    remove: (id) => S.deleteServiceTicketsById(id),
  }));
  const note = await S.postServiceTicketsByParentIdNotes(tickets[0], { text: 'from node', detailDescriptionFlag: true });
  check('ticket note create', note.ticketId === tickets[0] && note.text === 'from node', note);

  const bad = await expectError(C.getCompanyContacts({ conditions: 'inactiveFlag = 1' }), 400);
  check('malformed conditions -> 400', bad.ok && /Expected a boolean value/.test(bad.error.data.message), bad.error && bad.error.data);
  const auth = await expectError(client('wrong').CompanyAPI.getCompanyContacts(), 401);
  check('wrong key -> 401', auth.ok, auth.error && auth.error.data);

  await callbacks(cwm, contacts[2]);

  console.log(`connectwise-rest: ${passed} passed, ${failures.length} failed`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  console.error('connectwise-rest: crashed', e);
  process.exit(1);
});
