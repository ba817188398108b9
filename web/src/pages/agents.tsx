// Agents page: each agent's limits, budget and kill switch, and its tokens with mint, rotate and
// revoke.

import { useRef, useState } from 'preact/hooks';
import { api, segment } from '../api';
import { Badge, Dialog, ErrorBox, Field, Loaded, useAction, useResource } from '../components';
import { dollarsFromCents, limitText, time } from '../format';
import type { Agent, CreatedToken, ListOf, Project, ProviderEntry, Token } from '../types';

type AgentDialog = { kind: 'create' } | { kind: 'edit'; agent: Agent } | { kind: 'mint'; agent: Agent } | undefined;

export function AgentsPage({ project, canEdit }: { project: Project; canEdit: boolean }) {
  const base = `/projects/${segment(project.id)}`;
  const agents = useResource(() => api<ListOf<Agent>>('GET', `${base}/agents`), project.id);
  const providers = useResource(() => api<ListOf<ProviderEntry>>('GET', `${base}/providers`), project.id);
  const [dialog, setDialog] = useState<AgentDialog>(undefined);
  const [tokenGeneration, setTokenGeneration] = useState(0);
  const action = useAction();

  const setStatus = (agent: Agent, status: Agent['status']) =>
    action.run(async () => {
      await api('PATCH', `/agents/${segment(agent.id)}`, { status });
      agents.reload();
    });

  return (
    <section aria-labelledby="agents-title">
      <div class="page-head">
        <h1 id="agents-title">Agents</h1>
        {canEdit && (
          <button type="button" class="primary" onClick={() => setDialog({ kind: 'create' })}>
            Create agent
          </button>
        )}
      </div>
      <ErrorBox error={action.error} title="The change failed" />
      <Loaded resource={agents} what="agents">
        {(list) =>
          list.data.length === 0 ? (
            <p class="card muted">No agents yet.</p>
          ) : (
            <div class="agent-list">
              {list.data.map((agent) => (
                <article class="card agent" key={agent.id} data-agent={agent.name} aria-labelledby={`agent-${agent.id}`}>
                  <div class="agent-head">
                    <h2 id={`agent-${agent.id}`}>{agent.name}</h2>
                    <Badge tone={agent.status === 'active' ? 'good' : agent.status === 'paused' ? 'warn' : 'bad'}>{agent.status}</Badge>
                    <span class="muted small">{agent.id}</span>
                  </div>
                  {canEdit && agent.status !== 'revoked' && (
                    <div class="kill-switch">
                      {agent.status === 'active' ? (
                        <button type="button" class="danger big" disabled={action.pending} aria-label={`Pause agent ${agent.name}`} onClick={() => void setStatus(agent, 'paused')}>
                          Pause agent
                        </button>
                      ) : (
                        <button type="button" class="primary big" disabled={action.pending} aria-label={`Resume agent ${agent.name}`} onClick={() => void setStatus(agent, 'active')}>
                          Resume agent
                        </button>
                      )}
                      <span class="muted small">{agent.status === 'active' ? 'Pausing refuses every request of this agent at once (403 agent_paused).' : 'Paused: every request of this agent is refused.'}</span>
                    </div>
                  )}
                  <dl class="facts">
                    <div><dt>Requests per minute</dt><dd>{limitText(agent.rpm_limit)}</dd></div>
                    <div><dt>Requests per day</dt><dd>{limitText(agent.rpd_limit)}</dd></div>
                    <div><dt>Tokens per minute</dt><dd>{limitText(agent.tpm_limit)}</dd></div>
                    <div><dt>Monthly budget</dt><dd>{agent.budget_cents && agent.budget_cents > 0 ? dollarsFromCents(agent.budget_cents) : 'none'}</dd></div>
                    <div><dt>Budget warning</dt><dd>{agent.budget_warn_percent}%</dd></div>
                  </dl>
                  {canEdit && (
                    <div class="actions">
                      <button type="button" aria-label={`Edit agent ${agent.name}`} onClick={() => setDialog({ kind: 'edit', agent })}>
                        Edit limits
                      </button>
                      <button type="button" disabled={agent.status === 'revoked'} aria-label={`Mint a token for ${agent.name}`} onClick={() => setDialog({ kind: 'mint', agent })}>
                        Mint token
                      </button>
                    </div>
                  )}
                  <TokenList agent={agent} canEdit={canEdit} generation={tokenGeneration} />
                </article>
              ))}
            </div>
          )
        }
      </Loaded>
      {(dialog?.kind === 'create' || dialog?.kind === 'edit') && (
        <AgentForm base={base} agent={dialog.kind === 'edit' ? dialog.agent : undefined} onClose={() => setDialog(undefined)} onSaved={agents.reload} />
      )}
      {dialog?.kind === 'mint' && (
        <MintDialog
          agent={dialog.agent}
          providers={(providers.data?.data ?? []).filter((provider) => provider.status === 'enabled')}
          onClose={() => setDialog(undefined)}
          onMinted={() => setTokenGeneration((value) => value + 1)}
        />
      )}
    </section>
  );
}

