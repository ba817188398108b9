// Audit page: the organization's hash-chained audit trail, newest first, with filters, paging by
// cursor and the result of the chain verification.

import type { JSX } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { api } from '../api';
import type { Resource } from '../components';
import { Badge, ErrorBox, Field, Loaded, Loading, useAction, useResource } from '../components';
import { count, time } from '../format';
import type { AuditEntry, AuditEntryPage, AuditVerification, Project } from '../types';

const kPageSize = 25;

// Actions the server records, offered as suggestions. The filter accepts any exact action name.
const kKnownActions = [
  'admin_key.create',
  'admin_key.revoke',
  'agent.create',
  'agent.delete',
  'agent.status',
  'agent.update',
  'auth.login',
  'auth.login_failed',
  'auth.logout',
  'auth.password_change',
  'concierge.fulfill',
  'concierge.reject',
  'concierge.request',
  'credential.label',
  'credential.write',
  'member.add',
  'member.remove',
  'member.update',
  'organization.create',
  'pool.credential_add',
  'pool.credential_disable',
  'pool.credential_enable',
  'price.set',
  'project.create',
  'project.update',
  'provider.mode_switch',
  'provider.status',
  'provider.update',
  'token.mint',
  'token.revoke',
  'token.rotate',
  'token.update',
  'user.operator',
  'webhook.create',
  'webhook.delete',
  'webhook.rotate_secret',
  'webhook.test',
  'webhook.update',
];

interface AuditFilters {
  project: string;
  action: string;
  since: string; // YYYY-MM-DD from the date input, read as midnight UTC
}

const kNoFilters: AuditFilters = { project: '', action: '', since: '' };

function auditQuery(filters: AuditFilters, cursor?: string): string {
  const params = new URLSearchParams({ limit: String(kPageSize) });
  if (filters.project) {
    params.set('project', filters.project);
  }
  if (filters.action) {
    params.set('action', filters.action);
  }
  if (filters.since) {
    params.set('since', `${filters.since}T00:00:00Z`);
  }
  if (cursor) {
    params.set('cursor', cursor);
  }
  return `/audit?${params.toString()}`;
}

// The pages loaded after the first one by "Load more", for one set of filters.
interface LaterPages {
  key: string;
  entries: AuditEntry[];
  cursor: string | null;
}

