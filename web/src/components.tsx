// Small building blocks shared by the pages: data loading with loading and error states, the
// error box that shows the API's code and message, modal dialogs and form fields.

import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

// Runs `load` when `key` changes and on reload(); a stale response never replaces a newer one.
export function useResource<T>(load: () => Promise<T>, key: string): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [generation, setGeneration] = useState(0);
  const latest = useRef(0);

  useEffect(() => {
    const ticket = ++latest.current;
    setLoading(true);
    load().then(
      (value) => {
        if (ticket === latest.current) {
          setData(value);
          setError(undefined);
          setLoading(false);
        }
      },
      (failure: unknown) => {
        if (ticket === latest.current) {
          setError(failure);
          setLoading(false);
        }
      },
    );
    // `load` is a new closure on every render, so `key` stands for what it loads.
  }, [key, generation]);

  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { data, error, loading, reload };
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

// Shows a failed request with the API's error code, message and request id.
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) {
    return null;
  }
  const heading = title ?? 'The request failed';
  if (error instanceof ApiError) {
    return (
      <div class="error-box" role="alert">
        <strong>{heading}</strong>
        <p>
          <code class="error-code">{error.code}</code> {error.message}
        </p>
        {error.requestId && <p class="muted">Request id {error.requestId}</p>}
      </div>
    );
  }
  return (
    <div class="error-box" role="alert">
      <strong>{heading}</strong>
      <p>{String(error)}</p>
    </div>
  );
}

// Renders `children` when the resource has data, and its loading or error state otherwise.
export function Loaded<T>({ resource, what, children }: { resource: Resource<T>; what: string; children: (data: T) => ComponentChildren }) {
  if (resource.error) {
    return <ErrorBox error={resource.error} title={`Could not load ${what}`} />;
  }
  if (resource.data === undefined) {
    return <Loading what={what} />;
  }
  return <>{children(resource.data)}</>;
}

// A modal dialog on the native <dialog> element, which traps focus and closes on Escape.
export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const unmounted = useRef(false);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) {
      dialog.showModal();
    }
    return () => {
      unmounted.current = true;
      dialog?.close();
    };
  }, []);
  // The browser fires "close" after the close() of an unmounting dialog too. Calling onClose
  // then would also close whatever dialog the parent opened in its place.
  const closed = () => {
    if (!unmounted.current) {
      onClose();
    }
  };
  const titleId = `dialog-${title.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`;
  return (
    <dialog ref={ref} class="dialog" aria-labelledby={titleId} onClose={closed}>
      <div class="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="icon-button" aria-label="Close dialog" onClick={onClose}>
          ×
        </button>
      </div>
      {children}
    </dialog>
  );
}

// Runs an action, tracks its pending state and keeps its error for display.
export function useAction() {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(async (action: () => Promise<void>) => {
    setPending(true);
    setError(undefined);
    try {
      await action();
    } catch (failure) {
      setError(failure);
    } finally {
      setPending(false);
    }
  }, []);
  return { pending, error, run, clearError: () => setError(undefined) };
}

export function Field({ label, hint, children }: { label: string; hint?: string; children: ComponentChildren }) {
  return (
    <label class="field">
      <span class="field-label">{label}</span>
      {children}
      {hint && <span class="field-hint">{hint}</span>}
    </label>
  );
}

export function Badge({ tone, children }: { tone: 'good' | 'warn' | 'bad' | 'neutral'; children: ComponentChildren }) {
  return <span class={`badge badge-${tone}`}>{children}</span>;
}

// A horizontal bar for spend against a budget, turning amber at the warning threshold and red
// at the budget.
export function BudgetBar({ label, spentCents, budgetCents, warnPercent }: { label: string; spentCents: number; budgetCents: number; warnPercent: number }) {
  if (budgetCents <= 0) {
    return (
      <div class="budget">
        <span class="budget-label">{label}</span>
        <span class="muted">no budget set · ${(spentCents / 100).toFixed(2)} spent</span>
      </div>
    );
  }
  const percent = Math.round((spentCents / budgetCents) * 100);
  const tone = percent >= 100 ? 'bad' : percent >= warnPercent ? 'warn' : 'good';
  const text = `$${(spentCents / 100).toFixed(2)} of $${(budgetCents / 100).toFixed(2)} (${percent}%), warning at ${warnPercent}%`;
  return (
    <div class="budget">
      <span class="budget-label">{label}</span>
      <div class="budget-track" role="meter" aria-label={`${label} budget`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.min(percent, 100)} aria-valuetext={text}>
        <div class={`budget-fill budget-${tone}`} style={{ width: `${Math.min(percent, 100)}%` }} />
        <div class="budget-warn-mark" style={{ left: `${Math.min(warnPercent, 100)}%` }} aria-hidden="true" />
      </div>
      <span class="budget-text">{text}</span>
    </div>
  );
}

export type InputEvent = JSX.TargetedEvent<HTMLInputElement, Event>;
