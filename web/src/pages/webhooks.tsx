// Webhooks page: the project's webhook endpoints with create, enable and disable, delete, secret
// rotation and a test event, and each endpoint's delivery log.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, segment } from '../api';
import { Badge, Dialog, ErrorBox, Field, Loaded, useAction, useResource } from '../components';
import { time } from '../format';
import type { ListOf, Project, Webhook, WebhookDelivery, WebhookDeliveryPage, WebhookWithSecret } from '../types';
import { kWebhookEventTypes } from '../types';

// How long the delivery log refreshes itself after a test event while a delivery is pending.
const kWatchMillis = 30_000;
const kWatchIntervalMillis = 1_000;
const kDeliveryPageSize = 20;

type WebhookDialog =
  | { kind: 'create' }
  | { kind: 'delete'; webhook: Webhook }
  | { kind: 'rotate'; webhook: Webhook }
  | { kind: 'secret'; title: string; webhook: WebhookWithSecret }
  | undefined;

export function WebhooksPage({ project, canManage }: { project: Project; canManage: boolean }) {
  const endpoints = useResource(() => api<ListOf<Webhook>>('GET', `/projects/${segment(project.id)}/webhooks`), project.id);
  const [dialog, setDialog] = useState<WebhookDialog>(undefined);
  const action = useAction();

  const setStatus = (webhook: Webhook, status: Webhook['status']) =>
    action.run(async () => {
      await api('PATCH', `/webhooks/${segment(webhook.id)}`, { status });
      endpoints.reload();
    });

  return (
    <section aria-labelledby="webhooks-title">
      <div class="page-head">
        <h1 id="webhooks-title">Webhooks</h1>
        {canManage && (
          <button type="button" class="primary" onClick={() => setDialog({ kind: 'create' })}>
            Add endpoint
          </button>
        )}
      </div>
      <p class="muted">
        Keystore sends signed POST requests of this project's events to these endpoints and retries failed deliveries. Each request carries a{' '}
        <code>Keystore-Signature</code> header: <code>t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256 of "t.body"&gt;</code>, keyed with the endpoint's signing secret.
      </p>
      <ErrorBox error={action.error} title="The change failed" />
      <Loaded resource={endpoints} what="webhook endpoints">
        {(list) =>
          list.data.length === 0 ? (
            <p class="card muted">No webhook endpoints in {project.name} yet.</p>
          ) : (
            <div class="agent-list">
              {list.data.map((webhook) => (
                <WebhookCard
                  key={webhook.id}
                  webhook={webhook}
                  canManage={canManage}
                  busy={action.pending}
                  onSetStatus={(status) => void setStatus(webhook, status)}
                  onRotate={() => setDialog({ kind: 'rotate', webhook })}
                  onDelete={() => setDialog({ kind: 'delete', webhook })}
                />
              ))}
            </div>
          )
        }
      </Loaded>

      {dialog?.kind === 'create' && (
        <CreateDialog
          project={project}
          onClose={() => setDialog(undefined)}
          onCreated={(webhook) => {
            endpoints.reload();
            setDialog({ kind: 'secret', title: 'Webhook endpoint created', webhook });
          }}
        />
      )}
      {dialog?.kind === 'rotate' && (
        <RotateDialog
          webhook={dialog.webhook}
          onClose={() => setDialog(undefined)}
          onRotated={(webhook) => {
            endpoints.reload();
            setDialog({ kind: 'secret', title: 'Signing secret rotated', webhook });
          }}
        />
      )}
      {dialog?.kind === 'delete' && (
        <DeleteDialog
          webhook={dialog.webhook}
          onClose={() => setDialog(undefined)}
          onDeleted={() => {
            setDialog(undefined);
            endpoints.reload();
          }}
        />
      )}
      {dialog?.kind === 'secret' && <SecretDialog title={dialog.title} webhook={dialog.webhook} onClose={() => setDialog(undefined)} />}
    </section>
  );
}