// Reads a limit field; empty or 0 is null, which the API reads as "no limit of its own".
function limitField(form: HTMLFormElement, name: string, scale = 1): number | null {
  const value = Number((form.elements.namedItem(name) as HTMLInputElement).value.trim() || '0');
  return value > 0 ? Math.round(value * scale) : null;
}

function AgentForm({ base, agent, onClose, onSaved }: { base: string; agent?: Agent; onClose: () => void; onSaved: () => void }) {
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const body = {
      name: (form.elements.namedItem('name') as HTMLInputElement).value.trim(),
      rpm_limit: limitField(form, 'rpm_limit'),
      rpd_limit: limitField(form, 'rpd_limit'),
      tpm_limit: limitField(form, 'tpm_limit'),
      budget_cents: limitField(form, 'budget_dollars', 100),
      budget_warn_percent: Number((form.elements.namedItem('budget_warn_percent') as HTMLInputElement).value),
    };
    void action.run(async () => {
      if (agent) {
        await api('PATCH', `/agents/${segment(agent.id)}`, body);
      } else {
        await api('POST', `${base}/agents`, body);
      }
      onSaved();
      onClose();
    });
  };
  return (
    <Dialog title={agent ? `Edit agent ${agent.name}` : 'Create agent'} onClose={onClose}>
      <form onSubmit={submit} class="form-grid">
        <Field label="Name" hint="Letters, digits, '.', '-' and '_'.">
          <input name="name" required maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" value={agent?.name} />
        </Field>
        <Field label="Requests per minute" hint="Empty or 0: no limit of its own.">
          <input name="rpm_limit" type="number" min={0} step={1} value={agent?.rpm_limit ?? ''} />
        </Field>
        <Field label="Requests per day" hint="Empty or 0: no limit of its own.">
          <input name="rpd_limit" type="number" min={0} step={1} value={agent?.rpd_limit ?? ''} />
        </Field>
        <Field label="Tokens per minute" hint="Empty or 0: no limit of its own.">
          <input name="tpm_limit" type="number" min={0} step={1} value={agent?.tpm_limit ?? ''} />
        </Field>
        <Field label="Monthly budget in US dollars" hint="Empty or 0: no budget.">
          <input name="budget_dollars" type="number" min={0} step={0.01} value={agent?.budget_cents ? agent.budget_cents / 100 : ''} />
        </Field>
        <Field label="Budget warning at percent">
          <input name="budget_warn_percent" type="number" min={1} max={100} step={1} value={agent?.budget_warn_percent ?? 80} />
        </Field>
        <ErrorBox error={action.error} title="The agent was not saved" />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            {agent ? 'Save' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const kExpiryChoices = [
  { value: '', label: 'Never' },
  { value: '1h', label: '1 hour' },
  { value: '1d', label: '1 day' },
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
  { value: '90d', label: '90 days' },
];

// Shows a newly minted or rotated token once, with a copy button. The plain token lives only in
// the caller's state, which the caller drops when this dialog closes.
function TokenShownOnce({ title, created, note, onClose }: { title: string; created: CreatedToken; note?: string; onClose: () => void }) {
  const [copied, setCopied] = useState(false);
  const tokenField = useRef<HTMLInputElement>(null);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied(true);
    } catch {
      // Without clipboard permission, select the text so that Ctrl+C copies it.
      tokenField.current?.select();
    }
  };

  return (
    <Dialog title={title} onClose={onClose}>
      <p class="warning" role="alert">
        Copy this token now. It is shown only once; Keystore stores only its hash.
      </p>
      <Field label="Agent token">
        <input ref={tokenField} class="token-value" readOnly value={created.token} onFocus={(event) => event.currentTarget.select()} />
      </Field>
      <p class="muted small">
        Token id {created.id}, ending in {created.hint}, expires {time(created.expires_at, 'never')}.
      </p>
      {note && <p class="muted small">{note}</p>}
      <div class="dialog-actions">
        <button type="button" onClick={() => void copy()}>
          {copied ? 'Copied' : 'Copy token'}
        </button>
        <button type="button" class="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </Dialog>
  );
}

