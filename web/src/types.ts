// Shapes of the management API responses the dashboard reads, as described by
// src/admin/openapi.json and the sign-in contract of /api/v1/auth.

export interface Membership {
  organization_id: string;
  organization_name: string;
  role: 'owner' | 'admin' | 'member' | 'viewer';
}

export interface Session {
  user: { id: string; email: string; is_operator: boolean };
  memberships: Membership[];
  csrf_token: string;
  expires_at: string;
}

export interface Project {
  id: string;
  name: string;
  organization_id: string;
  default_rpm: number;
  default_rpd: number;
  default_tpm: number;
  budget_cents: number;
  budget_warn_percent: number;
  created_at: string;
}

export type Availability = 'marketplace' | 'concierge' | 'both' | 'byok';
export type Mode = 'byok' | 'marketplace' | '';

export interface ProviderEntry {
  provider: string;
  display_name: string;
  category: string;
  availability: Availability;
  mode: Mode;
  status: 'enabled' | 'disabled' | 'not_configured';
  key: string | null;
  key_fingerprint: string | null;
  key_set_at: string | null;
  key_label: string | null;
}

export interface Agent {
  id: string;
  project_id: string;
  name: string;
  status: 'active' | 'paused' | 'revoked';
  rpm_limit: number | null;
  rpd_limit: number | null;
  tpm_limit: number | null;
  budget_cents: number | null;
  budget_warn_percent: number;
  created_at: string;
}

export interface Token {
  id: string;
  agent_id: string;
  project_id: string;
  hint: string;
  scopes: string[];
  models: string[];
  status: 'active' | 'expired' | 'revoked';
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
  last_used_at: string | null;
  // The token this one replaced, and the token that replaced it, by rotation.
  rotated_from: string | null;
  rotated_to: string | null;
}

export interface CreatedToken extends Token {
  token: string;
}

export interface Units {
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  requests: number;
  emails: number;
  messages: number;
  read_units: number;
  write_units: number;
}

export interface UsageRow {
  key: string;
  requests: number;
  units: Units;
  cost_micros: number;
  billable_micros: number;
  byok_micros: number;
}

export interface UsageReport {
  project_id: string;
  agent_id: string | null;
  group_by: 'day' | 'provider' | 'agent' | 'model';
  since: string;
  until: string;
  data: UsageRow[];
  total: Omit<UsageRow, 'key'>;
}

export interface InvoiceLine {
  provider: string;
  model: string | null;
  unit: keyof Units;
  units: number;
  micros_per_million: number;
  usd_per_million: string;
  cost_micros: number;
  billed_micros: number;
  mode: 'byok' | 'marketplace';
}

export interface Invoice {
  project_id: string;
  month: string;
  period_start: string;
  period_end: string;
  lines: InvoiceLine[];
  total_billed_micros: number;
  total_list_price_micros: number;
}

export interface PoolCredential {
  id: string;
  provider: string;
  scope: 'shared' | 'dedicated';
  project_id: string | null;
  status: 'active' | 'disabled';
  label: string | null;
  key: string;
  key_fingerprint: string;
  rpm_limit: number | null;
  created_at: string;
  health: { state: 'closed' | 'open' | 'half_open'; consecutive_failures: number; opened_at: string | null };
}

export interface Price {
  id: number;
  provider: string;
  model: string | null;
  unit: keyof Units;
  usd_per_million: string;
  micros_per_million: number;
  effective_from: string;
  created_at: string;
}

export interface ConciergeRequest {
  id: string;
  project_id: string;
  provider: string;
  note: string | null;
  status: 'open' | 'fulfilled' | 'rejected';
  reason: string | null;
  credential_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface CatalogEntry {
  id: string;
  display_name: string;
  category: string;
  availability: Availability;
}

export interface ListOf<T> {
  data: T[];
}

export const kUnitNames: (keyof Units)[] = [
  'input_tokens',
  'cached_input_tokens',
  'output_tokens',
  'requests',
  'emails',
  'messages',
  'read_units',
  'write_units',
];

export interface AuditEntry {
  seq: number;
  id: string;
  time: string;
  organization_id: string;
  project_id: string | null;
  actor: string;
  actor_kind: string;
  action: string;
  target: string;
  source_address: string;
  request_id: string;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface AuditEntryPage {
  data: AuditEntry[];
  next_cursor: string | null;
}

// entries, first_bad_seq and problem are present only for operators.
export interface AuditVerification {
  ok: boolean;
  entries?: number;
  first_bad_seq?: number;
  problem?: 'edited' | 'removed' | 'reordered';
}

// The event types a webhook endpoint can subscribe to, in the order of the API's Webhook.events enum.
export const kWebhookEventTypes = [
  'agent.created',
  'agent.paused',
  'agent.deleted',
  'token.revoked',
  'budget.warning',
  'budget.exceeded',
  'rate_limited',
  'provider.circuit_opened',
  'provider.circuit_closed',
  'credential.rotated',
  'concierge.updated',
  'webhook.test',
] as const;

export type WebhookEventType = (typeof kWebhookEventTypes)[number];

export interface Webhook {
  id: string;
  project_id: string;
  url: string;
  description: string;
  events: WebhookEventType[];
  status: 'active' | 'disabled';
  created_at: string;
  updated_at: string;
}

// The creation and rotation responses: the only ones that carry the signing secret.
export interface WebhookWithSecret extends Webhook {
  secret: string;
}

export interface WebhookDelivery {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: WebhookEventType;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string;
  created_at: string;
  delivered_at: string | null;
}

export interface WebhookDeliveryPage {
  data: WebhookDelivery[];
  next_cursor: string | null;
}
