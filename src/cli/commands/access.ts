/**
 * `keyframe user …` and `keyframe grant …`: the KMS's accounts (people who log in to watch, play back or export
 * video) and what they may decrypt, administered over the KMS's mutual-TLS API (/v1/admin/users, /v1/admin/grants).
 *
 *   user add NAME --role ROLE | passwd NAME | role NAME ROLE | disable NAME | enable NAME | totp NAME [--remove]
 *   user list | show NAME
 *   grant add (--user NAME | --role ROLE) (--camera SERIAL | --group ID) --rights LIST (--from ISO --to ISO | --last D)
 *   grant list [--all] | revoke ID
 *
 * Administration authenticates as for `keyframe kms …` (the same options: kms.ts adminOptions, withAdmin): an
 * operator-CA client identity (`--identity`, or $KEYFRAME_KMS_ADMIN) listed under "admins" in kms.json; the URL from
 * `--url` or $KEYFRAME_KMS_URL. Passwords are read from the terminal with echo off (twice, to confirm) or as one line
 * of stdin, never from the command line, and never printed.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { GrantWindow, Principal, Scope } from '../../access/grants.js';
import { checkPasswordPolicy } from '../../access/password.js';
import { ROLES, RIGHTS, checkUserName, parseRights, parseRole } from '../../access/roles.js';
import type { UserView } from '../../kms/access.js';
import type { StoredGrant } from '../../kms/access-store.js';
import { parseDuration } from '../../util/duration.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { parseIsoTime, parsePositiveInt } from '../options.js';
import { readNewSecret } from '../secret-input.js';
import { adminOptions, withAdmin } from '../admin.js';
import type { AdminOptions } from '../admin.js';

const path = (name: string): string => `/v1/admin/users/${encodeURIComponent(name)}`;

/** An instant as ISO 8601 to the second. */
function iso(ms: number): string {
  return isoText(new Date(ms).toISOString());
}

function isoText(text: string): string {
  return text.replace(/\.\d{3}Z$/, 'Z');
}

