// Mock Neon upstream: the projects collection of the Neon API v2 (list and create) under
// /api/v2, in the wire format of console.neon.tech. The credential is
// `Authorization: Bearer <key>`.

import { randomBytes } from 'node:crypto';

import { bearerCredential, sendJson, startRecordingServer } from './recorder.mjs';

const kCreatedAt = '2026-01-01T00:00:00Z';
const kRegions = new Set(['aws-us-east-1', 'aws-us-east-2', 'aws-us-west-2', 'aws-eu-central-1', 'azure-eastus2']);

function errorBody(status, message) {
  const codes = { 400: 'BAD_REQUEST', 401: '', 404: 'NOT_FOUND', 409: 'CONFLICT', 429: 'TOO_MANY_REQUESTS' };
  return { code: codes[status] ?? 'INTERNAL_ERROR', message };
}

// Neon project ids are adjective-noun-number slugs such as `misty-sun-12345678`.
function projectId() {
  return `mock-project-${randomBytes(4).readUInt32BE(0) % 100000000}`;
}

function projectResource(id, { name, region_id: regionId = 'aws-us-east-2', pg_version: pgVersion = 17 }) {
  const host = `${regionId.replace(/^aws-/, '')}.aws.neon.tech`;
  return {
    id,
    platform_id: 'aws',
    region_id: regionId,
    name: name ?? id,
    provisioner: 'k8s-neonvm',
    default_endpoint_settings: { autoscaling_limit_min_cu: 0.25, autoscaling_limit_max_cu: 2, suspend_timeout_seconds: 0 },
    settings: { allowed_ips: { ips: [], protected_branches_only: false }, enable_logical_replication: false },
    pg_version: pgVersion,
    proxy_host: host,
    branch_logical_size_limit: 512,
    branch_logical_size_limit_bytes: 536870912,
    store_passwords: true,
    active_time: 0,
    cpu_used_sec: 0,
    creation_source: 'console',
    history_retention_seconds: 86400,
    created_at: kCreatedAt,
    updated_at: kCreatedAt,
    synthetic_storage_size: 0,
    consumption_period_start: kCreatedAt,
    consumption_period_end: '2026-02-01T00:00:00Z',
    owner_id: 'mock-owner-0001',
    org_id: 'org-mock-0001',
  };
}

function createdProject(project) {
  const branchId = `br-mock-${project.id.slice(-6)}`;
  const endpointHost = `ep-mock-${project.id.slice(-6)}.${project.proxy_host}`;
  const password = 'npg_mockpassword01';
  return {
    project,
    connection_uris: [
      {
        connection_uri: `postgresql://neondb_owner:${password}@${endpointHost}/neondb?sslmode=require`,
        connection_parameters: {
          database: 'neondb',
          password,
          role: 'neondb_owner',
          host: endpointHost,
          pooler_host: endpointHost.replace(/^(ep-[^.]+)/, '$1-pooler'),
        },
      },
    ],
    roles: [{ branch_id: branchId, name: 'neondb_owner', password, protected: false, created_at: kCreatedAt, updated_at: kCreatedAt }],
    databases: [{ id: 1, branch_id: branchId, name: 'neondb', owner_name: 'neondb_owner', created_at: kCreatedAt, updated_at: kCreatedAt }],
    operations: [
      {
        id: '00000000-0000-4000-8000-000000000001',
        project_id: project.id,
        branch_id: branchId,
        action: 'create_timeline',
        status: 'running',
        failures_count: 0,
        created_at: kCreatedAt,
        updated_at: kCreatedAt,
        total_duration_ms: 0,
      },
    ],
    branch: {
      id: branchId,
      project_id: project.id,
      name: 'main',
      current_state: 'init',
      pending_state: 'ready',
      state_changed_at: kCreatedAt,
      creation_source: 'console',
      primary: true,
      default: true,
      protected: false,
      cpu_used_sec: 0,
      compute_time_seconds: 0,
      active_time_seconds: 0,
      written_data_bytes: 0,
      data_transfer_bytes: 0,
      created_at: kCreatedAt,
      updated_at: kCreatedAt,
    },
    endpoints: [],
  };
}

function createProject({ res, json, mock }) {
  const spec = json?.project ?? {};
  if (typeof spec !== 'object' || spec === null) {
    sendJson(res, 400, errorBody(400, 'project must be an object'));
    return;
  }
  if (spec.region_id !== undefined && !kRegions.has(spec.region_id)) {
    sendJson(res, 400, errorBody(400, `region_id ${spec.region_id} is not supported`));
    return;
  }
  const project = projectResource(projectId(), spec);
  mock.projects.push(project);
  sendJson(res, 201, createdProject(project), { 'x-neon-ret-request-id': `mock-${randomBytes(8).toString('hex')}` });
}

function listProjects({ req, res, mock }) {
  const url = new URL(req.url, 'http://mock');
  const limit = Number(url.searchParams.get('limit') ?? 10);
  if (!Number.isInteger(limit) || limit < 1 || limit > 400) {
    sendJson(res, 400, errorBody(400, 'limit must be between 1 and 400'));
    return;
  }
  const search = url.searchParams.get('search');
  const projects = mock.projects
    .filter((project) => search === null || project.name.includes(search) || project.id === search)
    .slice(0, limit);
  sendJson(res, 200, {
    projects,
    pagination: { cursor: projects.at(-1)?.id ?? '' },
    applications: {},
    integrations: {},
  });
}

function handle(ctx) {
  const { req, res } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;

  if (path === '/api/v2/projects' && req.method === 'GET') {
    listProjects(ctx);
    return;
  }
  if (path === '/api/v2/projects' && req.method === 'POST') {
    createProject(ctx);
    return;
  }
  sendJson(res, 404, errorBody(404, 'not found'));
}

// Starts the mock; see startRecordingServer for options and the returned handle. The handle
// also has projects, the project resources it holds, in creation order.
export async function startMock(options = {}) {
  const mock = await startRecordingServer(
    { name: 'neon', credentialOf: bearerCredential, errorBody, handle },
    options,
  );
  mock.projects = [];
  const clear = mock.clear;
  mock.clear = () => {
    clear();
    mock.projects.length = 0;
  };
  return mock;
}
