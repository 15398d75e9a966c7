/** The login page: user name, password and, for accounts that have it, a TOTP code (RFC 6238). */
import { useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { Api, SessionInfo } from '../api.js';

export function LoginPage(p: { readonly api: Api; readonly onLogin: (s: SessionInfo) => void; readonly notice?: string | undefined }): JSX.Element {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    p.api
      .login(user.trim(), password, totp.trim())
      .then((s) => {
        setPassword('');
        p.onLogin(s);
      })
      .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
      .finally(() => setBusy(false));
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-describedby="login-error">
        <h1>keyframe</h1>
        <p class="muted">End-to-end encrypted video: keys are given to this browser by the KMS, for what your grants allow.</p>
        {p.notice !== undefined && <p class="notice">{p.notice}</p>}
        <label>
          User name
          <input name="user" autoComplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <label>
          One-time code <span class="muted">(if your account has one)</span>
          <input name="totp" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" value={totp} onInput={(e) => setTotp(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <p id="login-error" role="alert" class="error">
          {error ?? ''}
        </p>
      </form>
    </main>
  );
}