/** A duration in the largest unit that divides it ("7d", "36h", "90s", "1500ms"). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Rows as aligned columns (two spaces apart; the last column not padded). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length))).join('  ').trimEnd()).join('\n');
}

function principalText(p: Principal): string {
  return p.kind === 'role' ? `role ${p.role}` : `${p.kind} ${p.name}`;
}

function scopeText(s: Scope): string {
  return s.kind === 'camera' ? `camera ${s.serial}` : `group ${s.group}`;
}

function windowText(w: GrantWindow): string {
  return w.kind === 'last' ? `last ${formatDuration(w.ms)}` : `${iso(w.from)} → ${iso(w.to)}`;
}

function validityText(g: StoredGrant): string {
  return `from ${iso(g.validFrom)} until ${g.validTo !== undefined ? iso(g.validTo) : 'revoked'}`;
}

function grantStatus(g: StoredGrant, now: number): string {
  if (g.revokedAt !== undefined) return `revoked ${iso(g.revokedAt)}${g.revokedBy !== undefined ? ` by ${g.revokedBy}` : ''}`;
  if (now < g.validFrom) return 'not yet valid';
  if (g.validTo !== undefined && now >= g.validTo) return 'expired';
  return 'in force';
}

function grantsTable(grants: readonly StoredGrant[], now: number): string {
  return table([
    ['ID', 'WHO', 'SCOPE', 'RIGHTS', 'RECORDED', 'VALID', 'CASE', 'STATUS'],
    ...grants.map((g) => [String(g.id), principalText(g.principal), scopeText(g.scope), g.rights.join(','), windowText(g.window), validityText(g), g.caseId ?? '-', grantStatus(g, now)]),
  ]);
}

function grantLine(g: StoredGrant): string {
  return `grant ${g.id}: ${principalText(g.principal)} may ${g.rights.join(', ')} on ${scopeText(g.scope)}, recorded ${windowText(g.window)}; valid ${validityText(g)}${g.caseId !== undefined ? `; case ${g.caseId}` : ''}`;
}

function userText(v: UserView & { grants?: StoredGrant[] }): string {
  const lines = [
    `user ${v.name}`,
    `  role       ${v.role}`,
    `  status     ${v.disabled ? `disabled${v.disabledAt !== undefined ? ` since ${isoText(v.disabledAt)}` : ''}${v.disabledBy !== undefined ? ` by ${v.disabledBy}` : ''}` : 'active'}`,
    `  TOTP       ${v.totp ? 'enrolled' : 'none'}`,
    `  created    ${isoText(v.createdAt)} by ${v.createdBy}`,
    `  password   set ${isoText(v.passwordChangedAt)}`,
    ...(v.sessions !== undefined ? [`  sessions   ${v.sessions} open`] : []),
  ];
  if (v.grants !== undefined) {
    if (v.grants.length === 0) lines.push('  grants     none (this account can decrypt nothing)');
    else {
      lines.push(`  grants (${v.grants.length}, its own and its role's)`);
      lines.push(...grantsTable(v.grants, Date.now()).split('\n').map((l) => `    ${l}`));
    }
  }
  return lines.join('\n');
}

function readPassword(name: string, ctx: CliContext): Promise<string> {
  return readNewSecret(`New password for ${name}: `, `New password for ${name} (again): `, ctx, { what: `password for ${name}` }).then((p) => {
    checkPasswordPolicy(p);
    return p;
  });
}

interface GrantOptions extends AdminOptions {
  user?: string;
  role?: string;
  certificate?: string;
  camera?: string;
  group?: string;
  rights: string;
  from?: string;
  to?: string;
  last?: string;
  validFrom?: string;
  validUntil?: string;
  case?: string;
}

/** The body of POST /v1/admin/grants from the options; every conflict or gap a one-line usage error. */
export function grantBody(o: GrantOptions): Record<string, unknown> {
  const who = [o.user, o.role, o.certificate].filter((x) => x !== undefined).length;
  if (who > 1) throw new UsageError('--user, --role and --certificate are exclusive: a grant is for one account, every account of a role, or one certificate administrator');
  if (who === 0) throw new UsageError('--user NAME, --role ROLE or --certificate CN is required: who the grant is for');
  if (o.camera !== undefined && o.group !== undefined) throw new UsageError('--camera and --group are exclusive: a grant covers one camera or every camera of a group');
  if (o.camera === undefined && o.group === undefined) throw new UsageError('--camera SERIAL or --group ID is required: which cameras the grant covers');
  const body: Record<string, unknown> = {};
  if (o.user !== undefined) body['user'] = checkUserName(o.user);
  if (o.role !== undefined) body['role'] = parseRole(o.role, '--role');
  if (o.certificate !== undefined) body['certificate'] = o.certificate;
  if (o.camera !== undefined) body['camera'] = o.camera;
  if (o.group !== undefined) body['group'] = o.group;
  body['rights'] = parseRights(o.rights, '--rights');
  if (o.last !== undefined) {
    if (o.from !== undefined || o.to !== undefined) throw new UsageError('--last and --from/--to are exclusive: the recorded time is a fixed window or the last so long');
    const ms = parseDuration(o.last, '--last');
    if (ms <= 0) throw new UsageError('--last must be a positive duration, e.g. 7d');
    body['lastMs'] = ms;
  } else {
    if (o.from === undefined && o.to === undefined) throw new UsageError('--from ISO --to ISO, or --last DURATION, is required: the recorded time the grant covers');
    if (o.from === undefined || o.to === undefined) throw new UsageError(`--${o.from === undefined ? 'from' : 'to'} is required with --${o.from === undefined ? 'to' : 'from'}`);
    const from = parseIsoTime(o.from, '--from').getTime();
    const to = parseIsoTime(o.to, '--to').getTime();
    if (to <= from) throw new UsageError('--to must be after --from');
    body['from'] = from;
    body['to'] = to;
  }
  const validFrom = o.validFrom !== undefined ? parseIsoTime(o.validFrom, '--valid-from').getTime() : undefined;
  const validTo = o.validUntil !== undefined ? parseIsoTime(o.validUntil, '--valid-until').getTime() : undefined;
  if (validTo !== undefined && validTo <= (validFrom ?? Date.now())) throw new UsageError(`--valid-until must be after ${validFrom !== undefined ? '--valid-from' : 'now'}`);
  if (validFrom !== undefined) body['validFrom'] = validFrom;
  if (validTo !== undefined) body['validTo'] = validTo;
  if (o.case !== undefined) body['caseId'] = o.case;
  return body;
}

