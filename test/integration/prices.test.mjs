// The operator's price table, usage reports and invoices through the CLI and the admin API.
// Decimal prices round-trip exactly and only operator keys reach the price routes. `usage` and
// `invoice` print exact dollar amounts in table, CSV and JSON form. Commands exit 0 on success,
// 1 when the server rejects the request and 2 for a usage error.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { apiWithKey, cliFails, cliJson, createAdminKey, startKeystore } from '../harness/keystore.mjs';

const kUnitNames = [
  'input_tokens', 'cached_input_tokens', 'output_tokens', 'requests',
  'emails', 'messages', 'read_units', 'write_units',
];
const kUsageCsvHeader = 'day,request_count,input_tokens,cached_input_tokens,output_tokens,requests,emails,messages,read_units,write_units,cost_usd,billable_usd,byok_usd';
const kInvoiceCsvHeader = 'provider,model,unit,units,usd_per_million,cost_usd,billed_usd,mode';

// Whether the sqlite3 shell is installed, which the seeded-ledger test needs.
const kHaveSqlite = spawnSync('sqlite3', ['-version']).status === 0;

function zeroUnits() {
  return Object.fromEntries(kUnitNames.map((unit) => [unit, 0]));
}

// Appends ledger rows to the server's SQLite database with the sqlite3 shell, so a report has
// rows whose sums are known exactly without any proxied traffic. Each row gives time (RFC 3339),
// projectId, agentId, provider, mode, model, units ({unit: count}), prices ({unit: micros per
// million}), costMicros and billable.
function seedLedger(ks, rows) {
  const columns = [
    'time', 'request_id', 'project_id', 'agent_id', 'token_id', 'provider', 'mode', 'method', 'path',
    'upstream_status', 'outcome', 'bytes_in', 'bytes_out', 'latency_ms', 'credential_id', 'model',
    ...kUnitNames, 'usage_reported', 'prices', 'cost_micros', 'billable',
  ];
  const quote = (text) => `'${String(text).replaceAll("'", "''")}'`;
  const values = rows.map((row, index) => {
    const units = { ...zeroUnits(), ...row.units };
    return `(${[
      Date.parse(row.time), quote(`req_seed_${index}`), quote(row.projectId), quote(row.agentId),
      quote('tok_seed'), quote(row.provider), quote(row.mode), quote('POST'), quote('/seeded'),
      200, quote('ok'), 0, 0, 0, quote(''), quote(row.model ?? ''),
      ...kUnitNames.map((unit) => units[unit]), 1, quote(JSON.stringify(row.prices)),
      row.costMicros, row.billable ? 1 : 0,
    ].join(', ')})`;
  });
  const sql = `INSERT INTO ledger (${columns.join(', ')}) VALUES ${values.join(', ')};`;
  const result = spawnSync('sqlite3', ['-cmd', '.timeout 5000', path.join(ks.dataDir, 'keystore.db'), sql], { encoding: 'utf8' });
  assert.equal(result.status, 0, `sqlite3 inserts the seeded rows: ${result.stderr}`);
}

