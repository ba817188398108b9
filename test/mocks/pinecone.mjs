// Mock Pinecone upstream: the control plane of api.pinecone.io (list, describe and create
// indexes) and the data plane of an index host (upsert, query, describe_index_stats) on one
// server, in Pinecone's wire format. The credential is the `Api-Key` header. Query responses
// report `usage.readUnits` and upsert responses `upsertedCount`, as Pinecone does.

import { sendJson, startRecordingServer } from './recorder.mjs';

export const kPineconeReadUnits = 6;
export const kPineconeIndexName = 'agent-memory';
export const kPineconeDimension = 4;

const kStatusCodes = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
};

function errorBody(status, message) {
  return { error: { code: kStatusCodes[status] ?? 'UNKNOWN', message }, status };
}

function credentialOf(req) {
  const value = req.headers['api-key'];
  return typeof value === 'string' && value.length > 0 ? value : null;
}

// The host name Pinecone gives a serverless index: name, project id, environment.
function indexHost(name) {
  return `${name}-mock7f3.svc.aped-4627-b74a.pinecone.io`;
}

function indexModel({ name, dimension, metric = 'cosine', spec, deletion_protection: protection, tags }, ready) {
  const serverless = spec?.serverless ?? { cloud: 'aws', region: 'us-east-1' };
  return {
    name,
    vector_type: 'dense',
    metric,
    dimension,
    status: { ready, state: ready ? 'Ready' : 'Initializing' },
    host: indexHost(name),
    spec: {
      serverless: {
        cloud: serverless.cloud,
        region: serverless.region,
        read_capacity: { mode: 'OnDemand', status: { state: 'Ready' } },
      },
    },
    deletion_protection: protection ?? 'disabled',
    tags: tags ?? null,
  };
}

function createIndex({ res, json, mock }) {
  if (json === undefined || typeof json.name !== 'string' || json.name.length === 0) {
    sendJson(res, 400, errorBody(400, 'Missing required field: name'));
    return;
  }
  if (!Number.isInteger(json.dimension) || json.dimension < 1) {
    sendJson(res, 400, errorBody(400, 'Dimension must be a positive integer for a dense index'));
    return;
  }
  if (mock.indexes.has(json.name)) {
    sendJson(res, 409, errorBody(409, `Resource ${json.name} already exists`));
    return;
  }
  mock.indexes.set(json.name, indexModel(json, true));
  sendJson(res, 201, indexModel(json, false));
}

function describeIndexStats({ res, mock }) {
  const total = mock.vectors.size;
  sendJson(res, 200, {
    namespaces: total > 0 ? { __default__: { vectorCount: total } } : {},
    dimension: kPineconeDimension,
    indexFullness: 0,
    totalVectorCount: total,
    metric: 'cosine',
    vectorType: 'dense',
  });
}

function upsert({ res, json, mock }) {
  if (json === undefined || !Array.isArray(json.vectors) || json.vectors.length === 0) {
    sendJson(res, 400, errorBody(400, 'Invalid request: vectors must be a non-empty array'));
    return;
  }
  for (const vector of json.vectors) {
    if (typeof vector.id !== 'string' || !Array.isArray(vector.values)) {
      sendJson(res, 400, errorBody(400, 'Invalid request: every vector needs an id and values'));
      return;
    }
    if (vector.values.length !== kPineconeDimension) {
      sendJson(
        res,
        400,
        errorBody(400, `Vector dimension ${vector.values.length} does not match the dimension of the index ${kPineconeDimension}`),
      );
      return;
    }
  }
  for (const vector of json.vectors) {
    mock.vectors.set(vector.id, vector);
  }
  sendJson(res, 200, { upsertedCount: json.vectors.length });
}

function dot(a, b) {
  return a.reduce((sum, value, i) => sum + value * (b[i] ?? 0), 0);
}

function query({ res, json, mock }) {
  if (json === undefined || !Number.isInteger(json.topK) || json.topK < 1) {
    sendJson(res, 400, errorBody(400, 'Invalid request: topK must be a positive integer'));
    return;
  }
  if (!Array.isArray(json.vector) && typeof json.id !== 'string') {
    sendJson(res, 400, errorBody(400, 'Invalid request: exactly one of vector and id is required'));
    return;
  }
  const target = Array.isArray(json.vector) ? json.vector : mock.vectors.get(json.id)?.values ?? [];
  const matches = [...mock.vectors.values()]
    .map((vector) => ({ vector, score: dot(vector.values, target) }))
    .sort((a, b) => b.score - a.score || a.vector.id.localeCompare(b.vector.id))
    .slice(0, json.topK)
    .map(({ vector, score }) => {
      const match = { id: vector.id, score, values: json.includeValues ? vector.values : [] };
      if (json.includeMetadata && vector.metadata !== undefined) {
        match.metadata = vector.metadata;
      }
      return match;
    });
  sendJson(res, 200, {
    results: [],
    matches,
    namespace: json.namespace ?? '',
    usage: { readUnits: kPineconeReadUnits },
  });
}

function handle(ctx) {
  const { req, res, mock } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;

  if (path === '/indexes' && req.method === 'GET') {
    sendJson(res, 200, { indexes: [...mock.indexes.values()] });
    return;
  }
  if (path === '/indexes' && req.method === 'POST') {
    createIndex(ctx);
    return;
  }
  const named = /^\/indexes\/([^/]+)$/.exec(path);
  if (named !== null && req.method === 'GET') {
    const model = mock.indexes.get(decodeURIComponent(named[1]));
    if (model === undefined) {
      sendJson(res, 404, errorBody(404, `Resource ${named[1]} not found`));
      return;
    }
    sendJson(res, 200, model);
    return;
  }
  if (path === '/vectors/upsert' && req.method === 'POST') {
    upsert(ctx);
    return;
  }
  if (path === '/query' && req.method === 'POST') {
    query(ctx);
    return;
  }
  if (path === '/describe_index_stats' && (req.method === 'POST' || req.method === 'GET')) {
    describeIndexStats(ctx);
    return;
  }
  sendJson(res, 404, errorBody(404, `Not found: ${req.method} ${path}`));
}

// Starts the mock; see startRecordingServer for options and the returned handle. The mock
// starts with one ready index, kPineconeIndexName. The handle also has indexes (name to index
// model) and vectors (id to upserted vector).
export async function startMock(options = {}) {
  const mock = await startRecordingServer(
    { name: 'pinecone', credentialOf, errorBody, handle },
    options,
  );
  mock.indexes = new Map();
  mock.vectors = new Map();
  const clear = mock.clear;
  mock.clear = () => {
    clear();
    mock.reset();
  };
  mock.reset = () => {
    mock.indexes.clear();
    mock.vectors.clear();
    mock.indexes.set(
      kPineconeIndexName,
      indexModel({ name: kPineconeIndexName, dimension: kPineconeDimension }, true),
    );
  };
  mock.reset();
  return mock;
}