interface CardProps {
  webhook: Webhook;
  canManage: boolean;
  busy: boolean;
  onSetStatus: (status: Webhook['status']) => void;
  onRotate: () => void;
  onDelete: () => void;
}

function WebhookCard({ webhook, canManage, busy, onSetStatus, onRotate, onDelete }: CardProps) {
  const [generation, setGeneration] = useState(0);
  const [watchUntil, setWatchUntil] = useState(0);
  const test = useAction();
  const active = webhook.status === 'active';

  const sendTest = () =>
    test.run(async () => {
      await api('POST', `/webhooks/${segment(webhook.id)}/test`);
      setWatchUntil(Date.now() + kWatchMillis);
      setGeneration((value) => value + 1);
    });

  return (
    <article class="card webhook" data-webhook={webhook.id} aria-labelledby={`webhook-${webhook.id}`}>
      <div class="agent-head">
        <h2 id={`webhook-${webhook.id}`} class="webhook-url">
          {webhook.url}
        </h2>
        <Badge tone={active ? 'good' : 'neutral'}>{webhook.status}</Badge>
      </div>
      {webhook.description && <p>{webhook.description}</p>}
      <dl class="facts">
        <div>
          <dt>Events</dt>
          <dd>{webhook.events.length > 0 ? webhook.events.join(', ') : 'every event type'}</dd>
        </div>
        <div>
          <dt>Id</dt>
          <dd>
            <code>{webhook.id}</code>
          </dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{time(webhook.created_at)}</dd>
        </div>
        <div>
          <dt>Updated</dt>
          <dd>{time(webhook.updated_at)}</dd>
        </div>
      </dl>
      {canManage && (
        <div class="actions">
          <button type="button" disabled={!active || test.pending} aria-label={`Send a test event to ${webhook.url}`} onClick={() => void sendTest()}>
            {test.pending ? 'Sending…' : 'Send test event'}
          </button>
          {active ? (
            <button type="button" disabled={busy} aria-label={`Disable ${webhook.url}`} onClick={() => onSetStatus('disabled')}>
              Disable
            </button>
          ) : (
            <button type="button" disabled={busy} aria-label={`Enable ${webhook.url}`} onClick={() => onSetStatus('active')}>
              Enable
            </button>
          )}
          <button type="button" aria-label={`Rotate the signing secret of ${webhook.url}`} onClick={onRotate}>
            Rotate secret
          </button>
          <button type="button" class="danger" aria-label={`Delete ${webhook.url}`} onClick={onDelete}>
            Delete
          </button>
        </div>
      )}
      {canManage && !active && <p class="muted small">A disabled endpoint receives no events; enable it to send a test event.</p>}
      <ErrorBox error={test.error} title="The test event was not queued" />
      <DeliveryLog webhook={webhook} generation={generation} watchUntil={watchUntil} />
    </article>
  );
}

// Older pages of a delivery log loaded by "Load older", for one generation of the first page.
interface OlderDeliveries {
  key: string;
  deliveries: WebhookDelivery[];
  cursor: string | null;
}