// Mints a token and shows it once. The plain token lives only in this dialog's state and is
// dropped when the dialog closes.
function MintDialog({ agent, providers, onClose, onMinted }: { agent: Agent; providers: ProviderEntry[]; onClose: () => void; onMinted: () => void }) {
  const [created, setCreated] = useState<CreatedToken | undefined>(undefined);
  const action = useAction();

  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const scopes = providers
      .filter((provider) => (form.elements.namedItem(`scope-${provider.provider}`) as HTMLInputElement | null)?.checked)
      .map((provider) => `provider:${provider.provider}:*`);
    const models = (form.elements.namedItem('models') as HTMLInputElement).value
      .split(',')
      .map((model) => model.trim())
      .filter((model) => model !== '');
    const expiresIn = (form.elements.namedItem('expires_in') as HTMLSelectElement).value;
    const body: Record<string, unknown> = { scopes, models };
    if (expiresIn) {
      body.expires_in = expiresIn;
    }
    void action.run(async () => {
      setCreated(await api<CreatedToken>('POST', `/agents/${segment(agent.id)}/tokens`, body));
      onMinted();
    });
  };

  const close = () => {
    setCreated(undefined);
    onClose();
  };

  if (created) {
    return <TokenShownOnce title="Token created" created={created} onClose={close} />;
  }

  return (
    <Dialog title={`Mint a token for ${agent.name}`} onClose={close}>
      <form onSubmit={submit}>
        <fieldset>
          <legend>Allowed providers</legend>
          <p class="muted small">None checked: every provider enabled in the project.</p>
          {providers.length === 0 && <p class="muted small">No provider is enabled in this project yet.</p>}
          <div class="checks">
            {providers.map((provider) => (
              <label key={provider.provider} class="check">
                <input type="checkbox" name={`scope-${provider.provider}`} /> {provider.display_name}
              </label>
            ))}
          </div>
        </fieldset>
        <Field label="Allowed models (optional)" hint="Comma-separated, e.g. gpt-4o-mini. Empty: any model.">
          <input name="models" type="text" />
        </Field>
        <Field label="Expires after">
          <select name="expires_in">
            {kExpiryChoices.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </select>
        </Field>
        <ErrorBox error={action.error} title="The token was not created" />
        <div class="dialog-actions">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            Mint token
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function TokenList({ agent, canEdit, generation }: { agent: Agent; canEdit: boolean; generation: number }) {
  const tokens = useResource(() => api<ListOf<Token>>('GET', `/agents/${segment(agent.id)}/tokens`), `${agent.id}/${generation}`);
  const [revoking, setRevoking] = useState<Token | undefined>(undefined);
  const [rotating, setRotating] = useState<Token | undefined>(undefined);
  const action = useAction();

  const revoke = (token: Token) =>
    action.run(async () => {
      await api('POST', `/tokens/${segment(token.id)}/revoke`);
      setRevoking(undefined);
      tokens.reload();
    });

  return (
    <div class="tokens">
      <h3>Tokens</h3>
      <Loaded resource={tokens} what="tokens">
        {(list) =>
          list.data.length === 0 ? (
            <p class="muted small">No tokens.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Id</th>
                    <th scope="col">Hash ends in</th>
                    <th scope="col">Scopes</th>
                    <th scope="col">Status</th>
                    <th scope="col">Expires</th>
                    <th scope="col">Last used</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.map((token) => (
                    <tr key={token.id} data-token={token.id}>
                      <td><code>{token.id}</code></td>
                      <td><code>{token.hint}</code></td>
                      <td>{token.scopes.length > 0 ? token.scopes.join(', ') : 'all enabled providers'}{token.models.length > 0 ? ` · models ${token.models.join(', ')}` : ''}</td>
                      <td>
                        <TokenStatus token={token} />
                        {token.rotated_to && <span class="rotation small">replaced by <code>{token.rotated_to}</code></span>}
                        {token.rotated_from && <span class="rotation small">replaces <code>{token.rotated_from}</code></span>}
                      </td>
                      <td>{time(token.expires_at, 'never')}</td>
                      <td>{time(token.last_used_at, 'never')}</td>
                      <td>
                        {canEdit && token.status === 'active' && (
                          <div class="row-actions">
                            {!token.rotated_to && (
                              <button type="button" aria-label={`Rotate token ${token.id}`} onClick={() => setRotating(token)}>
                                Rotate
                              </button>
                            )}
                            <button type="button" class="danger" aria-label={`Revoke token ${token.id}`} onClick={() => setRevoking(token)}>
                              Revoke
                            </button>
                          </div>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
      {revoking && (
        <Dialog title={`Revoke token ${revoking.id}?`} onClose={() => setRevoking(undefined)}>
          <p>The next request with the token ending in {revoking.hint} is refused with 401 token_revoked, on every instance. This cannot be undone.</p>
          <ErrorBox error={action.error} title="The token was not revoked" />
          <div class="dialog-actions">
            <button type="button" onClick={() => setRevoking(undefined)}>
              Cancel
            </button>
            <button type="button" class="danger" disabled={action.pending} onClick={() => void revoke(revoking)}>
              Revoke token
            </button>
          </div>
        </Dialog>
      )}
      {rotating && <RotateDialog token={rotating} onClose={() => setRotating(undefined)} onRotated={tokens.reload} />}
    </div>
  );
}

// A token's status badge. A rotated token that still works is in its grace period, so it shows as
// expiring.
function TokenStatus({ token }: { token: Token }) {
  if (token.status !== 'active') {
    return <Badge tone="bad">{token.status}</Badge>;
  }
  if (token.rotated_to) {
    return <Badge tone="warn">expiring</Badge>;
  }
  return <Badge tone="good">active</Badge>;
}

const kGraceChoices = [
  { value: '', label: 'None' },
  { value: '10m', label: '10 minutes' },
  { value: '1h', label: '1 hour' },
  { value: '24h', label: '24 hours' },
];

// Rotates a token: mints a replacement with the same scopes, models and expiry, and shows it once.
// The old token keeps working for the chosen grace period, never past its own expiry.
function RotateDialog({ token, onClose, onRotated }: { token: Token; onClose: () => void; onRotated: () => void }) {
  const [created, setCreated] = useState<CreatedToken | undefined>(undefined);
  const [grace, setGrace] = useState('');
  const action = useAction();

  const submit = (event: Event) => {
    event.preventDefault();
    const body: Record<string, unknown> = {};
    if (grace) {
      body.grace = grace;
    }
    void action.run(async () => {
      setCreated(await api<CreatedToken>('POST', `/tokens/${segment(token.id)}/rotate`, body));
      onRotated();
    });
  };

  const close = () => {
    setCreated(undefined);
    onClose();
  };

  const graceLabel = kGraceChoices.find((choice) => choice.value === grace)?.label ?? grace;
  const oldTokenFate = grace
    ? `The old token ending in ${token.hint} keeps working for ${graceLabel} (never past its own expiry), then stops.`
    : `The old token ending in ${token.hint} stops working at once: its next request is refused with 401.`;

  if (created) {
    return <TokenShownOnce title="Token rotated" created={created} note={`It replaces ${token.id}. ${oldTokenFate}`} onClose={close} />;
  }

  return (
    <Dialog title={`Rotate token ${token.id}?`} onClose={close}>
      <form onSubmit={submit}>
        <p>A new token with the same scopes, models and expiry replaces this one and is shown once.</p>
        <Field label="Grace period for the old token">
          <select name="grace" value={grace} onChange={(event) => setGrace(event.currentTarget.value)}>
            {kGraceChoices.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </select>
        </Field>
        <p class="muted small" aria-live="polite">
          {oldTokenFate}
        </p>
        <ErrorBox error={action.error} title="The token was not rotated" />
        <div class="dialog-actions">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            Rotate token
          </button>
        </div>
      </form>
    </Dialog>
  );
}
