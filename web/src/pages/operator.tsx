// Operator area: marketplace pools with credential health, the price table and the concierge
// queue. The shell shows it only to operators; the API enforces the same rule.

import { useRef, useState } from 'preact/hooks';
import { api, segment } from '../api';
import { Badge, Dialog, ErrorBox, Field, Loaded, useAction, useResource } from '../components';
import { time } from '../format';
import type { CatalogEntry, ConciergeRequest, ListOf, PoolCredential, Price } from '../types';
import { kUnitNames } from '../types';

export function OperatorPage() {
  const catalog = useResource(() => api<ListOf<CatalogEntry>>('GET', '/catalog'), 'catalog');
  const providers = catalog.data?.data ?? [];
  return (
    <section aria-labelledby="operator-title">
      <h1 id="operator-title">Operator</h1>
      <ConciergeQueue />
      <Pools providers={providers.filter((entry) => entry.availability !== 'byok')} />
      <Prices providers={providers} />
    </section>
  );
}

// Reads a write-only secret field once and wipes it from the DOM.
function takeSecret(input: HTMLInputElement | null): string {
  if (!input) {
    return '';
  }
  const value = input.value;
  input.value = '';
  return value;
}

function Pools({ providers }: { providers: CatalogEntry[] }) {
  const pools = useResource(() => api<ListOf<PoolCredential>>('GET', '/pools'), 'pools');
  const [adding, setAdding] = useState(false);
  const action = useAction();

  const toggle = (credential: PoolCredential) =>
    action.run(async () => {
      const verb = credential.status === 'active' ? 'disable' : 'enable';
      await api('POST', `/pools/credentials/${segment(credential.id)}/${verb}`, {});
      pools.reload();
    });

  return (
    <div class="card" aria-labelledby="pools-title">
      <div class="page-head">
        <h2 id="pools-title">Marketplace pools</h2>
        <button type="button" class="primary" onClick={() => setAdding(true)}>
          Add pool credential
        </button>
      </div>
      <ErrorBox error={action.error} title="The change failed" />
      <Loaded resource={pools} what="pools">
        {(list) =>
          list.data.length === 0 ? (
            <p class="muted">No pool credentials yet.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Provider</th>
                    <th scope="col">Credential</th>
                    <th scope="col">Scope</th>
                    <th scope="col">Key</th>
                    <th scope="col">RPM</th>
                    <th scope="col">Status</th>
                    <th scope="col">Circuit</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.map((credential) => (
                    <tr key={credential.id} data-credential={credential.id}>
                      <td>{credential.provider}</td>
                      <td>
                        <code>{credential.id}</code>
                        {credential.label && <div class="muted small">{credential.label}</div>}
                      </td>
                      <td>{credential.scope === 'dedicated' ? `dedicated to ${credential.project_id}` : 'shared'}</td>
                      <td>
                        <code>{credential.key}</code>
                        <div class="muted small">fingerprint {credential.key_fingerprint}</div>
                      </td>
                      <td>{credential.rpm_limit ?? 'none'}</td>
                      <td><Badge tone={credential.status === 'active' ? 'good' : 'neutral'}>{credential.status}</Badge></td>
                      <td>
                        <Badge tone={credential.health.state === 'closed' ? 'good' : credential.health.state === 'open' ? 'bad' : 'warn'}>{credential.health.state.replace('_', '-')}</Badge>
                        <div class="muted small">
                          {credential.health.consecutive_failures} consecutive failures{credential.health.opened_at ? `, opened ${time(credential.health.opened_at)}` : ''}
                        </div>
                      </td>
                      <td>
                        <button type="button" disabled={action.pending} aria-label={`${credential.status === 'active' ? 'Disable' : 'Enable'} pool credential ${credential.id}`} onClick={() => void toggle(credential)}>
                          {credential.status === 'active' ? 'Disable' : 'Enable'}
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
      {adding && <AddPoolCredential providers={providers} onClose={() => setAdding(false)} onSaved={pools.reload} />}
    </div>
  );
}

function AddPoolCredential({ providers, onClose, onSaved }: { providers: CatalogEntry[]; onClose: () => void; onSaved: () => void }) {
  const keyInput = useRef<HTMLInputElement>(null);
  const [scope, setScope] = useState<'shared' | 'dedicated'>('shared');
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null)?.value.trim() ?? '';
    const provider = value('provider');
    const body: Record<string, unknown> = { scope, api_key: takeSecret(keyInput.current) };
    if (scope === 'dedicated') {
      body.project = value('project');
    }
    if (value('label')) {
      body.label = value('label');
    }
    if (value('rpm_limit')) {
      body.rpm_limit = Number(value('rpm_limit'));
    }
    void action.run(async () => {
      await api('POST', `/pools/${segment(provider)}/credentials`, body);
      onSaved();
      onClose();
    });
  };
  return (
    <Dialog title="Add a pool credential" onClose={onClose}>
      <form onSubmit={submit} autocomplete="off">
        <Field label="Provider">
          <select name="provider" required>
            {providers.map((provider) => (
              <option key={provider.id} value={provider.id}>
                {provider.display_name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Scope">
          <select name="scope" value={scope} onChange={(event) => setScope(event.currentTarget.value as 'shared' | 'dedicated')}>
            <option value="shared">Shared by every project</option>
            <option value="dedicated">Dedicated to one project</option>
          </select>
        </Field>
        {scope === 'dedicated' && (
          <Field label="Project id or name">
            <input name="project" required />
          </Field>
        )}
        <Field label="API key" hint="Write-only: stored encrypted and never shown again.">
          <input ref={keyInput} name="api_key" type="password" autocomplete="new-password" spellcheck={false} required />
        </Field>
        <Field label="Label (optional)">
          <input name="label" maxLength={64} />
        </Field>
        <Field label="Requests per minute (optional)">
          <input name="rpm_limit" type="number" min={1} step={1} />
        </Field>
        <ErrorBox error={action.error} title="The credential was not added" />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            Add credential
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function Prices({ providers }: { providers: CatalogEntry[] }) {
  const prices = useResource(() => api<ListOf<Price>>('GET', '/prices/current'), 'prices');
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement).value.trim();
    const body: Record<string, string> = { provider: value('provider'), unit: value('unit'), usd_per_million: value('usd_per_million') };
    if (value('model')) {
      body.model = value('model');
    }
    if (value('effective_from')) {
      body.effective_from = value('effective_from');
    }
    void action.run(async () => {
      await api('POST', '/prices', body);
      form.reset();
      prices.reload();
    });
  };
  return (
    <div class="card" aria-labelledby="prices-title">
      <h2 id="prices-title">Prices in effect</h2>
      <Loaded resource={prices} what="prices">
        {(list) =>
          list.data.length === 0 ? (
            <p class="muted">No prices yet; marketplace usage is billed at $0 until a price exists.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Provider</th>
                    <th scope="col">Model</th>
                    <th scope="col">Unit</th>
                    <th scope="col">USD per million</th>
                    <th scope="col">Effective from</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.map((price) => (
                    <tr key={price.id}>
                      <td>{price.provider}</td>
                      <td>{price.model ?? 'any'}</td>
                      <td>{price.unit}</td>
                      <td>${price.usd_per_million}</td>
                      <td>{time(price.effective_from)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
      <form class="inline-form" onSubmit={submit} aria-label="Add a price">
        <Field label="Provider">
          <select name="provider" required>
            {providers.map((provider) => (
              <option key={provider.id} value={provider.id}>
                {provider.display_name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Model (optional)">
          <input name="model" />
        </Field>
        <Field label="Unit">
          <select name="unit" required>
            {kUnitNames.map((unit) => (
              <option key={unit} value={unit}>
                {unit}
              </option>
            ))}
          </select>
        </Field>
        <Field label="USD per million units">
          <input name="usd_per_million" required inputMode="decimal" pattern="[0-9]+(\.[0-9]+)?" />
        </Field>
        <Field label="Effective from (optional)" hint="RFC 3339 time or YYYY-MM-DD; default now.">
          <input name="effective_from" />
        </Field>
        <button type="submit" class="primary" disabled={action.pending}>
          Add price
        </button>
      </form>
      <ErrorBox error={action.error} title="The price was not added" />
    </div>
  );
}

type QueueDialog = { kind: 'fulfill' | 'reject'; request: ConciergeRequest } | undefined;

function ConciergeQueue() {
  const queue = useResource(() => api<ListOf<ConciergeRequest>>('GET', '/concierge?status=open'), 'concierge');
  const [dialog, setDialog] = useState<QueueDialog>(undefined);
  return (
    <div class="card" aria-labelledby="concierge-title">
      <h2 id="concierge-title">Concierge queue</h2>
      <Loaded resource={queue} what="the concierge queue">
        {(list) =>
          list.data.length === 0 ? (
            <p class="muted">No open requests.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Request</th>
                    <th scope="col">Project</th>
                    <th scope="col">Provider</th>
                    <th scope="col">Note</th>
                    <th scope="col">Filed</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.map((request) => (
                    <tr key={request.id} data-request={request.id}>
                      <td><code>{request.id}</code></td>
                      <td>{request.project_id}</td>
                      <td>{request.provider}</td>
                      <td>{request.note ?? '—'}</td>
                      <td>{time(request.created_at)}</td>
                      <td>
                        <div class="actions">
                          <button type="button" class="primary" aria-label={`Fulfil concierge request ${request.id}`} onClick={() => setDialog({ kind: 'fulfill', request })}>
                            Fulfil
                          </button>
                          <button type="button" class="danger" aria-label={`Reject concierge request ${request.id}`} onClick={() => setDialog({ kind: 'reject', request })}>
                            Reject
                          </button>
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
      {dialog?.kind === 'fulfill' && <FulfillDialog request={dialog.request} onClose={() => setDialog(undefined)} onDone={queue.reload} />}
      {dialog?.kind === 'reject' && <RejectDialog request={dialog.request} onClose={() => setDialog(undefined)} onDone={queue.reload} />}
    </div>
  );
}

function FulfillDialog({ request, onClose, onDone }: { request: ConciergeRequest; onClose: () => void; onDone: () => void }) {
  const keyInput = useRef<HTMLInputElement>(null);
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const label = (form.elements.namedItem('label') as HTMLInputElement).value.trim();
    const body: Record<string, string> = { api_key: takeSecret(keyInput.current) };
    if (label) {
      body.label = label;
    }
    void action.run(async () => {
      await api('POST', `/concierge/${segment(request.id)}/fulfill`, body);
      onDone();
      onClose();
    });
  };
  return (
    <Dialog title={`Fulfil ${request.provider} for ${request.project_id}`} onClose={onClose}>
      <form onSubmit={submit} autocomplete="off">
        <p class="muted">The key becomes a credential dedicated to this project; the project can then switch {request.provider} to Marketplace.</p>
        <Field label="API key" hint="Write-only: stored encrypted and never shown again.">
          <input ref={keyInput} name="api_key" type="password" autocomplete="new-password" spellcheck={false} required />
        </Field>
        <Field label="Label (optional)">
          <input name="label" maxLength={64} />
        </Field>
        <ErrorBox error={action.error} title="The request was not fulfilled" />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            Fulfil request
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function RejectDialog({ request, onClose, onDone }: { request: ConciergeRequest; onClose: () => void; onDone: () => void }) {
  const [reason, setReason] = useState('');
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      await api('POST', `/concierge/${segment(request.id)}/reject`, { reason });
      onDone();
      onClose();
    });
  };
  return (
    <Dialog title={`Reject ${request.provider} for ${request.project_id}`} onClose={onClose}>
      <form onSubmit={submit}>
        <Field label="Reason, shown to the project">
          <textarea name="reason" rows={3} required value={reason} onInput={(event) => setReason(event.currentTarget.value)} />
        </Field>
        <ErrorBox error={action.error} title="The request was not rejected" />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="danger" disabled={action.pending}>
            Reject request
          </button>
        </div>
      </form>
    </Dialog>
  );
}
