// Path-based navigation: the admin listener returns index.html for every dashboard path, so
// /providers, /agents and the others survive a reload.

import { useEffect, useState } from 'preact/hooks';

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((listener) => listener()));

export function navigate(path: string): void {
  if (path !== location.pathname) {
    history.pushState(null, '', path);
    listeners.forEach((listener) => listener());
  }
}

// Replaces the current history entry, so Back does not return to the replaced path.
export function redirect(path: string): void {
  history.replaceState(null, '', path);
  listeners.forEach((listener) => listener());
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const listener = () => setPath(location.pathname);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return path;
}
