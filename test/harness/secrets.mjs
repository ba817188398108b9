// Test provider keys and the search for secrets in captured bytes: the plaintext and every
// base64 and base64url encoding that can appear, whatever the secret's byte offset in the
// encoded data.

export const kOpenAiKey = 'sk-test-OPENAI-0001';
export const kAnthropicKey = 'sk-ant-test-0001';
export const kResendKey = 're_test_0001';
export const kAllProviderKeys = Object.freeze({
  openai: kOpenAiKey,
  anthropic: kAnthropicKey,
  resend: kResendKey,
});

// Base64 encodes 3 bytes into 4 characters, so a secret inside a larger encoded buffer shows as
// one of three character strings depending on its offset modulo 3. Each needle holds only the
// whole 3-byte groups of the secret that encode independently of the bytes around it.
function base64Needles(secret) {
  const bytes = Buffer.from(secret, 'utf8');
  const needles = [];
  for (let skip = 0; skip < 3; skip += 1) {
    const usable = Math.floor((bytes.length - skip) / 3) * 3;
    if (usable < 9) {
      continue;
    }
    const encoded = bytes.subarray(skip, skip + usable).toString('base64');
    needles.push({ form: `base64 (offset ${skip})`, text: encoded });
    const urlSafe = encoded.replaceAll('+', '-').replaceAll('/', '_');
    if (urlSafe !== encoded) {
      needles.push({ form: `base64url (offset ${skip})`, text: urlSafe });
    }
  }
  return needles;
}

// The forms of a secret to search for: plaintext, percent-encoded when that differs, base64.
export function secretNeedles(secret) {
  const needles = [{ form: 'plaintext', text: secret }];
  const percent = encodeURIComponent(secret);
  if (percent !== secret) {
    needles.push({ form: 'percent-encoded', text: percent });
  }
  return needles.concat(base64Needles(secret));
}

// Searches `haystack` (Buffer or string) for every form of every secret in `secrets`
// ({label: secret}). Returns [{label, form, offset}] for each hit.
export function findSecrets(haystack, secrets) {
  const bytes = Buffer.isBuffer(haystack) ? haystack : Buffer.from(String(haystack), 'utf8');
  const hits = [];
  for (const [label, secret] of Object.entries(secrets)) {
    for (const needle of secretNeedles(secret)) {
      const offset = bytes.indexOf(Buffer.from(needle.text, 'utf8'));
      if (offset !== -1) {
        hits.push({ label, form: needle.form, offset });
      }
    }
  }
  return hits;
}

// Whether the text contains any whole secret as plaintext.
export function containsSecret(text, secret) {
  return Buffer.from(String(text)).includes(Buffer.from(secret));
}

// Keys of the providers added with the marketplace: a BYOK key each, and the key the operator
// provisions in the pool (shared, or dedicated through a concierge request).
export const kGroqKey = 'gsk_test_BYOK_0001';
export const kGroqPoolKey = 'gsk_test_POOL_0002';
export const kPineconeKey = 'pcsk_test_BYOK_0001';
export const kPineconePoolKey = 'pcsk_test_POOL_0002';
export const kNeonPoolKey = 'napi_test_POOL_0002';
export const kStripeKey = 'sk_test_BYOK_STRIPE_0001';
export const kTavilyKey = 'tvly-test-BYOK-0001';
export const kOpenAiPoolKey = 'sk-test-OPENAI-POOL-0002';
export const kAnthropicPoolKey = 'sk-ant-test-POOL-0002';
export const kResendPoolKey = 're_test_POOL_0002';

// Twilio credentials have two fields. The account SID is not secret but must reach Twilio in
// the path and the Basic user name. The agent has only a placeholder SID.
export const kTwilioByok = Object.freeze({
  account_sid: 'AC0123456789abcdef0123456789abcd01',
  auth_token: 'twilio-test-auth-BYOK-0001',
});
export const kTwilioPool = Object.freeze({
  account_sid: 'ACfedcba9876543210fedcba9876543202',
  auth_token: 'twilio-test-auth-POOL-0002',
});
export const kTwilioPlaceholderSid = 'AC00000000000000000000000000000000';