function DeliveryLog({ webhook, generation, watchUntil }: { webhook: Webhook; generation: number; watchUntil: number }) {
  const [refreshes, setRefreshes] = useState(0);
  const key = `${webhook.id}/${generation}/${refreshes}`;
  const base = `/webhooks/${segment(webhook.id)}/deliveries?limit=${kDeliveryPageSize}`;
  const first = useResource(() => api<WebhookDeliveryPage>('GET', base), key);
  const [older, setOlder] = useState<OlderDeliveries | undefined>(undefined);
  const currentKey = useRef(key);
  currentKey.current = key;
  const more = useAction();

  // After a test event, poll while a delivery is still pending so its outcome appears by itself.
  const pending = first.data?.data.some((delivery) => delivery.status === 'pending') ?? false;
  useEffect(() => {
    if (!pending || first.loading || Date.now() >= watchUntil) {
      return;
    }
    const timer = setTimeout(() => setRefreshes((value) => value + 1), kWatchIntervalMillis);
    return () => clearTimeout(timer);
  }, [pending, first.loading, first.data, watchUntil]);

  const pages = older?.key === key ? older : undefined;
  const nextCursor = pages ? pages.cursor : first.data?.next_cursor ?? null;
  const loadOlder = () =>
    more.run(async () => {
      if (!nextCursor) {
        return;
      }
      const requestKey = key;
      const page = await api<WebhookDeliveryPage>('GET', `${base}&before=${segment(nextCursor)}`);
      if (currentKey.current === requestKey) {
        setOlder({ key: requestKey, deliveries: [...(pages?.deliveries ?? []), ...page.data], cursor: page.next_cursor });
      }
    });

  return (
    <div class="deliveries">
      <div class="page-head">
        <h3>Delivery log</h3>
        <button type="button" aria-label={`Refresh the delivery log of ${webhook.url}`} onClick={() => setRefreshes((value) => value + 1)}>
          Refresh
        </button>
      </div>
      <Loaded resource={first} what="deliveries">
        {(page) => {
          const deliveries = [...page.data, ...(pages?.deliveries ?? [])];
          return deliveries.length === 0 ? (
            <p class="muted small">No deliveries yet.</p>
          ) : (
            <>
              <DeliveryTable deliveries={deliveries} />
              <ErrorBox error={more.error} title="Could not load older deliveries" />
              {nextCursor && (
                <button type="button" disabled={more.pending} onClick={() => void loadOlder()}>
                  {more.pending ? 'Loading…' : 'Load older'}
                </button>
              )}
            </>
          );
        }}
      </Loaded>
    </div>
  );
}

const kDeliveryTone: Record<WebhookDelivery['status'], 'good' | 'warn' | 'bad'> = {
  delivered: 'good',
  pending: 'warn',
  failed: 'bad',
};