describe('prices', () => {
  let ks;

  before(async () => {
    ks = await startKeystore();
  });

  after(async () => {
    await ks?.close();
  });

  test('price set round-trips decimals exactly', async () => {
    const cases = [
      ['input_tokens', 'gpt-4o-mini', '0.15', 150000],
      ['output_tokens', 'gpt-4o-mini', '2.5', 2500000],
      ['cached_input_tokens', 'gpt-4o-mini', '0.000001', 1],
    ];
    const ids = [];
    for (const [unit, model, amount, micros] of cases) {
      const price = await cliJson(ks, ['price', 'set', 'openai', '--unit', unit, '--model', model, '--usd-per-million', amount]);
      assert.equal(price.provider, 'openai');
      assert.equal(price.model, model);
      assert.equal(price.unit, unit);
      assert.equal(price.usd_per_million, amount, `${amount} is rendered back unchanged`);
      assert.equal(price.micros_per_million, micros, `${amount} is ${micros} micro-dollars per million`);
      assert.equal(price.effective_from, price.created_at, 'a price without --effective-from takes effect at once');
      ids.push(price.id);
    }

    const listed = await cliJson(ks, ['price', 'list', '--provider', 'openai']);
    for (const [index, [unit, , amount, micros]] of cases.entries()) {
      const entry = listed.find((item) => item.id === ids[index]);
      assert.ok(entry, `price list contains price ${ids[index]}`);
      assert.equal(entry.unit, unit);
      assert.equal(entry.usd_per_million, amount);
      assert.equal(entry.micros_per_million, micros);
    }

    const table = await ks.cli(['price', 'list', '--provider', 'openai']);
    assert.equal(table.code, 0, `price list exits 0; stderr: ${table.stderr}`);
    assert.match(table.stdout, /^ID\s+PROVIDER\s+MODEL\s+UNIT\s+USD\/MILLION\s+EFFECTIVE$/m);
    for (const amount of ['$0.15', '$2.5', '$0.000001']) {
      assert.ok(table.stdout.includes(` ${amount} `), `the table shows ${amount}: ${table.stdout}`);
    }
  });

  test('price set prints a summary line', async () => {
    const result = await ks.cli(['price', 'set', 'resend', '--unit', 'emails', '--usd-per-million', '400', '--effective-from', '2025-01-01T00:00:00Z']);
    assert.equal(result.code, 0, `price set exits 0; stderr: ${result.stderr}`);
    assert.match(result.stdout, /^price \d+: resend default emails at \$400 per million from 2025-01-01T00:00:00\.000Z\n$/);
  });

  test('current prices leave out future and replaced prices', async () => {
    const old = await cliJson(ks, ['price', 'set', 'anthropic', '--unit', 'input_tokens', '--usd-per-million', '3', '--effective-from', '2024-01-01']);
    const current = await cliJson(ks, ['price', 'set', 'anthropic', '--unit', 'input_tokens', '--usd-per-million', '2.75', '--effective-from', '2025-01-01']);
    const future = await cliJson(ks, ['price', 'set', 'anthropic', '--unit', 'input_tokens', '--usd-per-million', '4', '--effective-from', '2999-01-01']);

    const all = await cliJson(ks, ['price', 'list', '--provider', 'anthropic']);
    assert.deepEqual(all.map((item) => item.id), [future.id, current.id, old.id], 'every price, newest effective first');

    const now = await cliJson(ks, ['price', 'list', '--provider', 'anthropic', '--current']);
    assert.deepEqual(now.map((item) => item.id), [current.id], 'only the price in effect now');
    assert.equal(now[0].usd_per_million, '2.75');
  });

  test('invalid price arguments exit 2', async () => {
    const cases = [
      ['price', 'set', 'openai', '--unit', 'tokens', '--usd-per-million', '1'],
      ['price', 'set', 'openai', '--unit', 'input_tokens', '--usd-per-million', '1e3'],
      ['price', 'set', 'openai', '--unit', 'input_tokens', '--usd-per-million', '0.1234567'],
      ['price', 'set', 'openai', '--unit', 'input_tokens', '--usd-per-million', '-1'],
      ['price', 'set', 'openai', '--unit', 'input_tokens', '--usd-per-million', '1', '--effective-from', 'tomorrow'],
      ['price', 'set', 'openai', '--unit', 'input_tokens'],
      ['price', 'set', '--unit', 'input_tokens', '--usd-per-million', '1'],
    ];
    for (const args of cases) {
      await cliFails(ks, args, 2);
    }
  });

  test('refused price requests exit 1', async () => {
    const unknown = await cliFails(ks, ['price', 'set', 'nope', '--unit', 'emails', '--usd-per-million', '1'], 1);
    assert.match(unknown.stderr, /"provider" names unknown provider nope.*\(invalid_request\)/);
    const filter = await cliFails(ks, ['price', 'list', '--provider', 'nope'], 1);
    assert.match(filter.stderr, /\(unknown_provider\)/);
  });

  test('API rejects a JSON number as a price', async () => {
    for (const amount of [0.15, 1]) {
      const response = await ks.api('POST', '/api/v1/prices', { provider: 'openai', unit: 'input_tokens', usd_per_million: amount });
      assert.equal(response.status, 400, `usd_per_million ${amount} as a number is rejected: ${response.text}`);
      assert.equal(response.json?.error?.code, 'invalid_request');
      assert.match(response.json?.error?.message ?? '', /must be a decimal string such as "0\.15", not a JSON number/);
    }
  });

  test('price routes refuse non-operator keys', async () => {
    const owner = await createAdminKey(ks, { name: 'price-owner', role: 'owner' });
    const env = { KEYSTORE_ADMIN_KEY: owner.key };
    const set = await cliFails(ks, ['price', 'set', 'openai', '--unit', 'input_tokens', '--usd-per-million', '9'], 1, { withAdminKey: false, env });
    assert.match(set.stderr, /is not an operator.*\(forbidden\)/);
    const list = await cliFails(ks, ['price', 'list'], 1, { withAdminKey: false, env });
    assert.match(list.stderr, /\(forbidden\)/);

    for (const [method, apiPath] of [['GET', '/api/v1/prices'], ['GET', '/api/v1/prices/current'], ['POST', '/api/v1/prices']]) {
      const body = method === 'POST' ? { provider: 'openai', unit: 'input_tokens', usd_per_million: '9' } : undefined;
      const response = await apiWithKey(ks, owner.key, method, apiPath, body);
      assert.equal(response.status, 403, `${method} ${apiPath} is 403 for a non-operator: ${response.text}`);
      assert.equal(response.json?.error?.code, 'forbidden');
    }
    const listed = await cliJson(ks, ['price', 'list']);
    assert.ok(!listed.some((item) => item.usd_per_million === '9'), 'the refused price was not stored');
  });
});

