// Usage page: spend and units over time, per provider and per agent, budgets against this
// month's spend, the month's invoice and a CSV download of the daily report.

import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, segment } from '../api';
import { BudgetBar, Loaded, useResource } from '../components';
import { count, currentMonth, dollarsFromMicros, monthStart } from '../format';
import type { Agent, Invoice, ListOf, Project, UsageReport, UsageRow } from '../types';
import { kUnitNames } from '../types';

const kRanges = [
  { value: '168h', label: 'Last 7 days' },
  { value: '720h', label: 'Last 30 days' },
  { value: '2160h', label: 'Last 90 days' },
];

export function UsagePage({ project }: { project: Project }) {
  const base = `/projects/${segment(project.id)}`;
  const [range, setRange] = useState(kRanges[1].value);
  const [agentFilter, setAgentFilter] = useState('');
  const filter = agentFilter ? `&agent=${segment(agentFilter)}` : '';

  const agents = useResource(() => api<ListOf<Agent>>('GET', `${base}/agents`), project.id);
  const daily = useResource(() => api<UsageReport>('GET', `${base}/usage?group_by=day&since=${range}${filter}`), `${range}/${agentFilter}`);
  const byProvider = useResource(() => api<UsageReport>('GET', `${base}/usage?group_by=provider&since=${range}${filter}`), `${range}/${agentFilter}`);
  const byAgent = useResource(() => api<UsageReport>('GET', `${base}/usage?group_by=agent&since=${range}`), range);
  const month = useResource(() => api<UsageReport>('GET', `${base}/usage?group_by=agent&since=${monthStart()}`), project.id);
  const invoice = useResource(() => api<Invoice>('GET', `${base}/invoices/${currentMonth()}`), project.id);

  const agentName = (id: string) => agents.data?.data.find((agent) => agent.id === id)?.name ?? id;

  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <div class="filters">
        <label class="field inline">
          <span class="field-label">Period</span>
          <select value={range} onChange={(event) => setRange(event.currentTarget.value)}>
            {kRanges.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </select>
        </label>
        <label class="field inline">
          <span class="field-label">Agent</span>
          <select value={agentFilter} onChange={(event) => setAgentFilter(event.currentTarget.value)}>
            <option value="">All agents</option>
            {(agents.data?.data ?? []).map((agent) => (
              <option key={agent.id} value={agent.id}>
                {agent.name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={!daily.data} onClick={() => daily.data && downloadCsv(daily.data, project.name)}>
          Download CSV
        </button>
      </div>

      <Loaded resource={daily} what="daily usage">
        {(report) => (
          <>
            <div class="totals" aria-label="Totals for the period">
              <Total label="Requests" value={count(report.total.requests)} />
              <Total label="Spend at list price" value={dollarsFromMicros(report.total.cost_micros)} />
              <Total label="Billed by Keystore" value={dollarsFromMicros(report.total.billable_micros)} />
              <Total label="BYOK, billed by providers" value={dollarsFromMicros(report.total.byok_micros)} />
            </div>
            <div class="card">
              <h2>Spend and requests per day</h2>
              <DailyChart rows={report.data} since={report.since} until={report.until} />
            </div>
          </>
        )}
      </Loaded>

      <div class="two-columns">
        <div class="card">
          <h2>By provider</h2>
          <Loaded resource={byProvider} what="usage by provider">
            {(report) => <BreakdownTable rows={report.data} name={(key) => key} caption="Usage by provider" />}
          </Loaded>
        </div>
        <div class="card">
          <h2>By agent</h2>
          <Loaded resource={byAgent} what="usage by agent">
            {(report) => <BreakdownTable rows={report.data} name={agentName} caption="Usage by agent" />}
          </Loaded>
        </div>
      </div>

      <div class="card">
        <h2>Budgets this month</h2>
        <Loaded resource={month} what="this month's spend">
          {(report) => (
            <div class="budgets">
              <BudgetBar label={`Project ${project.name}`} spentCents={report.total.cost_micros / 10_000} budgetCents={project.budget_cents} warnPercent={project.budget_warn_percent} />
              {(agents.data?.data ?? []).map((agent) => {
                const spent = report.data.find((row) => row.key === agent.id)?.cost_micros ?? 0;
                return <BudgetBar key={agent.id} label={agent.name} spentCents={spent / 10_000} budgetCents={agent.budget_cents ?? 0} warnPercent={agent.budget_warn_percent} />;
              })}
            </div>
          )}
        </Loaded>
      </div>

      <div class="card">
        <h2>Invoice for {currentMonth()}</h2>
        <Loaded resource={invoice} what="the invoice">
          {(bill) => <InvoiceTable invoice={bill} />}
        </Loaded>
      </div>
    </section>
  );
}

function Total({ label, value }: { label: string; value: string }) {
  return (
    <div class="total card">
      <span class="muted small">{label}</span>
      <strong>{value}</strong>
    </div>
  );
}

function unitsText(row: UsageRow): string {
  const parts = kUnitNames.filter((unit) => row.units[unit] > 0).map((unit) => `${count(row.units[unit])} ${unit}`);
  return parts.length > 0 ? parts.join(', ') : '—';
}

function BreakdownTable({ rows, name, caption }: { rows: UsageRow[]; name: (key: string) => string; caption: string }) {
  if (rows.length === 0) {
    return <p class="muted">No requests in this period.</p>;
  }
  const maxCost = Math.max(...rows.map((row) => row.cost_micros), 1);
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Requests</th>
            <th scope="col">Units</th>
            <th scope="col">Spend</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key}>
              <th scope="row">{name(row.key)}</th>
              <td>{count(row.requests)}</td>
              <td class="small">{unitsText(row)}</td>
              <td>
                <div class="spend-bar" aria-hidden="true">
                  <div style={{ width: `${Math.round((row.cost_micros / maxCost) * 100)}%` }} />
                </div>
                {dollarsFromMicros(row.cost_micros)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// The x axis spans the whole requested period, so a single day of data does not stretch over years.
function DailyChart({ rows, since, until }: { rows: UsageRow[]; since: string; until: string }) {
  const container = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = container.current;
    if (!element || rows.length === 0) {
      return;
    }
    const days = rows.map((row) => Date.parse(`${row.key}T00:00:00Z`) / 1000);
    const spend = rows.map((row) => row.cost_micros / 1_000_000);
    const requests = rows.map((row) => row.requests);
    const width = () => Math.max(element.clientWidth, 280);
    const chart = new uPlot(
      {
        width: width(),
        height: 260,
        scales: { x: { time: true, range: (): uPlot.Range.MinMax => [Date.parse(since) / 1000, Date.parse(until) / 1000] }, requests: { auto: true }, dollars: { auto: true } },
        series: [
          {},
          { label: 'Spend (USD)', scale: 'dollars', stroke: '#2563eb', fill: 'rgba(37, 99, 235, 0.12)', width: 2, value: (_chart, value) => (value == null ? '—' : `$${value.toFixed(4)}`) },
          { label: 'Requests', scale: 'requests', stroke: '#d97706', width: 2, paths: uPlot.paths.bars?.({ size: [0.6, 40] }) },
        ],
        axes: [{}, { scale: 'dollars', values: (_chart, ticks) => ticks.map((tick) => `$${tick}`) }, { scale: 'requests', side: 1, grid: { show: false } }],
      },
      [days, spend, requests],
      element,
    );
    const observer = new ResizeObserver(() => chart.setSize({ width: width(), height: 260 }));
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
    };
  }, [rows, since, until]);

  if (rows.length === 0) {
    return <p class="muted">No requests in this period.</p>;
  }
  return <div ref={container} class="chart" role="img" aria-label={`Chart of spend and requests over ${rows.length} days`} />;
}

function InvoiceTable({ invoice }: { invoice: Invoice }) {
  return (
    <>
      {invoice.lines.length === 0 ? (
        <p class="muted">No metered usage this month.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Provider</th>
                <th scope="col">Model</th>
                <th scope="col">Unit</th>
                <th scope="col">Units</th>
                <th scope="col">USD per million</th>
                <th scope="col">Mode</th>
                <th scope="col">List price</th>
                <th scope="col">Billed</th>
              </tr>
            </thead>
            <tbody>
              {invoice.lines.map((line, index) => (
                <tr key={index}>
                  <td>{line.provider}</td>
                  <td>{line.model ?? '—'}</td>
                  <td>{line.unit}</td>
                  <td>{count(line.units)}</td>
                  <td>${line.usd_per_million}</td>
                  <td>{line.mode}</td>
                  <td>{dollarsFromMicros(line.cost_micros)}</td>
                  <td>{dollarsFromMicros(line.billed_micros)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p>
        Billed by Keystore: <strong>{dollarsFromMicros(invoice.total_billed_micros)}</strong> · at list price: {dollarsFromMicros(invoice.total_list_price_micros)}
      </p>
    </>
  );
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function downloadCsv(report: UsageReport, projectName: string): void {
  const header = ['day', 'requests', ...kUnitNames, 'cost_micros', 'billable_micros', 'byok_micros'];
  const lines = [header.join(',')];
  for (const row of report.data) {
    lines.push([row.key, row.requests, ...kUnitNames.map((unit) => row.units[unit]), row.cost_micros, row.billable_micros, row.byok_micros].map(csvField).join(','));
  }
  const blob = new Blob([`${lines.join('\n')}\n`], { type: 'text/csv' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = `keystore-usage-${projectName}-${report.since.slice(0, 10)}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