export function registerAccessCommands(program: Command, ctx: CliContext): void {
  const out = (o: AdminOptions, value: unknown, text: () => string): void => println(ctx.stdout, o.json === true ? JSON.stringify(value, null, 2) : text());

  const user = program.command('user').description('KMS accounts (people who log in to watch or export video): add, passwd, role, disable, enable, totp, list, show');
  adminOptions(user.command('add').description('add an account; its password is read from the terminal (twice) or one line of stdin').argument('<NAME>', 'account name'))
    .requiredOption('--role <ROLE>', `the account's role: ${ROLES.join(', ')}`)
    .action(async (name: string, o: AdminOptions & { role: string }) => {
      checkUserName(name);
      const role = parseRole(o.role, '--role');
      await withAdmin(o, async (c) => {
        const password = await readPassword(name, ctx);
        const v = await c.json<UserView>('POST', '/v1/admin/users', { name, role, password });
        out(o, v, () => `added user ${v.name} (${v.role}); it can decrypt nothing until a grant says so (keyframe grant add --user ${v.name} …)`);
      });
    });
  adminOptions(user.command('passwd').description("set an account's password (read as for add); its sessions end at once").argument('<NAME>', 'account name')).action(async (name: string, o: AdminOptions) => {
    checkUserName(name);
    await withAdmin(o, async (c) => {
      const password = await readPassword(name, ctx);
      const v = await c.json<UserView>('PUT', `${path(name)}/password`, { password });
      out(o, v, () => `password of ${v.name} changed; its sessions ended`);
    });
  });
  adminOptions(user.command('role').description("change an account's role; its sessions end at once").argument('<NAME>', 'account name').argument('<ROLE>', ROLES.join(', '))).action(async (name: string, role: string, o: AdminOptions) => {
    checkUserName(name);
    const next = parseRole(role);
    await withAdmin(o, async (c) => {
      const v = await c.json<UserView>('PUT', `${path(name)}/role`, { role: next });
      out(o, v, () => `${v.name} is now ${v.role}; its sessions ended`);
    });
  });
  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    adminOptions(user.command(verb).description(disabled ? 'disable an account: no login, its sessions end at once' : 'enable a disabled account').argument('<NAME>', 'account name')).action(async (name: string, o: AdminOptions) => {
      checkUserName(name);
      await withAdmin(o, async (c) => {
        const v = await c.json<UserView>('PUT', `${path(name)}/disabled`, { disabled });
        out(o, v, () => (disabled ? `${v.name} disabled; its sessions ended` : `${v.name} enabled`));
      });
    });
  }
  adminOptions(user.command('totp').description('enrol a TOTP second factor (a new secret, shown once), or --remove it').argument('<NAME>', 'account name'))
    .option('--remove', 'remove the second factor', false)
    .action(async (name: string, o: AdminOptions & { remove: boolean }) => {
      checkUserName(name);
      await withAdmin(o, async (c) => {
        if (o.remove) {
          const v = await c.json<UserView>('DELETE', `${path(name)}/totp`);
          out(o, v, () => `TOTP removed from ${v.name}: it logs in with its password alone`);
          return;
        }
        const r = await c.json<{ secret: string; uri: string }>('POST', `${path(name)}/totp`);
        out(o, r, () =>
          [
            `TOTP enrolled for ${name}. Store this secret in an authenticator app now: it is shown only once (a new one replaces it).`,
            `  URI     ${r.uri}`,
            `  secret  ${r.secret}`,
          ].join('\n'),
        );
      });
    });
  adminOptions(user.command('list').description('every account')).action(async (o: AdminOptions) => {
    await withAdmin(o, async (c) => {
      const r = await c.json<{ users: UserView[] }>('GET', '/v1/admin/users');
      out(o, r, () =>
        r.users.length === 0
          ? 'no user'
          : table([
              ['NAME', 'ROLE', 'STATUS', 'TOTP', 'SESSIONS', 'CREATED'],
              ...r.users.map((u) => [u.name, u.role, u.disabled ? 'disabled' : 'active', u.totp ? 'yes' : 'no', String(u.sessions ?? '-'), `${isoText(u.createdAt)} by ${u.createdBy}`]),
            ]),
      );
    });
  });
  adminOptions(user.command('show').description('one account and the grants that apply to it (its own and its role\'s)').argument('<NAME>', 'account name')).action(async (name: string, o: AdminOptions) => {
    checkUserName(name);
    await withAdmin(o, async (c) => {
      const v = await c.json<UserView & { grants: StoredGrant[] }>('GET', path(name));
      out(o, v, () => userText(v));
    });
  });

  const grant = program.command('grant').description('what accounts may decrypt: rights on cameras over recorded time (add, list, revoke)');
  adminOptions(grant.command('add').description('grant rights to an account or a role, on a camera or a group, over a window of recorded time'))
    .option('--user <NAME>', 'the account the grant is for')
    .option('--role <ROLE>', `every account of a role (${ROLES.join(', ')})`)
    .option('--certificate <CN>', 'a certificate administrator (an operator-CA client certificate named in "admins"): POST /v1/admin/content-key')
    .option('--camera <SERIAL>', 'the camera the grant covers')
    .option('--group <ID>', 'every camera of a group')
    .requiredOption('--rights <LIST>', `comma-separated: ${RIGHTS.join(', ')} (a right counts only where the account's role allows it)`)
    .option('--from <ISO>', 'recorded time from (with --to), e.g. 2026-11-22T10:00:00Z')
    .option('--to <ISO>', 'recorded time to (with --from)')
    .option('--last <DURATION>', 'recorded time: the last so long, e.g. 7d (instead of --from/--to)')
    .option('--valid-from <ISO>', 'the grant is valid from (default now)')
    .option('--valid-until <ISO>', 'the grant is valid until (default: until revoked)')
    .option('--case <ID>', 'the case this grant is for (recorded and audited)')
    .action(async (o: GrantOptions) => {
      const body = grantBody(o);
      await withAdmin(o, async (c) => {
        const g = await c.json<StoredGrant>('POST', '/v1/admin/grants', body);
        out(o, g, () => `added ${grantLine(g)}`);
      });
    });
  adminOptions(grant.command('list').description('grants not revoked (--all: with the revoked ones)'))
    .option('--all', 'include revoked grants', false)
    .action(async (o: AdminOptions & { all: boolean }) => {
      await withAdmin(o, async (c) => {
        const r = await c.json<{ grants: StoredGrant[] }>('GET', `/v1/admin/grants${o.all ? '?all=1' : ''}`);
        out(o, r, () => (r.grants.length === 0 ? 'no grant' : grantsTable(r.grants, Date.now())));
      });
    });
  adminOptions(grant.command('revoke').description('revoke a grant: no key is released through it from now on').argument('<ID>', 'grant id (keyframe grant list)')).action(async (id: string, o: AdminOptions) => {
    const n = parsePositiveInt(id, 'grant id');
    await withAdmin(o, async (c) => {
      const g = await c.json<StoredGrant>('DELETE', `/v1/admin/grants/${n}`);
      out(o, g, () => `revoked ${grantLine(g)}`);
    });
  });
}
