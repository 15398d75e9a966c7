/**
 * Administration (admin role; the auditor role sees the audit log): cameras (enrolment at the KMS, recording at the
 * NVR: latest video, upload lag, verification, ring report), groups (members, leader, epoch, last rekey; removing a
 * camera makes the KMS rekey the group without it; a rekey on demand), users and grants, the KMS's audit log with
 * its hash chain checked in this browser, and system health (KMS state, CRLs). Everything goes through the KMS's
 * administration API on its browser listener, as this session's account; every change is in the audit log.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { Api } from '../api.js';
import type { CameraInfo } from './grid.js';

type Tab = 'cameras' | 'groups' | 'users' | 'audit' | 'health';
const TABS: readonly [Tab, string][] = [
  ['cameras', 'Cameras'],
  ['groups', 'Groups'],
  ['users', 'Users and grants'],
  ['audit', 'Audit log'],
  ['health', 'Health'],
];

function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [n, setN] = useState(0);
  useEffect(() => {
    load()
      .then((d) => {
        setData(d);
        setError(undefined);
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [...deps, n]);
  return { data, error, reload: () => setN(n + 1) };
}

/** A change to make: its message once done (then `after`), or its error. */
function useAction(after: () => void): { act: (what: Promise<unknown>, done: string) => void; message: string | undefined; error: string | undefined } {
  const [message, setMessage] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const act = (what: Promise<unknown>, done: string): void => {
    setError(undefined);
    what
      .then(() => {
        setMessage(done);
        after();
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  };
  return { act, message, error };
}

const when = (iso: string | null | undefined): string => (iso === null || iso === undefined ? '—' : new Date(iso).toLocaleString());
const ms = (v: number | null): string => (v === null ? '—' : v < 10_000 ? `${v} ms` : `${Math.round(v / 1000)} s`);

export function AdminPage(p: { readonly api: Api; readonly tab: string }): JSX.Element {
  const tab = (TABS.find(([t]) => t === p.tab)?.[0] ?? (p.api.session?.role === 'auditor' ? 'audit' : 'cameras'));
  return (
    <main class="admin-page">
      <nav class="tabs" aria-label="administration">
        {TABS.map(([t, label]) => (
          <a key={t} href={`#/admin/${t}`} aria-current={t === tab ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === 'cameras' && <Cameras api={p.api} />}
      {tab === 'groups' && <Groups api={p.api} />}
      {tab === 'users' && <Users api={p.api} />}
      {tab === 'audit' && <Audit api={p.api} />}
      {tab === 'health' && <Health api={p.api} />}
    </main>
  );
}

function Problem(p: { readonly error: string | undefined }): JSX.Element | null {
  return p.error === undefined ? null : (
    <p role="alert" class="error">
      {p.error}
    </p>
  );
}

function Cameras(p: { readonly api: Api }): JSX.Element {
  const kms = useLoad(() => p.api.admin<{ cameras: { serial: string; enrolledAt: string; groups: string[]; generation: number }[] }>('GET', '/v1/admin/cameras'), [p.api]);
  const nvr = useLoad(() => p.api.get<{ cameras: (CameraInfo & { ringReport: string | null; bytes: number })[] }>('/v1/cameras'), [p.api]);
  const serials = [...new Set([...(kms.data?.cameras ?? []).map((c) => c.serial), ...(nvr.data?.cameras ?? []).map((c) => c.serial)])].sort();
  return (
    <section>
      <h1>Cameras</h1>
      <p class="muted">A camera is enrolled at the KMS with its factory certificate (keyframe kms enrol); it records into a group's key and uploads to the NVR.</p>
      <Problem error={kms.error ?? nvr.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Camera</th>
            <th scope="col">Enrolled</th>
            <th scope="col">Groups</th>
            <th scope="col">State</th>
            <th scope="col">Latest video</th>
            <th scope="col">Upload lag</th>
            <th scope="col">Verified / unverified / quarantined</th>
            <th scope="col">Stored</th>
            <th scope="col">Ring report</th>
          </tr>
        </thead>
        <tbody>
          {serials.map((s) => {
            const k = kms.data?.cameras.find((c) => c.serial === s);
            const n = nvr.data?.cameras.find((c) => c.serial === s);
            const online = n?.behindMs !== null && n?.behindMs !== undefined && n.behindMs < 30_000;
            return (
              <tr key={s} data-camera={s}>
                <th scope="row">
                  <a href={`#/camera/${encodeURIComponent(s)}`}>{s}</a>
                </th>
                <td>{k === undefined ? 'not enrolled' : when(k.enrolledAt)}</td>
                <td>{k?.groups.join(', ') || '—'}</td>
                <td>
                  <span class={`badge ${online ? 'verified' : 'idle'}`}>{online ? 'recording' : 'offline'}</span>
                </td>
                <td>{when(n?.latestRecorded)}</td>
                <td>{ms(n?.uploadLagMs ?? null)}</td>
                <td>{n === undefined ? '—' : `${n.verification.verified} / ${n.verification.unverified} / ${n.verification.quarantined}`}</td>
                <td>{n === undefined ? '—' : `${(n.bytes / 1e6).toFixed(1)} MB`}</td>
                <td>{when(n?.ringReport)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

interface GroupView {
  readonly id: string;
  readonly mode: string;
  readonly epoch?: number;
  readonly leader?: string;
  readonly members: readonly string[];
  readonly pending: readonly { op: string; serial: string }[];
  readonly lastRekeyAt?: string;
  readonly refreshPeriodMs: number;
  readonly alarm?: { raisedAt: string; message: string };
}

function Groups(p: { readonly api: Api }): JSX.Element {
  const groups = useLoad(() => p.api.admin<{ groups: GroupView[] }>('GET', '/v1/admin/groups'), [p.api]);
  const { act, message, error } = useAction(() => groups.reload());
  // a removal is a pending change until the KMS's batch window closes: look again shortly
  useEffect(() => {
    if (!(groups.data?.groups.some((g) => g.pending.length > 0) ?? false)) return undefined;
    const t = window.setTimeout(groups.reload, 1000);
    return () => window.clearTimeout(t);
  }, [groups.data]);
  return (
    <section>
      <h1>Groups</h1>
      <p class="muted">A group's cameras share its content key. Removing a camera rekeys the group: video after that is under a key the removed camera never gets.</p>
      <Problem error={groups.error ?? error} />
      <p role="status" class="ok">
        {message ?? ''}
      </p>
      {groups.data?.groups.map((g) => (
        <article key={g.id} class="group" data-group={g.id} data-epoch={g.epoch ?? ''}>
          <h2>
            {g.id} <span class="muted">({g.mode})</span>
          </h2>
          <dl>
            <dt>Epoch</dt>
            <dd class="epoch">{g.epoch ?? 'n/a'}</dd>
            <dt>Leader</dt>
            <dd>{g.leader ?? '—'}</dd>
            <dt>Last rekey</dt>
            <dd>{when(g.lastRekeyAt)}</dd>
            <dt>Refresh</dt>
            <dd>every {Math.round(g.refreshPeriodMs / 60_000)} min</dd>
            {g.pending.length > 0 && (
              <>
                <dt>Pending</dt>
                <dd>{g.pending.map((x) => `${x.op} ${x.serial}`).join(', ')}</dd>
              </>
            )}
            {g.alarm !== undefined && (
              <>
                <dt>Alarm</dt>
                <dd class="error">
                  {when(g.alarm.raisedAt)}: {g.alarm.message}
                </dd>
              </>
            )}
          </dl>
          <table>
            <caption>Members</caption>
            <tbody>
              {g.members.map((m) => (
                <tr key={m} data-member={m}>
                  <th scope="row">{m}</th>
                  <td>{m === g.leader ? 'leader' : ''}</td>
                  <td>
                    <button
                      type="button"
                      disabled={m === g.leader}
                      title={m === g.leader ? 'choose another leader first' : undefined}
                      onClick={() => {
                        if (window.confirm(`Remove ${m} from ${g.id}? The group is rekeyed without it.`)) act(p.api.admin('DELETE', `/v1/admin/groups/${encodeURIComponent(g.id)}/members/${encodeURIComponent(m)}`), `${m} is leaving ${g.id}: the group is rekeyed without it.`);
                      }}
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" onClick={() => act(p.api.admin('POST', `/v1/admin/groups/${encodeURIComponent(g.id)}/refresh`, { scope: 'root' }), `${g.id}: rekeyed.`)}>
            Rekey now
          </button>
        </article>
      ))}
    </section>
  );
}

interface UserView {
  readonly name: string;
  readonly role: string;
  readonly totp: boolean;
  readonly disabled: boolean;
  readonly createdAt: string;
}
interface GrantView {
  readonly id: number;
  readonly principal: { kind: string; name?: string; role?: string };
  readonly scope: { kind: string; serial?: string; group?: string };
  readonly rights: readonly string[];
  readonly window: { kind: string; ms?: number; from?: number; to?: number };
  readonly validTo?: number;
  readonly revokedAt?: number;
}

function Users(p: { readonly api: Api }): JSX.Element {
  const users = useLoad(() => p.api.admin<{ users: UserView[] }>('GET', '/v1/admin/users'), [p.api]);
  const grants = useLoad(() => p.api.admin<{ grants: GrantView[] }>('GET', '/v1/admin/grants'), [p.api]);
  const [form, setForm] = useState({ name: '', role: 'viewer', password: '' });
  const [grant, setGrant] = useState({ user: '', group: 'site', rights: 'live', days: '7' });
  const { act, message, error } = useAction(() => {
    users.reload();
    grants.reload();
  });
  return (
    <section>
      <h1>Users and grants</h1>
      <Problem error={users.error ?? grants.error ?? error} />
      <p role="status" class="ok">
        {message ?? ''}
      </p>
      <table>
        <caption>Accounts</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">TOTP</th>
            <th scope="col">State</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {users.data?.users.map((u) => (
            <tr key={u.name} data-user={u.name}>
              <th scope="row">{u.name}</th>
              <td>{u.role}</td>
              <td>{u.totp ? 'yes' : 'no'}</td>
              <td>{u.disabled ? 'disabled' : 'active'}</td>
              <td>
                <button type="button" disabled={u.name === p.api.session?.user} onClick={() => act(p.api.admin('PUT', `/v1/admin/users/${encodeURIComponent(u.name)}/disabled`, { disabled: !u.disabled }), `${u.name} ${u.disabled ? 'enabled' : 'disabled: its sessions end now'}.`)}>
                  {u.disabled ? 'Enable' : 'Disable'}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          act(p.api.admin('POST', '/v1/admin/users', form), `account ${form.name} made.`);
          setForm({ ...form, password: '' });
        }}
      >
        <h2>New account</h2>
        <label>
          Name
          <input name="new-user" required value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} />
        </label>
        <label>
          Role
          <select name="new-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
            {['viewer', 'operator', 'investigator', 'auditor', 'admin'].map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          Password (12 characters or more)
          <input name="new-password" type="password" autoComplete="new-password" minLength={12} required value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        </label>
        <button type="submit">Make account</button>
      </form>
      <table>
        <caption>Grants in force</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Who</th>
            <th scope="col">On</th>
            <th scope="col">Rights</th>
            <th scope="col">Recorded time</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {grants.data?.grants.map((g) => (
            <tr key={g.id} data-grant={g.id}>
              <td>{g.id}</td>
              <td>{g.principal.kind === 'role' ? `role ${g.principal.role ?? ''}` : `${g.principal.kind} ${g.principal.name ?? ''}`}</td>
              <td>{g.scope.kind === 'camera' ? `camera ${g.scope.serial ?? ''}` : `group ${g.scope.group ?? ''}`}</td>
              <td>{g.rights.join(', ')}</td>
              <td>{g.window.kind === 'last' ? `last ${Math.round((g.window.ms ?? 0) / 86_400_000)} d` : `${new Date(g.window.from ?? 0).toLocaleString()} – ${new Date(g.window.to ?? 0).toLocaleString()}`}</td>
              <td>
                <button type="button" onClick={() => act(p.api.admin('DELETE', `/v1/admin/grants/${g.id}`), `grant ${g.id} revoked.`)}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          act(p.api.admin('POST', '/v1/admin/grants', { user: grant.user, group: grant.group, rights: grant.rights.split(',').map((r) => r.trim()), lastMs: Number(grant.days) * 86_400_000 }), `grant to ${grant.user} made.`);
        }}
      >
        <h2>New grant</h2>
        <label>
          User
          <input name="grant-user" required value={grant.user} onInput={(e) => setGrant({ ...grant, user: e.currentTarget.value })} />
        </label>
        <label>
          Group
          <input name="grant-group" required value={grant.group} onInput={(e) => setGrant({ ...grant, group: e.currentTarget.value })} />
        </label>
        <label>
          Rights (live, playback, export, lock)
          <input name="grant-rights" required value={grant.rights} onInput={(e) => setGrant({ ...grant, rights: e.currentTarget.value })} />
        </label>
        <label>
          Last … days of recordings
          <input name="grant-days" type="number" min={1} required value={grant.days} onInput={(e) => setGrant({ ...grant, days: e.currentTarget.value })} />
        </label>
        <button type="submit">Grant</button>
      </form>
    </section>
  );
}

const hexBytes = (h: string): Uint8Array<ArrayBuffer> => new Uint8Array((h.match(/../g) ?? []).map((x) => parseInt(x, 16)));
const hexOf = (b: ArrayBuffer): string => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');

/** The audit chain (src/audit/chain.ts) recomputed here: leaf = SHA-256(0x00 ‖ entry), hash = SHA-256(prev ‖ leaf). */
async function checkAuditChain(rows: readonly { seq: number; entry: string; leaf: string; prev: string; hash: string }[]): Promise<string | undefined> {
  let prev = '0'.repeat(64);
  for (const r of rows) {
    const entry = new TextEncoder().encode(r.entry);
    const leafInput = new Uint8Array(entry.length + 1);
    leafInput.set(entry, 1);
    const leaf = hexOf(await crypto.subtle.digest('SHA-256', leafInput));
    if (leaf !== r.leaf) return `entry ${r.seq} does not hash to its leaf (edited)`;
    if (r.prev !== prev) return `entry ${r.seq} does not follow entry ${r.seq - 1}`;
    const both = new Uint8Array(64);
    both.set(hexBytes(prev), 0);
    both.set(hexBytes(leaf), 32);
    const hash = hexOf(await crypto.subtle.digest('SHA-256', both));
    if (hash !== r.hash) return `entry ${r.seq}: its chain hash is wrong`;
    prev = hash;
  }
  return undefined;
}

function Audit(p: { readonly api: Api }): JSX.Element {
  const log = useLoad(async () => {
    const r = await p.api.admin<{ size: number; head: string; entries: { seq: number; entry: string; leaf: string; prev: string; hash: string }[] }>('GET', '/v1/admin/audit?from=1&limit=10000');
    const problem = await checkAuditChain(r.entries);
    const head = r.entries[r.entries.length - 1]?.hash;
    return { ...r, problem: problem ?? (r.entries.length === r.size && head !== r.head ? 'the chain does not end at the head the KMS states' : undefined) };
  }, [p.api]);
  const rows = (log.data?.entries ?? []).slice(-200).reverse();
  return (
    <section>
      <h1>Audit log</h1>
      <Problem error={log.error} />
      {log.data !== undefined && (
        <p class={log.data.problem === undefined ? 'ok' : 'error'} data-chain={log.data.problem === undefined ? 'verified' : 'broken'}>
          {log.data.problem === undefined ? `Hash chain of ${log.data.entries.length} entries checked in this browser: intact${log.data.entries.length === log.data.size ? ', ending at the KMS’s head' : ' (the first 10,000)'}.` : `Hash chain BROKEN: ${log.data.problem}`}
        </p>
      )}
      <table class="audit">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">What</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const e = JSON.parse(r.entry) as { at?: string; actor?: string; action?: string; detail?: unknown };
            return (
              <tr key={r.seq} data-action={e.action}>
                <td>{r.seq}</td>
                <td>{when(e.at)}</td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td>
                  <code>{JSON.stringify(e.detail ?? {}).slice(0, 240)}</code>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

function Health(p: { readonly api: Api }): JSX.Element {
  const st = useLoad(() => p.api.admin<Record<string, unknown> & { crls?: { issuer: string; nextUpdate: string | null; state: string; revoked: number }[] }>('GET', '/v1/admin/status'), [p.api]);
  const nvr = useLoad(() => p.api.get<{ cameras: CameraInfo[] }>('/v1/cameras'), [p.api]);
  return (
    <section>
      <h1>Health</h1>
      <Problem error={st.error ?? nvr.error} />
      <h2>KMS</h2>
      {st.data !== undefined && (
        <>
          <table>
            <caption>Certificate revocation lists</caption>
            <tbody>
              {(st.data.crls ?? []).map((c, i) => (
                <tr key={i} data-crl-state={c.state}>
                  <td>{c.issuer}</td>
                  <td class={c.state === 'current' ? 'ok' : 'error'}>{c.state}</td>
                  <td>next update {when(c.nextUpdate)}</td>
                  <td>{c.revoked} revoked</td>
                </tr>
              ))}
            </tbody>
          </table>
          <details>
            <summary>KMS status (raw)</summary>
            <pre>{JSON.stringify({ ...st.data, crls: undefined }, null, 2)}</pre>
          </details>
        </>
      )}
      <h2>NVR</h2>
      <p>
        {nvr.data === undefined ? '…' : `${nvr.data.cameras.length} cameras recording to this NVR; ${nvr.data.cameras.filter((c) => c.behindMs !== null && c.behindMs < 30_000).length} with video in the last 30 s.`}
      </p>
    </section>
  );
}