export function AuditPage({ projects }: { projects: Project[] }) {
  const [filters, setFilters] = useState<AuditFilters>(kNoFilters);
  const [draft, setDraft] = useState<AuditFilters>(kNoFilters);
  const [generation, setGeneration] = useState(0);
  const key = `${JSON.stringify(filters)}/${generation}`;
  const first = useResource(() => api<AuditEntryPage>('GET', auditQuery(filters)), key);
  const verification = useResource(() => api<AuditVerification>('GET', '/audit/verify'), String(generation));
  const [later, setLater] = useState<LaterPages | undefined>(undefined);
  const currentKey = useRef(key);
  currentKey.current = key;
  const more = useAction();

  const apply = (event: JSX.TargetedEvent<HTMLFormElement, Event>) => {
    event.preventDefault();
    setLater(undefined);
    setFilters({ ...draft, action: draft.action.trim() });
  };
  const clear = () => {
    setLater(undefined);
    setDraft(kNoFilters);
    setFilters(kNoFilters);
  };
  const refresh = () => {
    setLater(undefined);
    setGeneration((value) => value + 1);
  };

  const pages = later?.key === key ? later : undefined;
  const nextCursor = pages ? pages.cursor : first.data?.next_cursor ?? null;
  const loadMore = () =>
    more.run(async () => {
      if (!nextCursor) {
        return;
      }
      const requestKey = key;
      const page = await api<AuditEntryPage>('GET', auditQuery(filters, nextCursor));
      // Filters changed while the page loaded: its entries belong to the old list.
      if (currentKey.current !== requestKey) {
        return;
      }
      setLater({ key: requestKey, entries: [...(pages?.entries ?? []), ...page.data], cursor: page.next_cursor });
    });

  const projectName = (id: string | null) => (id ? projects.find((project) => project.id === id)?.name ?? id : '—');

  return (
    <section aria-labelledby="audit-title">
      <div class="page-head">
        <h1 id="audit-title">Audit</h1>
        <button type="button" onClick={refresh}>
          Refresh
        </button>
      </div>
      <ChainStatus verification={verification} />

      <form class="filters card" onSubmit={apply} aria-label="Audit filters">
        <Field label="Project">
          <select name="project" value={draft.project} onChange={(event) => setDraft({ ...draft, project: event.currentTarget.value })}>
            <option value="">All projects</option>
            {projects.map((project) => (
              <option key={project.id} value={project.id}>
                {project.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Action">
          <input
            name="action"
            type="text"
            list="audit-actions"
            placeholder="any action"
            value={draft.action}
            onInput={(event) => setDraft({ ...draft, action: event.currentTarget.value })}
          />
        </Field>
        <datalist id="audit-actions">
          {kKnownActions.map((action) => (
            <option key={action} value={action} />
          ))}
        </datalist>
        <Field label="Since (UTC)">
          <input name="since" type="date" value={draft.since} onInput={(event) => setDraft({ ...draft, since: event.currentTarget.value })} />
        </Field>
        <div class="actions">
          <button type="submit" class="primary">
            Apply filters
          </button>
          <button type="button" onClick={clear}>
            Clear
          </button>
        </div>
      </form>

      <Loaded resource={first} what="the audit trail">
        {(page) => {
          const entries = [...page.data, ...(pages?.entries ?? [])];
          return (
            <>
              {entries.length === 0 ? (
                <p class="card muted">No audit entries match these filters.</p>
              ) : (
                <AuditTable entries={entries} projectName={projectName} />
              )}
              <ErrorBox error={more.error} title="Could not load more entries" />
              <p class="paging">
                <span class="muted small" role="status">
                  {count(entries.length)} {entries.length === 1 ? 'entry' : 'entries'} shown{nextCursor ? '' : ', no older entries'}
                </span>
                {nextCursor && (
                  <button type="button" disabled={more.pending} onClick={() => void loadMore()}>
                    {more.pending ? 'Loading…' : 'Load more'}
                  </button>
                )}
              </p>
            </>
          );
        }}
      </Loaded>
    </section>
  );
}

const kProblemText: Record<NonNullable<AuditVerification['problem']>, string> = {
  edited: 'an entry was edited after it was written',
  removed: 'an entry was removed',
  reordered: 'entries were reordered',
};

function ChainStatus({ verification }: { verification: Resource<AuditVerification> }) {
  if (verification.error) {
    return <ErrorBox error={verification.error} title="Could not verify the audit chain" />;
  }
  const report = verification.data;
  if (!report || verification.loading) {
    return (
      <div class="card chain">
        <Loading what="the chain verification" />
      </div>
    );
  }
  if (report.ok) {
    return (
      <div class="card chain chain-ok" role="status" aria-label="Audit chain status">
        <Badge tone="good">Chain intact</Badge>
        <span>
          Every entry's hash matches its contents and the previous entry's hash
          {report.entries !== undefined ? ` (${count(report.entries)} entries checked across the installation)` : ''}.
        </span>
      </div>
    );
  }
  return (
    <div class="card chain chain-broken" role="alert" aria-label="Audit chain status">
      <Badge tone="bad">Chain broken</Badge>
      <span>
        {report.first_bad_seq !== undefined
          ? `The first bad entry is #${report.first_bad_seq}${report.problem ? `: ${kProblemText[report.problem]}` : ''}.`
          : 'An entry does not match its hash. An operator can see which entry fails the check.'}
        {report.entries !== undefined ? ` ${count(report.entries)} entries checked.` : ''}
      </span>
    </div>
  );
}

function detailValue(value: unknown): string {
  if (Array.isArray(value)) {
    return value.map(detailValue).join(', ');
  }
  if (value !== null && typeof value === 'object') {
    return JSON.stringify(value);
  }
  return String(value);
}

// One line per detail; request_fields lists the names of the request body's members.
function Details({ details }: { details: Record<string, unknown> }) {
  const names = Object.keys(details);
  if (names.length === 0) {
    return <span class="muted">—</span>;
  }
  return (
    <ul class="details">
      {names.map((name) => (
        <li key={name}>
          <span class="muted">{name === 'request_fields' ? 'fields' : name}:</span> {detailValue(details[name]) || '—'}
        </li>
      ))}
    </ul>
  );
}

function AuditTable({ entries, projectName }: { entries: AuditEntry[]; projectName: (id: string | null) => string }) {
  return (
    <div class="table-wrap">
      <table class="stacked audit">
        <caption class="visually-hidden">Audit entries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Project</th>
            <th scope="col">Source address</th>
            <th scope="col">Request id</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.seq} data-seq={entry.seq} data-action={entry.action}>
              <td data-label="Time">
                <div>
                  {time(entry.time)}
                  <span class="muted small block" title={`hash ${entry.hash}`}>#{entry.seq}</span>
                </div>
              </td>
              <td data-label="Actor">
                <div>
                  <code>{entry.actor}</code>
                  <span class="muted small block">{entry.actor_kind}</span>
                </div>
              </td>
              <td data-label="Action">
                <div>
                  <code class="action">{entry.action}</code>
                </div>
              </td>
              <td data-label="Target">
                <div>
                  <code>{entry.target || '—'}</code>
                </div>
              </td>
              <td data-label="Project"><div>{projectName(entry.project_id)}</div></td>
              <td data-label="Source address"><div>{entry.source_address || '—'}</div></td>
              <td data-label="Request id">
                <div>
                  <code class="small">{entry.request_id || '—'}</code>
                </div>
              </td>
              <td data-label="Details">
                <div>
                  <Details details={entry.details} />
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
