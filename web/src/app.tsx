// The dashboard shell: restores or starts the session, then shows the navigation, the
// organization and project switcher and the selected page.

import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, loadSession, onSessionLost, setRequestContext, signIn, signOut } from './api';
import { ErrorBox, Field, Loading, useAction } from './components';
import { AgentsPage } from './pages/agents';
import { AuditPage } from './pages/audit';
import { OperatorPage } from './pages/operator';
import { PlaceholderPage } from './pages/placeholder';
import { ProvidersPage } from './pages/providers';
import { UsagePage } from './pages/usage';
import { WebhooksPage } from './pages/webhooks';
import { navigate, redirect, usePath } from './router';
import type { ListOf, Membership, Project, Session } from './types';

const kOrganizationKey = 'keystore.organization';
const kProjectKey = 'keystore.project';

interface NavItem {
  path: string;
  label: string;
  operatorOnly?: boolean;
}

const kNavItems: NavItem[] = [
  { path: '/providers', label: 'Providers' },
  { path: '/agents', label: 'Agents' },
  { path: '/usage', label: 'Usage' },
  { path: '/audit', label: 'Audit' },
  { path: '/webhooks', label: 'Webhooks' },
  { path: '/operator', label: 'Operator', operatorOnly: true },
];

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [bootError, setBootError] = useState<unknown>(undefined);

  useEffect(() => {
    onSessionLost(() => setSession(null));
    loadSession().then(setSession, (error: unknown) => {
      if (error instanceof ApiError && error.status === 401) {
        setSession(null);
      } else {
        setBootError(error);
      }
    });
  }, []);

  if (bootError) {
    return (
      <main class="center-page">
        <ErrorBox error={bootError} title="Could not reach the Keystore server" />
      </main>
    );
  }
  if (session === undefined) {
    return (
      <main class="center-page">
        <Loading what="your session" />
      </main>
    );
  }
  if (session === null) {
    return <SignInPage onSignedIn={setSession} />;
  }
  return <Shell session={session} onSignedOut={() => setSession(null)} />;
}