function DeliveryTable({ deliveries }: { deliveries: WebhookDelivery[] }) {
  return (
    <div class="table-wrap">
      <table class="stacked deliveries-table">
        <caption class="visually-hidden">Deliveries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last status code</th>
            <th scope="col">Last error</th>
            <th scope="col">Created</th>
            <th scope="col">Last attempt</th>
            <th scope="col">Delivered or next attempt</th>
          </tr>
        </thead>
        <tbody>
          {deliveries.map((delivery) => (
            <tr key={delivery.id} data-delivery={delivery.id} data-status={delivery.status}>
              <td data-label="Event">
                <div>
                  <code>{delivery.event_type}</code>
                  <span class="muted small block">{delivery.event_id}</span>
                </div>
              </td>
              <td data-label="Status">
                <div>
                  <Badge tone={kDeliveryTone[delivery.status]}>{delivery.status}</Badge>
                </div>
              </td>
              <td data-label="Attempts"><div>{delivery.attempts}</div></td>
              <td data-label="Last status code"><div>{delivery.last_status_code ?? '—'}</div></td>
              <td data-label="Last error" class="small">
                <div>
                  {delivery.last_error || '—'}
                </div>
              </td>
              <td data-label="Created"><div>{time(delivery.created_at)}</div></td>
              <td data-label="Last attempt"><div>{time(delivery.last_attempt_at)}</div></td>
              <td data-label="Delivered or next attempt">
                <div>
                  {delivery.status === 'pending' ? `next ${time(delivery.next_attempt_at)}` : time(delivery.delivered_at)}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function CreateDialog({ project, onClose, onCreated }: { project: Project; onClose: () => void; onCreated: (webhook: WebhookWithSecret) => void }) {
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const events = kWebhookEventTypes.filter((type) => (form.elements.namedItem(`event-${type}`) as HTMLInputElement | null)?.checked);
    const body = {
      url: (form.elements.namedItem('url') as HTMLInputElement).value.trim(),
      description: (form.elements.namedItem('description') as HTMLInputElement).value.trim(),
      events,
    };
    void action.run(async () => {
      onCreated(await api<WebhookWithSecret>('POST', `/projects/${segment(project.id)}/webhooks`, body));
    });
  };
  return (
    <Dialog title="Add webhook endpoint" onClose={onClose}>
      <form onSubmit={submit}>
        <Field label="Endpoint URL" hint="http or https. Loopback and private addresses need a server started with --allow-private-webhooks.">
          <input name="url" type="url" required placeholder="https://example.com/keystore-events" />
        </Field>
        <Field label="Description (optional)">
          <input name="description" type="text" maxLength={256} />
        </Field>
        <fieldset>
          <legend>Events</legend>
          <p class="muted small">None checked: every event type.</p>
          <div class="checks">
            {kWebhookEventTypes.map((type) => (
              <label key={type} class="check">
                <input type="checkbox" name={`event-${type}`} /> {type}
              </label>
            ))}
          </div>
        </fieldset>
        <ErrorBox error={action.error} title="The endpoint was not created" />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={action.pending}>
            Create endpoint
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function RotateDialog({ webhook, onClose, onRotated }: { webhook: Webhook; onClose: () => void; onRotated: (webhook: WebhookWithSecret) => void }) {
  const action = useAction();
  const rotate = () =>
    action.run(async () => {
      onRotated(await api<WebhookWithSecret>('POST', `/webhooks/${segment(webhook.id)}/rotate-secret`));
    });
  return (
    <Dialog title="Rotate the signing secret?" onClose={onClose}>
      <p>
        Every delivery to <code>{webhook.url}</code> sent from now on, retries included, is signed with the new secret. The old secret stops verifying at once, so
        update the receiver right after.
      </p>
      <ErrorBox error={action.error} title="The secret was not rotated" />
      <div class="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="danger" disabled={action.pending} onClick={() => void rotate()}>
          Rotate secret
        </button>
      </div>
    </Dialog>
  );
}

function DeleteDialog({ webhook, onClose, onDeleted }: { webhook: Webhook; onClose: () => void; onDeleted: () => void }) {
  const action = useAction();
  const remove = () =>
    action.run(async () => {
      await api('DELETE', `/webhooks/${segment(webhook.id)}`);
      onDeleted();
    });
  return (
    <Dialog title="Delete this webhook endpoint?" onClose={onClose}>
      <p>
        <code>{webhook.url}</code> receives no more events, and its delivery log is deleted with it. This cannot be undone.
      </p>
      <ErrorBox error={action.error} title="The endpoint was not deleted" />
      <div class="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="danger" disabled={action.pending} onClick={() => void remove()}>
          Delete endpoint
        </button>
      </div>
    </Dialog>
  );
}

// Shows a signing secret once. The secret lives only in the parent's dialog state, which is
// dropped when this dialog closes, so it leaves the DOM with the dialog.
function SecretDialog({ title, webhook, onClose }: { title: string; webhook: WebhookWithSecret; onClose: () => void }) {
  const [copied, setCopied] = useState(false);
  const secretField = useRef<HTMLInputElement>(null);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(webhook.secret);
      setCopied(true);
    } catch {
      // Without clipboard permission, select the text so that Ctrl+C copies it.
      secretField.current?.select();
    }
  };

  return (
    <Dialog title={title} onClose={onClose}>
      <p class="warning" role="alert">
        Copy this signing secret now. It is shown only once and Keystore cannot show it again; rotate the secret if it is lost.
      </p>
      <Field label="Signing secret">
        <input ref={secretField} class="token-value" readOnly value={webhook.secret} onFocus={(event) => event.currentTarget.select()} />
      </Field>
      <p class="muted small">
        For <code>{webhook.url}</code> ({webhook.id}). Verify each delivery's <code>Keystore-Signature</code> header with it and reject signatures older than 5
        minutes.
      </p>
      <div class="dialog-actions">
        <button type="button" onClick={() => void copy()}>
          {copied ? 'Copied' : 'Copy secret'}
        </button>
        <button type="button" class="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </Dialog>
  );
}
