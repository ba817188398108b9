// Providers page: the catalog with this project's settings, with each provider's tier, mode, status
// and masked key, and the actions its tier allows.

import type { JSX } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { api, segment } from '../api';
import { Badge, Dialog, ErrorBox, Field, Loaded, useAction, useResource } from '../components';
import { time } from '../format';
import type { ConciergeRequest, ListOf, Mode, Project, ProviderEntry } from '../types';

const kTierText: Record<ProviderEntry['availability'], string> = {
  both: 'BYOK or Marketplace',
  byok: 'BYOK only',
  marketplace: 'Marketplace only',
  concierge: 'BYOK or Concierge',
};

type DialogState =
  | { kind: 'key'; provider: ProviderEntry }
  | { kind: 'mode'; provider: ProviderEntry; mode: Exclude<Mode, ''> }
  | { kind: 'concierge'; provider: ProviderEntry }
  | undefined;

export function ProvidersPage({ project, canManage, canRequest }: { project: Project; canManage: boolean; canRequest: boolean }) {
  const base = `/projects/${segment(project.id)}`;
  const providers = useResource(() => api<ListOf<ProviderEntry>>('GET', `${base}/providers`), project.id);
  const concierge = useResource(() => api<ListOf<ConciergeRequest>>('GET', `${base}/concierge`), project.id);
  const [dialog, setDialog] = useState<DialogState>(undefined);
  const action = useAction();

  const reload = () => {
    providers.reload();
    concierge.reload();
  };
  const patch = (provider: ProviderEntry, body: Record<string, string>) =>
    action.run(async () => {
      await api('PATCH', `${base}/providers/${segment(provider.provider)}`, body);
      reload();
    });

  return (
    <section aria-labelledby="providers-title">
      <h1 id="providers-title">Providers</h1>
      <p class="muted">
        Project <strong>{project.name}</strong>. BYOK keys are billed by the provider; Marketplace usage is billed by Keystore at the operator's prices.
      </p>
      <ErrorBox error={action.error} title="The change failed" />
      <Loaded resource={providers} what="providers">
        {(list) => (
          <div class="table-wrap">
            <table class="providers">
              <caption class="visually-hidden">Providers of project {project.name}</caption>
              <thead>
                <tr>
                  <th scope="col">Provider</th>
                  <th scope="col">Tier</th>
                  <th scope="col">Mode</th>
                  <th scope="col">Status</th>
                  <th scope="col">BYOK key</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((provider) => (
                  <ProviderRow
                    key={provider.provider}
                    provider={provider}
                    requests={(concierge.data?.data ?? []).filter((request) => request.provider === provider.provider)}
                    canManage={canManage}
                    canRequest={canRequest}
                    pending={action.pending}
                    onDialog={setDialog}
                    onPatch={patch}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      {dialog?.kind === 'key' && <KeyDialog base={base} provider={dialog.provider} onClose={() => setDialog(undefined)} onSaved={reload} />}
      {dialog?.kind === 'mode' && <ModeDialog base={base} provider={dialog.provider} mode={dialog.mode} onClose={() => setDialog(undefined)} onSaved={reload} />}
      {dialog?.kind === 'concierge' && <ConciergeDialog base={base} provider={dialog.provider} onClose={() => setDialog(undefined)} onSaved={reload} />}
    </section>
  );
}

function statusBadge(provider: ProviderEntry) {
  if (provider.status === 'enabled') {
    return <Badge tone="good">enabled</Badge>;
  }
  if (provider.status === 'disabled') {
    return <Badge tone="bad">disabled</Badge>;
  }
  return <Badge tone="neutral">not configured</Badge>;
}

interface RowProps {
  provider: ProviderEntry;
  requests: ConciergeRequest[];
  canManage: boolean;
  canRequest: boolean;
  pending: boolean;
  onDialog: (state: DialogState) => void;
  onPatch: (provider: ProviderEntry, body: Record<string, string>) => void;
}

function ProviderRow({ provider, requests, canManage, canRequest, pending, onDialog, onPatch }: RowProps) {
  const tier = provider.availability;
  const takesKey = tier !== 'marketplace';
  const fulfilled = requests.some((request) => request.status === 'fulfilled');
  const open = requests.find((request) => request.status === 'open');
  const marketplaceAllowed = tier === 'both' || tier === 'marketplace' || (tier === 'concierge' && fulfilled);
  const name = provider.display_name;
  const configured = provider.status !== 'not_configured';
  const inMarketplace = provider.mode === 'marketplace';

  const actions: JSX.Element[] = [];
  if (canManage && takesKey) {
    actions.push(
      <button type="button" key="key" disabled={pending} aria-label={`${provider.key ? 'Replace' : 'Set'} the BYOK key of ${name}`} onClick={() => onDialog({ kind: 'key', provider })}>
        {provider.key ? 'Replace key' : 'Set BYOK key'}
      </button>,
    );
  }
  if (canManage && marketplaceAllowed && !(inMarketplace && provider.status === 'enabled')) {
    const label = configured && provider.mode === 'byok' ? 'Switch to Marketplace' : 'Enable Marketplace';
    actions.push(
      <button type="button" key="market" disabled={pending} aria-label={`${label} for ${name}`} onClick={() => onDialog({ kind: 'mode', provider, mode: 'marketplace' })}>
        {label}
      </button>,
    );
  }
  if (canManage && takesKey && inMarketplace && provider.key) {
    actions.push(
      <button type="button" key="byok" disabled={pending} aria-label={`Switch ${name} to BYOK`} onClick={() => onDialog({ kind: 'mode', provider, mode: 'byok' })}>
        Switch to BYOK
      </button>,
    );
  }
  if (canManage && provider.status === 'enabled') {
    actions.push(
      <button type="button" key="disable" class="danger" disabled={pending} aria-label={`Disable ${name}`} onClick={() => onPatch(provider, { status: 'disabled' })}>
        Disable
      </button>,
    );
  }
  if (canManage && provider.status === 'disabled') {
    actions.push(
      <button type="button" key="enable" disabled={pending} aria-label={`Enable ${name}`} onClick={() => onPatch(provider, { status: 'enabled' })}>
        Enable
      </button>,
    );
  }
  if (canRequest && tier === 'concierge' && !fulfilled && !open) {
    actions.push(
      <button type="button" key="concierge" disabled={pending} aria-label={`Request ${name} through the concierge`} onClick={() => onDialog({ kind: 'concierge', provider })}>
        Request concierge
      </button>,
    );
  }

  return (
    <tr data-provider={provider.provider}>
      <th scope="row">
        {name}
        <div class="muted small">{provider.category}</div>
      </th>
      <td>{kTierText[tier]}</td>
      <td>{configured ? provider.mode : '—'}</td>
      <td>
        {statusBadge(provider)}
        {open && <div class="small">concierge request open</div>}
        {fulfilled && tier === 'concierge' && <div class="small">concierge fulfilled</div>}
      </td>
      <td>
        {provider.key ? (
          <div class="key-cell">
            <code class="masked-key">{provider.key}</code>
            <div class="muted small">fingerprint {provider.key_fingerprint}</div>
            <div class="muted small">set {time(provider.key_set_at)}{provider.key_label ? ` · ${provider.key_label}` : ''}</div>
          </div>
        ) : (
          <span class="muted">{takesKey ? 'no key' : 'not used'}</span>
        )}
      </td>
      <td>
        <div class="actions">{actions.length > 0 ? actions : <span class="muted small">none</span>}</div>
      </td>
    </tr>
  );
}

interface DialogProps {
  base: string;
  provider: ProviderEntry;
  onClose: () => void;
  onSaved: () => void;
}

// Stores a BYOK key. The field is write-only: its value is read once on submit and then wiped
// from the DOM, whatever the outcome.
function KeyDialog({ base, provider, onClose, onSaved }: DialogProps) {
  const keyInput = useRef<HTMLInputElement>(null);
  const [label, setLabel] = useState('');
  const action = useAction();
  const keepsMarketplace = provider.mode === 'marketplace' && provider.status !== 'not_configured';

  const submit = (event: Event) => {
    event.preventDefault();
    const input = keyInput.current;
    if (!input) {
      return;
    }
    const apiKey = input.value;
    input.value = '';
    void action.run(async () => {
      const path = `${base}/providers/${segment(provider.provider)}`;
      if (keepsMarketplace) {
        await api('PUT', `${path}/key`, label ? { api_key: apiKey, label } : { api_key: apiKey });
      } else {
        const body: Record<string, string> = { api_key: apiKey, mode: 'byok', status: 'enabled' };
        if (label) {
          body.label = label;
        }
        await api('PATCH', path, body);
      }
      onSaved();
      onClose();
    });
  };

  return (
    <Dialog title={`BYOK key for ${provider.display_name}`} onClose={onClose}>
      <form onSubmit={submit} autocomplete="off">
        <p class="muted">
          The key is encrypted before it is stored and can never be read back; the dashboard shows only a mask and a fingerprint.
          {keepsMarketplace ? ' The project stays in Marketplace mode until you switch it to BYOK.' : ' The provider is enabled in BYOK mode.'}
        </p>
        <Field label="API key">
          <input ref={keyInput} name="api_key" type="password" autocomplete="new-password" spellcheck={false} required />
        </Field>
        <Field label="Label (optional)" hint="A name for this key, shown next to its mask.">
          <input name="label" type="text" value={label} onInput={(event) => setLabel(event.currentTarget.value)} maxLength={64} />
        </Field>
        <ErrorBox error={action.error} title="The key was not stored" />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            {action.pending ? 'Saving…' : 'Save key'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function ModeDialog({ base, provider, mode, onClose, onSaved }: DialogProps & { mode: Exclude<Mode, ''> }) {
  const action = useAction();
  const confirm = () =>
    action.run(async () => {
      await api('PATCH', `${base}/providers/${segment(provider.provider)}`, { mode, status: 'enabled' });
      onSaved();
      onClose();
    });
  const title = mode === 'marketplace' ? `Use Marketplace for ${provider.display_name}?` : `Use your own key for ${provider.display_name}?`;
  return (
    <Dialog title={title} onClose={onClose}>
      {mode === 'marketplace' ? (
        <ul class="explain">
          <li>Requests use the operator's pooled {provider.display_name} credentials, not your key.</li>
          <li>Usage is billed by Keystore per unit at the operator's current prices and appears on this project's invoice.</li>
          <li>The pool's rate limits apply in addition to the agent and project limits; a pool without healthy credentials answers 503 no_capacity.</li>
          <li>The switch takes effect with the next request; requests in flight finish on the old credential.</li>
        </ul>
      ) : (
        <ul class="explain">
          <li>Requests use this project's stored BYOK key{provider.key ? ` (${provider.key})` : ''}.</li>
          <li>The provider bills you directly; Keystore meters the usage and shows it, but does not bill it.</li>
          <li>Your provider account's own rate limits apply, plus the agent and project limits.</li>
          <li>The switch takes effect with the next request.</li>
        </ul>
      )}
      <ErrorBox error={action.error} title="The mode was not changed" />
      <div class="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="primary" disabled={action.pending} onClick={() => void confirm()}>
          {mode === 'marketplace' ? 'Switch to Marketplace' : 'Switch to BYOK'}
        </button>
      </div>
    </Dialog>
  );
}

function ConciergeDialog({ base, provider, onClose, onSaved }: DialogProps) {
  const [note, setNote] = useState('');
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run(async () => {
      await api('POST', `${base}/concierge`, note ? { provider: provider.provider, note } : { provider: provider.provider });
      onSaved();
      onClose();
    });
  };
  return (
    <Dialog title={`Request ${provider.display_name} through the concierge`} onClose={onClose}>
      <form onSubmit={submit}>
        <p class="muted">The operator provisions a dedicated credential for this project. Once the request is fulfilled you can switch the provider to Marketplace.</p>
        <Field label="Note for the operator (optional)">
          <textarea name="note" rows={3} value={note} onInput={(event) => setNote(event.currentTarget.value)} maxLength={500} />
        </Field>
        <ErrorBox error={action.error} title="The request was not filed" />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            File request
          </button>
        </div>
      </form>
    </Dialog>
  );
}