function SignInPage({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const action = useAction();

  const submit = (event: JSX.TargetedEvent<HTMLFormElement, Event>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const email = (form.elements.namedItem('email') as HTMLInputElement).value;
    const passwordInput = form.elements.namedItem('password') as HTMLInputElement;
    const password = passwordInput.value;
    void action.run(async () => {
      try {
        onSignedIn(await signIn(email, password));
      } finally {
        passwordInput.value = '';
      }
    });
  };

  return (
    <main class="center-page">
      <form class="card sign-in" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in to Keystore</h1>
        <Field label="Email">
          <input name="email" type="email" autocomplete="username" required />
        </Field>
        <Field label="Password">
          <input name="password" type="password" autocomplete="current-password" required />
        </Field>
        <ErrorBox error={action.error} title="Sign-in failed" />
        <button type="submit" class="primary" disabled={action.pending}>
          {action.pending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

function pickOrganization(memberships: Membership[]): string {
  const saved = localStorage.getItem(kOrganizationKey);
  if (saved && memberships.some((membership) => membership.organization_id === saved)) {
    return saved;
  }
  return memberships[0]?.organization_id ?? '';
}

function Shell({ session, onSignedOut }: { session: Session; onSignedOut: () => void }) {
  const path = usePath();
  const [organizationId, setOrganizationId] = useState(() => pickOrganization(session.memberships));
  const [projects, setProjects] = useState<Project[] | undefined>(undefined);
  const [projectsError, setProjectsError] = useState<unknown>(undefined);
  const [projectId, setProjectId] = useState<string>(() => localStorage.getItem(kProjectKey) ?? '');
  const [menuOpen, setMenuOpen] = useState(false);

  setRequestContext(session.csrf_token, organizationId);
  const membership = session.memberships.find((item) => item.organization_id === organizationId);

  useEffect(() => {
    setProjects(undefined);
    setProjectsError(undefined);
    api<ListOf<Project>>('GET', '/projects').then(
      (list) => {
        const inOrganization = list.data.filter((project) => !organizationId || project.organization_id === organizationId);
        setProjects(inOrganization);
        setProjectId((current) => (inOrganization.some((project) => project.id === current) ? current : inOrganization[0]?.id ?? ''));
      },
      (error: unknown) => setProjectsError(error),
    );
  }, [organizationId]);

  useEffect(() => {
    if (path === '/' || path === '') {
      redirect('/providers');
    }
  }, [path]);

  const chooseOrganization = (id: string) => {
    localStorage.setItem(kOrganizationKey, id);
    setOrganizationId(id);
  };
  const chooseProject = (id: string) => {
    localStorage.setItem(kProjectKey, id);
    setProjectId(id);
  };
  const logout = async () => {
    try {
      await signOut();
    } finally {
      onSignedOut();
    }
  };

  const project = projects?.find((item) => item.id === projectId);
  const items = kNavItems.filter((item) => !item.operatorOnly || session.user.is_operator);
  const active = items.find((item) => path.startsWith(item.path));

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="/providers" onClick={(event) => { event.preventDefault(); navigate('/providers'); }}>
          Keystore
        </a>
        <button type="button" class="menu-button" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <div class="switchers">
          <label class="switcher">
            <span>Organization</span>
            <select value={organizationId} onChange={(event) => chooseOrganization(event.currentTarget.value)}>
              {session.memberships.map((item) => (
                <option key={item.organization_id} value={item.organization_id}>
                  {item.organization_name} ({item.role})
                </option>
              ))}
            </select>
          </label>
          <label class="switcher">
            <span>Project</span>
            <select value={projectId} disabled={!projects || projects.length === 0} onChange={(event) => chooseProject(event.currentTarget.value)}>
              {(projects ?? []).map((item) => (
                <option key={item.id} value={item.id}>
                  {item.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div class="user">
          <span class="muted" title={session.user.id}>
            {session.user.email}
            {session.user.is_operator ? ' · operator' : ''}
          </span>
          <button type="button" onClick={() => void logout()}>
            Sign out
          </button>
        </div>
      </header>
      <nav id="main-nav" class={menuOpen ? 'nav open' : 'nav'} aria-label="Main">
        <ul>
          {items.map((item) => (
            <li key={item.path}>
              <a
                href={item.path}
                aria-current={active?.path === item.path ? 'page' : undefined}
                onClick={(event) => {
                  event.preventDefault();
                  setMenuOpen(false);
                  navigate(item.path);
                }}
              >
                {item.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main class="content" id="content">
        <ErrorBox error={projectsError} title="Could not load the projects" />
        {projects === undefined && !projectsError && <Loading what="projects" />}
        {projects !== undefined && !project && !active?.operatorOnly && (
          <p class="card">This organization has no project yet. Create one with <code>keystore project create NAME</code>.</p>
        )}
        <Page path={active?.path ?? ''} project={project} projects={projects ?? []} session={session} role={membership?.role ?? 'viewer'} />
      </main>
    </div>
  );
}

interface PageProps {
  path: string;
  project: Project | undefined;
  projects: Project[];
  session: Session;
  role: Membership['role'];
}

function Page({ path, project, projects, session, role }: PageProps) {
  const canManage = role === 'owner' || role === 'admin';
  const canOperate = role !== 'viewer';
  if (path === '/operator') {
    return session.user.is_operator ? <OperatorPage /> : <p class="card">The operator area needs an operator account.</p>;
  }
  if (!project) {
    return null;
  }
  switch (path) {
    case '/providers':
      return <ProvidersPage key={project.id} project={project} canManage={canManage} canRequest={canOperate} />;
    case '/agents':
      return <AgentsPage key={project.id} project={project} canEdit={canOperate} />;
    case '/usage':
      return <UsagePage key={project.id} project={project} />;
    case '/audit':
      return canManage ? <AuditPage projects={projects} /> : <p class="card">The audit trail needs the owner or admin role in this organization.</p>;
    case '/webhooks':
      return <WebhooksPage key={project.id} project={project} canManage={canManage} />;
    default:
      return <PlaceholderPage title="Page not found" text={`There is no dashboard page at ${location.pathname}.`} />;
  }
}
