// Rate limits and monthly budgets of agents and projects through `agent update`,
// `project update` and the admin API. Values are set and shown, and the word null and --clear
// clear them. Commands exit 0 on success, 1 when the server rejects the request and 2 for a
// usage error.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiExpect, cliFails, cliJson, createAdminKey, startKeystore } from '../harness/keystore.mjs';

const kAgentLimits = ['rpm_limit', 'rpd_limit', 'tpm_limit', 'budget_cents', 'budget_warn_percent'];
const kProjectLimits = ['default_rpm', 'default_rpd', 'default_tpm', 'budget_cents', 'budget_warn_percent'];

// The limit members of an agent or project entry.
function pick(entry, members) {
  return Object.fromEntries(members.map((member) => [member, entry[member]]));
}

describe('agent and project limits', () => {
  let ks;
  let project;
  let agent;

  before(async () => {
    ks = await startKeystore();
    project = await cliJson(ks, ['project', 'create', 'limits']);
    agent = await cliJson(ks, ['agent', 'create', 'limited', '--project', 'limits']);
  });

  after(async () => {
    await ks?.close();
  });

  test('new agent and project have no limits', () => {
    assert.deepEqual(pick(agent, kAgentLimits), {
      rpm_limit: null, rpd_limit: null, tpm_limit: null, budget_cents: null, budget_warn_percent: null,
    });
    assert.deepEqual(pick(project, kProjectLimits), {
      default_rpm: null, default_rpd: null, default_tpm: null, budget_cents: null, budget_warn_percent: null,
    });
  });

  test('agent update sets every limit', async () => {
    const updated = await cliJson(ks, [
      'agent', 'update', 'limited', '--project', 'limits',
      '--rpm', '60', '--rpd', '5000', '--tpm', '40000', '--budget-cents', '2500', '--budget-warn-percent', '80',
    ]);
    assert.equal(updated.id, agent.id);
    assert.deepEqual(pick(updated, kAgentLimits), {
      rpm_limit: 60, rpd_limit: 5000, tpm_limit: 40000, budget_cents: 2500, budget_warn_percent: 80,
    });

    const shown = await apiExpect(ks, 'GET', `/api/v1/agents/${agent.id}`, undefined, 200);
    assert.deepEqual(pick(shown, kAgentLimits), pick(updated, kAgentLimits), 'GET shows the stored limits');

    const table = await ks.cli(['agent', 'list', '--project', 'limits']);
    assert.equal(table.code, 0, `agent list exits 0; stderr: ${table.stderr}`);
    assert.match(table.stdout, /^ID\s+NAME\s+STATUS\s+RPM\s+RPD\s+TPM\s+BUDGET\s+CREATED$/m);
    assert.match(table.stdout, new RegExp(`^${agent.id}\\s+limited\\s+active\\s+60\\s+5000\\s+40000\\s+\\$25\\.00\\s`, 'm'));
  });

  test('agent update prints a summary line', async () => {
    const result = await ks.cli(['agent', 'update', agent.id, '--rpm', '61']);
    assert.equal(result.code, 0, `agent update exits 0; stderr: ${result.stderr}`);
    assert.equal(
      result.stdout,
      `updated agent limited (${agent.id}): rpm_limit 61, rpd_limit 5000, tpm_limit 40000, budget_cents 2500, budget_warn_percent 80\n`,
    );
  });

  test('null and --clear clear agent limits', async () => {
    const nulled = await cliJson(ks, ['agent', 'update', agent.id, '--rpm', 'null', '--budget-cents', 'null']);
    assert.deepEqual(pick(nulled, kAgentLimits), {
      rpm_limit: null, rpd_limit: 5000, tpm_limit: 40000, budget_cents: null, budget_warn_percent: 80,
    });

    const cleared = await cliJson(ks, ['agent', 'update', agent.id, '--clear', 'rpd,tpm', '--clear', 'budget-warn-percent', '--budget-cents', '0']);
    assert.deepEqual(pick(cleared, kAgentLimits), {
      rpm_limit: null, rpd_limit: null, tpm_limit: null, budget_cents: 0, budget_warn_percent: null,
    });
  });

  test('invalid agent update arguments exit 2', async () => {
    const before = await apiExpect(ks, 'GET', `/api/v1/agents/${agent.id}`, undefined, 200);
    const cases = [
      [['agent', 'update', agent.id], /nothing to change/],
      [['agent', 'update', agent.id, '--rpm', 'ten'], /--rpm must be a whole number or the word null, not "ten"/],
      [['agent', 'update', agent.id, '--budget-cents', '-5'], /--budget-cents must be a whole number or the word null, not "-5"/],
      [['agent', 'update', agent.id, '--tpm', '1.5'], /--tpm must be a whole number or the word null/],
      [['agent', 'update', agent.id, '--clear', 'rpm', '--rpm', '5'], /--rpm is given a value and also named in --clear/],
      [['agent', 'update', agent.id, '--clear', 'budget'], /--clear names unknown limit "budget"/],
      [['agent', 'update', '--rpm', '5'], /AGENT is required/],
    ];
    for (const [args, message] of cases) {
      const result = await cliFails(ks, args, 2);
      assert.match(result.stderr, message, `keystore ${args.join(' ')}`);
    }
    const after = await apiExpect(ks, 'GET', `/api/v1/agents/${agent.id}`, undefined, 200);
    assert.deepEqual(pick(after, kAgentLimits), pick(before, kAgentLimits), 'nothing changed');
  });

  test('refused agent updates exit 1', async () => {
    const cases = [
      [['agent', 'update', agent.id, '--budget-warn-percent', '101'], /"budget_warn_percent" must be a percentage from 1 to 100.*\(invalid_request\)/],
      [['agent', 'update', agent.id, '--budget-warn-percent', '0'], /"budget_warn_percent" must be a percentage from 1 to 100/],
      [['agent', 'update', agent.id, '--rpm', '0'], /"rpm_limit" must be from 1 to 1000000000/],
      [['agent', 'update', agent.id, '--budget-cents', '1000000000001'], /"budget_cents" must be a whole number of cents/],
      [['agent', 'update', 'limited', '--rpm', '5'], /agent limited not found; to find an agent by name, also name its project \(not_found\)/],
      [['agent', 'update', 'nobody', '--project', 'limits', '--rpm', '5'], /\(not_found\)/],
    ];
    for (const [args, message] of cases) {
      const result = await cliFails(ks, args, 1);
      assert.match(result.stderr, message, `keystore ${args.join(' ')}`);
    }
  });

  test('API rejects limits of the wrong type', async () => {
    for (const body of [{ rpm_limit: '60' }, { budget_cents: 12.5 }, { budget_warn_percent: -1 }, { tpm_limit: -1 }]) {
      const response = await ks.api('PATCH', `/api/v1/agents/${agent.id}`, body);
      assert.equal(response.status, 400, `${JSON.stringify(body)} is rejected: ${response.text}`);
      assert.equal(response.json?.error?.code, 'invalid_request');
    }
  });

  test('project update sets defaults and budget', async () => {
    const updated = await cliJson(ks, [
      'project', 'update', 'limits',
      '--rpm', '120', '--rpd', '10000', '--tpm', '90000', '--budget-cents', '100000', '--budget-warn-percent', '75',
    ]);
    assert.equal(updated.id, project.id);
    assert.deepEqual(pick(updated, kProjectLimits), {
      default_rpm: 120, default_rpd: 10000, default_tpm: 90000, budget_cents: 100000, budget_warn_percent: 75,
    });

    const shown = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}`, undefined, 200);
    assert.deepEqual(pick(shown, kProjectLimits), pick(updated, kProjectLimits), 'GET shows the stored limits');
    const listed = await cliJson(ks, ['project', 'list']);
    assert.deepEqual(pick(listed.find((item) => item.id === project.id), kProjectLimits), pick(updated, kProjectLimits));

    const table = await ks.cli(['project', 'list']);
    assert.equal(table.code, 0, `project list exits 0; stderr: ${table.stderr}`);
    assert.match(table.stdout, /^ID\s+NAME\s+RPM\s+RPD\s+TPM\s+BUDGET\s+CREATED$/m);
    assert.match(table.stdout, new RegExp(`^${project.id}\\s+limits\\s+120\\s+10000\\s+90000\\s+\\$1000\\.00\\s`, 'm'));
  });

  test('null and --clear clear project limits', async () => {
    const result = await ks.cli(['project', 'update', project.id, '--rpm', 'null', '--clear', 'budget-cents,budget-warn-percent']);
    assert.equal(result.code, 0, `project update exits 0; stderr: ${result.stderr}`);
    assert.equal(
      result.stdout,
      `updated project limits (${project.id}): default_rpm -, default_rpd 10000, default_tpm 90000, budget_cents -, budget_warn_percent -\n`,
    );
    const shown = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}`, undefined, 200);
    assert.deepEqual(pick(shown, kProjectLimits), {
      default_rpm: null, default_rpd: 10000, default_tpm: 90000, budget_cents: null, budget_warn_percent: null,
    });
  });

  test('project update exit codes', async () => {
    await cliFails(ks, ['project', 'update', 'limits'], 2);
    await cliFails(ks, ['project', 'update', 'limits', '--rpd', 'many'], 2);
    await cliFails(ks, ['project', 'update', '--rpd', '5'], 2);
    await cliFails(ks, ['project', 'update', 'limits', '--clear', 'rpm', '--rpm', '1'], 2);

    const range = await cliFails(ks, ['project', 'update', 'limits', '--budget-warn-percent', '150'], 1);
    assert.match(range.stderr, /"budget_warn_percent" must be a percentage from 1 to 100.*\(invalid_request\)/);
    const missing = await cliFails(ks, ['project', 'update', 'no-such-project', '--rpm', '5'], 1);
    assert.match(missing.stderr, /project no-such-project not found \(not_found\)/);

    const shown = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}`, undefined, 200);
    assert.equal(shown.default_rpd, 10000, 'the refused updates changed nothing');
    assert.equal(shown.budget_warn_percent, null);
  });

  test('viewer cannot update limits', async () => {
    const viewer = await createAdminKey(ks, { name: 'limits-viewer', role: 'viewer' });
    const env = { KEYSTORE_ADMIN_KEY: viewer.key };
    const agentResult = await cliFails(ks, ['agent', 'update', agent.id, '--rpm', '7'], 1, { withAdminKey: false, env });
    assert.match(agentResult.stderr, /viewer role.*\(forbidden\)/);
    const projectResult = await cliFails(ks, ['project', 'update', 'limits', '--rpm', '7'], 1, { withAdminKey: false, env });
    assert.match(projectResult.stderr, /\(forbidden\)/);

    const shown = await apiExpect(ks, 'GET', `/api/v1/agents/${agent.id}`, undefined, 200);
    assert.equal(shown.rpm_limit, null);
  });
});
