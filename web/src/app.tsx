/**
 * The viewer's shell: the session (resumed from the KMS's cookie, or the login page), the navigation, and a
 * hash router — #/ the live grid, #/camera/SERIAL a camera, #/exports the user's exports.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { Api, SessionInfo } from './api.js';
import { CameraPage } from './pages/camera.js';
import { ExportsPage } from './pages/exports.js';
import { AdminPage } from './pages/admin.js';
import { GridPage } from './pages/grid.js';
import { LoginPage } from './pages/login.js';

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = (): void => setHash(location.hash || '#/');
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

export function App(p: { readonly api: Api }): JSX.Element {
  const { api } = p;
  const [session, setSession] = useState<SessionInfo | undefined | null>(null);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const hash = useHash();
  useEffect(() => {
    api.onSessionEnded = () => {
      setNotice('Your session has ended (logged out, expired, or the account was disabled): log in again.');
      setSession(undefined);
    };
    api
      .resume()
      .then(setSession)
      .catch(() => setSession(undefined));
  }, [api]);
  if (session === null) return <p class="boot">Checking your session…</p>;
  if (session === undefined)
    return (
      <LoginPage
        api={api}
        notice={notice}
        onLogin={(s) => {
          setNotice(undefined);
          setSession(s);
        }}
      />
    );
  const go = (h: string): void => {
    location.hash = h;
  };
  const camera = /^#\/camera\/([^/]+)$/.exec(hash);
  let page: JSX.Element;
  if (camera !== null) page = <CameraPage key={camera[1]} api={api} serial={decodeURIComponent(camera[1] as string)} />;
  else if (hash === '#/exports') page = <ExportsPage api={api} />;
  else if (hash.startsWith('#/admin')) page = <AdminPage api={api} tab={hash.slice('#/admin/'.length)} />;
  else page = <GridPage api={api} go={go} />;
  return (
    <>
      <header>
        <a class="brand" href="#/">
          keyframe
        </a>
        <nav aria-label="main">
          <a href="#/" aria-current={hash === '#/' ? 'page' : undefined}>
            Live
          </a>
          <a href="#/exports" aria-current={hash === '#/exports' ? 'page' : undefined}>
            Exports
          </a>
          {(session.role === 'admin' || session.role === 'auditor') && (
            <a href={session.role === 'admin' ? '#/admin/cameras' : '#/admin/audit'} aria-current={hash.startsWith('#/admin') ? 'page' : undefined}>
              Administration
            </a>
          )}
        </nav>
        <span class="who">
          {session.user} <span class="muted">({session.role})</span>
        </span>
        <button
          type="button"
          onClick={() => {
            void api.logout().then(() => setSession(undefined));
          }}
        >
          Log out
        </button>
      </header>
      {page}
    </>
  );
}
