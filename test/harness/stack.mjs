// One test setup: the three mock provider upstreams, a keystore server pointing at them, and a
// project with all three provider keys stored, one agent and one unrestricted token.

import { startMock as startAnthropic } from '../mocks/anthropic.mjs';
import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { startMock as startResend } from '../mocks/resend.mjs';
import { provision, startKeystore } from './keystore.mjs';
import { kAllProviderKeys } from './secrets.mjs';

// Starts the mocks and the server. Options: keystore (startKeystore options, upstreams added),
// keys (default: all three test keys), scopes, provision (false to skip the project setup).
// Returns {mocks, ks, project, close(), clearMocks()}; project is provision()'s result.
export async function startStack(options = {}) {
  const mocks = {
    openai: await startOpenAi({ expectedCredential: kAllProviderKeys.openai }),
    anthropic: await startAnthropic({ expectedCredential: kAllProviderKeys.anthropic }),
    resend: await startResend({ expectedCredential: kAllProviderKeys.resend }),
  };
  const upstreams = {
    openai: mocks.openai.url,
    anthropic: mocks.anthropic.url,
    resend: mocks.resend.url,
  };
  const stack = {
    mocks,
    ks: undefined,
    project: undefined,
    clearMocks() {
      for (const mock of Object.values(mocks)) {
        mock.clear();
        mock.setBehavior({});
      }
    },
    async close() {
      await stack.ks?.close();
      await Promise.all(Object.values(mocks).map((mock) => mock.close()));
    },
  };
  try {
    stack.ks = await startKeystore({ ...options.keystore, upstreams });
    if (options.provision !== false) {
      stack.project = await provision(stack.ks, {
        keys: options.keys ?? kAllProviderKeys,
        scopes: options.scopes ?? [],
      });
    }
  } catch (error) {
    await stack.close();
    throw error;
  }
  return stack;
}

// Total requests the mocks recorded.
export function upstreamRequestCount(mocks) {
  return Object.values(mocks).reduce((sum, mock) => sum + mock.requests.length, 0);
}

// Total connections the mocks accepted.
export function upstreamConnectionCount(mocks) {
  return Object.values(mocks).reduce((sum, mock) => sum + mock.connections, 0);
}