describe('usage and invoice', () => {
  let ks;
  let project;
  let agent;

  before(async () => {
    ks = await startKeystore();
    project = await cliJson(ks, ['project', 'create', 'billing']);
    agent = await cliJson(ks, ['agent', 'create', 'biller', '--project', 'billing']);
  });

  after(async () => {
    await ks?.close();
  });

  test('usage without traffic has zero rows', async () => {
    const report = await cliJson(ks, ['usage', '--project', 'billing', '--group-by', 'provider']);
    assert.equal(report.project_id, project.id);
    assert.equal(report.group_by, 'provider');
    assert.deepEqual(report.data, []);
    assert.deepEqual(report.total, { requests: 0, units: zeroUnits(), cost_micros: 0, billable_micros: 0, byok_micros: 0 });

    const viaFormat = await ks.cli(['usage', '--project', 'billing', '--format', 'json']);
    assert.equal(viaFormat.code, 0, `usage --format json exits 0; stderr: ${viaFormat.stderr}`);
    assert.deepEqual(JSON.parse(viaFormat.stdout).data, []);

    const csv = await ks.cli(['usage', '--project', 'billing', '--format', 'csv']);
    assert.equal(csv.code, 0, `usage --format csv exits 0; stderr: ${csv.stderr}`);
    assert.equal(csv.stdout, `${kUsageCsvHeader}\n`, 'only the header line');

    const table = await ks.cli(['usage', '--project', 'billing']);
    assert.equal(table.code, 0, `usage exits 0; stderr: ${table.stderr}`);
    assert.equal(table.stdout, 'no usage in project billing for this period\n');
  });

  test('invoice without traffic has no lines', async () => {
    const invoice = await cliJson(ks, ['invoice', '--project', 'billing', '--month', '2026-02']);
    assert.deepEqual(invoice, {
      project_id: project.id,
      month: '2026-02',
      period_start: '2026-02-01T00:00:00.000Z',
      period_end: '2026-03-01T00:00:00.000Z',
      lines: [],
      total_billed_micros: 0,
      total_list_price_micros: 0,
    });

    const csv = await ks.cli(['invoice', '--project', 'billing', '--month', '2026-02', '--format', 'csv']);
    assert.equal(csv.code, 0, `invoice --format csv exits 0; stderr: ${csv.stderr}`);
    assert.equal(csv.stdout, `${kInvoiceCsvHeader}\n`);

    const table = await ks.cli(['invoice', '--project', 'billing', '--month', '2026-02']);
    assert.equal(table.code, 0, `invoice exits 0; stderr: ${table.stderr}`);
    assert.equal(
      table.stdout,
      'invoice of project billing for 2026-02 (UTC)\nno priced usage in this month\n' +
        'total billed: $0.000000\ntotal at list price, BYOK included: $0.000000\n',
    );
  });

  test('invalid report arguments exit 2', async () => {
    const cases = [
      ['usage'],
      ['usage', '--project', 'billing', '--group-by', 'week'],
      ['usage', '--project', 'billing', '--format', 'xml'],
      ['usage', '--project', 'billing', '--since', 'last-week'],
      ['usage', '--project', 'billing', '--json', '--format', 'csv'],
      ['invoice', '--project', 'billing'],
      ['invoice', '--project', 'billing', '--month', '2026-3'],
      ['invoice', '--project', 'billing', '--month', '2026-13'],
      ['invoice', '--project', 'billing', '--month', '2026-03', '--format', 'pdf'],
    ];
    for (const args of cases) {
      await cliFails(ks, args, 2);
    }
  });

  test('refused report requests exit 1', async () => {
    const missingProject = await cliFails(ks, ['usage', '--project', 'no-such-project'], 1);
    assert.match(missingProject.stderr, /project no-such-project not found \(not_found\)/);
    const missingAgent = await cliFails(ks, ['usage', '--project', 'billing', '--agent', 'nobody'], 1);
    assert.match(missingAgent.stderr, /agent nobody not found in project billing \(not_found\)/);
    const backwards = await cliFails(ks, ['usage', '--project', 'billing', '--since', '2026-03-02', '--until', '2026-03-01'], 1);
    assert.match(backwards.stderr, /until must be later than since \(invalid_request\)/);
    const invoice = await cliFails(ks, ['invoice', '--project', 'no-such-project', '--month', '2026-03'], 1);
    assert.match(invoice.stderr, /\(not_found\)/);
  });

  test('viewer reads usage and invoices', async () => {
    const viewer = await createAdminKey(ks, { name: 'billing-viewer', role: 'viewer' });
    const env = { KEYSTORE_ADMIN_KEY: viewer.key };
    const usage = await ks.cli(['usage', '--project', 'billing', '--json'], { withAdminKey: false, env });
    assert.equal(usage.code, 0, `a viewer reads usage; stderr: ${usage.stderr}`);
    const invoice = await ks.cli(['invoice', '--project', 'billing', '--month', '2026-03', '--json'], { withAdminKey: false, env });
    assert.equal(invoice.code, 0, `a viewer reads an invoice; stderr: ${invoice.stderr}`);
  });

  test('seeded rows print exact dollars', { skip: kHaveSqlite ? false : 'the sqlite3 shell is not installed' }, async () => {
    seedLedger(ks, [
      {
        time: '2026-03-10T12:00:00Z', projectId: project.id, agentId: agent.id, provider: 'openai',
        mode: 'marketplace', model: 'gpt-4o-mini', units: { input_tokens: 1234567, requests: 1 },
        prices: { input_tokens: 1000000 }, costMicros: 1234567, billable: true,
      },
      {
        time: '2026-03-11T08:00:00Z', projectId: project.id, agentId: agent.id, provider: 'resend',
        mode: 'byok', units: { emails: 3, requests: 1 }, prices: { emails: 2500000 }, costMicros: 8, billable: false,
      },
    ]);

    const csv = await ks.cli(['usage', '--project', 'billing', '--since', '2026-03-01', '--until', '2026-04-01', '--format', 'csv']);
    assert.equal(csv.code, 0, `usage --format csv exits 0; stderr: ${csv.stderr}`);
    assert.equal(
      csv.stdout,
      `${kUsageCsvHeader}\n` +
        '2026-03-10,1,1234567,0,0,1,0,0,0,0,1.234567,1.234567,0.000000\n' +
        '2026-03-11,1,0,0,0,1,3,0,0,0,0.000008,0.000000,0.000008\n',
    );

    const table = await ks.cli(['usage', '--project', 'billing', '--group-by', 'provider']);
    assert.equal(table.code, 0, `usage exits 0; stderr: ${table.stderr}`);
    assert.match(table.stdout, /^PROVIDER\s+REQUEST_COUNT\s+INPUT_TOKENS\s+REQUESTS\s+EMAILS\s+COST\s+BILLED\s+BYOK$/m);
    assert.match(table.stdout, /^openai\s+1\s+1234567\s+1\s+0\s+\$1\.234567\s+\$1\.234567\s+\$0\.000000$/m);
    assert.match(table.stdout, /^TOTAL\s+2\s+1234567\s+2\s+3\s+\$1\.234575\s+\$1\.234567\s+\$0\.000008$/m);

    const invoice = await cliJson(ks, ['invoice', '--project', 'billing', '--month', '2026-03']);
    assert.equal(invoice.total_billed_micros, 1234567);
    assert.equal(invoice.total_list_price_micros, 1234575);
    assert.deepEqual(invoice.lines.map((line) => [line.provider, line.unit, line.units, line.cost_micros, line.billed_micros, line.mode]), [
      ['openai', 'input_tokens', 1234567, 1234567, 1234567, 'marketplace'],
      ['resend', 'emails', 3, 8, 0, 'byok'],
    ]);

    const invoiceCsv = await ks.cli(['invoice', '--project', 'billing', '--month', '2026-03', '--format', 'csv']);
    assert.equal(invoiceCsv.code, 0, `invoice --format csv exits 0; stderr: ${invoiceCsv.stderr}`);
    assert.equal(
      invoiceCsv.stdout,
      `${kInvoiceCsvHeader}\n` +
        'openai,gpt-4o-mini,input_tokens,1234567,1,1.234567,1.234567,marketplace\n' +
        'resend,,emails,3,2.5,0.000008,0.000000,byok\n',
    );

    const invoiceTable = await ks.cli(['invoice', '--project', 'billing', '--month', '2026-03']);
    assert.equal(invoiceTable.code, 0, `invoice exits 0; stderr: ${invoiceTable.stderr}`);
    assert.match(invoiceTable.stdout, /^total billed: \$1\.234567$/m);
    assert.match(invoiceTable.stdout, /^total at list price, BYOK included: \$1\.234575$/m);

    const ledger = await ks.api('GET', `/api/v1/projects/${project.id}/ledger?since=2026-03-10&until=2026-03-11`);
    assert.equal(ledger.status, 200, ledger.text);
    assert.equal(ledger.json.data.length, 1);
    const [row] = ledger.json.data;
    assert.equal(row.model, 'gpt-4o-mini');
    assert.deepEqual(row.units, { ...zeroUnits(), input_tokens: 1234567, requests: 1 });
    assert.deepEqual(row.prices, { input_tokens: 1000000 });
    assert.equal(row.usage_reported, true);
    assert.equal(row.cost_micros, 1234567);
    assert.equal(row.billable, true);
  });

  test('report text from agents is neutralized', { skip: kHaveSqlite ? false : 'the sqlite3 shell is not installed' }, async () => {
    seedLedger(ks, [
      {
        time: '2026-05-10T12:00:00Z', projectId: project.id, agentId: agent.id, provider: 'openai',
        mode: 'marketplace', model: '=HYPERLINK("x")', units: { requests: 1 }, prices: { requests: 1000000 },
        costMicros: 1, billable: true,
      },
      {
        time: '2026-05-11T12:00:00Z', projectId: project.id, agentId: agent.id, provider: 'openai',
        mode: 'marketplace', model: 'red\u001b[31m', units: { requests: 1 }, prices: { requests: 1000000 },
        costMicros: 1, billable: true,
      },
    ]);
    const range = ['--since', '2026-05-01', '--until', '2026-06-01'];

    const csv = await ks.cli(['usage', '--project', 'billing', '--group-by', 'model', ...range, '--format', 'csv']);
    assert.equal(csv.code, 0, `usage --format csv exits 0; stderr: ${csv.stderr}`);
    assert.ok(csv.stdout.includes('\n"\'=HYPERLINK(""x"")",1,'), `a formula is prefixed with ' and quoted: ${csv.stdout}`);

    const table = await ks.cli(['usage', '--project', 'billing', '--group-by', 'model', ...range]);
    assert.equal(table.code, 0, `usage exits 0; stderr: ${table.stderr}`);
    assert.ok(!table.stdout.includes('\u001b'), 'the table holds no escape character');
    assert.match(table.stdout, /^red\?\[31m\s+1\s/m);

    const invoice = await ks.cli(['invoice', '--project', 'billing', '--month', '2026-05']);
    assert.equal(invoice.code, 0, `invoice exits 0; stderr: ${invoice.stderr}`);
    assert.ok(!invoice.stdout.includes('\u001b'), 'the invoice table holds no escape character');
    assert.match(invoice.stdout, /^openai\s+red\?\[31m\s+requests\s+1\s/m);
  });
});
