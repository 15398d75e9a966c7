/**
 * `keyframe up` (what `npm start` runs): the whole system on one machine on embedded defaults — KMS, NVR and camera
 * agents recording a test pattern, signed and encrypted under their group's key — as children of one supervisor
 * (src/supervisor/). Data in DATA (default ./data); a rerun resumes; Ctrl-C stops every process cleanly.
 */
import type { Command } from 'commander';
import { join, relative, resolve } from 'node:path';
import { ErrorCodes, KeyframeError } from '../../errors.js';
import { openAdminClient, readRoots } from '../../kms/open.js';
import { openCameraAgent } from '../../camera/kms-agent.js';
import { localSiteChildren, provisionLocalSite, DEFAULT_PATTERN } from '../../supervisor/local-site.js';
import type { LocalSite } from '../../supervisor/local-site.js';
import { Supervisor } from '../../supervisor/supervisor.js';
import type { ChildStatus } from '../../supervisor/supervisor.js';
import { onInterrupt } from '../../util/cleanup.js';
import type { GroupView } from '../../kms/service.js';
import type { KmsClient } from '../../kms/client.js';
import { randomBytes } from 'node:crypto';
import type { CliContext } from '../context.js';
import { println } from '../context.js';
import { parsePositiveInt } from '../options.js';

/** The first administrator's account: made once, with a password shown once and stored nowhere in clear. */
export const LOCAL_ADMIN = 'admin';

/**
 * Makes the first administrator account when the KMS has none by that name: a random password (printed once, by
 * `say`), the admin role, and a grant of every right on the site's group over the last 30 days of recordings.
 */
async function ensureAdminAccount(admin: KmsClient, site: LocalSite, say: (line: string) => void): Promise<string | undefined> {
  const users = (await admin.json<{ users: { name: string }[] }>('GET', '/v1/admin/users')).users;
  if (users.some((u) => u.name === LOCAL_ADMIN)) return undefined;
  // 20 characters from a 32-letter alphabet without look-alikes: 100 bits
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const password = Array.from(randomBytes(20), (b) => alphabet[b % alphabet.length]).join('');
  await admin.json('POST', '/v1/admin/users', { name: LOCAL_ADMIN, role: 'admin', password });
  await admin.json('POST', '/v1/admin/grants', { user: LOCAL_ADMIN, group: site.group, rights: ['live', 'playback', 'export', 'lock'], lastMs: 30 * 86_400_000 });
  say(`account ${LOCAL_ADMIN} (role admin) with every right on group ${site.group} over the last 30 days`);
  return password;
}

/** Enrols every camera with the KMS (a no-op for one already enrolled) and makes sure the group holds them all. */
async function enrolCameras(site: LocalSite, say: (line: string) => void, onPassword: (password: string) => void): Promise<void> {
  const roots = readRoots(join(site.ca, 'operator.pem'));
  for (const cam of site.cameras) {
    const agent = await openCameraAgent({ url: site.kmsUrl, deviceDir: join(cam.dir, 'device'), stateDir: cam.kmsState, kmsRoots: roots });
    try {
      await agent.camera.enrol();
    } finally {
      await agent.close();
    }
  }
  const admin = await openAdminClient(site.kmsUrl, site.kmsAdmin);
  try {
    await ensureGroup(admin, site, say);
    const password = await ensureAdminAccount(admin, site, say);
    if (password !== undefined) onPassword(password);
  } finally {
    admin.close();
  }
}

/** Makes sure the site's group holds every camera (created with the first as its leader). */
async function ensureGroup(admin: KmsClient, site: LocalSite, say: (line: string) => void): Promise<void> {
  const groups = (await admin.json<{ groups: { id: string }[] }>('GET', '/v1/admin/groups')).groups;
  const serials = site.cameras.map((c) => c.serial);
  if (!groups.some((g) => g.id === site.group)) {
    await admin.json('POST', '/v1/admin/groups', { id: site.group, members: serials, leader: serials[0] });
    say(`group ${site.group}: created with ${serials.join(', ')}`);
    return;
  }
  const members = new Set((await admin.json<GroupView>('GET', `/v1/admin/groups/${site.group}`)).members);
  for (const serial of serials) {
    if (members.has(serial)) continue;
    await admin.json('POST', `/v1/admin/groups/${site.group}/members`, { serial });
    say(`group ${site.group}: ${serial} joined`);
  }
}

export function registerUpCommand(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('run the whole system locally: KMS, NVR and camera agents under one supervisor (what `npm start` runs)')
    .option('--data <DIR>', 'data directory', './data')
    .option('--cameras <N>', 'number of simulated cameras', '4')
    .option('--kms-port <PORT>', 'KMS port (cameras and administrators, mutual TLS)', '8443')
    .option('--nvr-port <PORT>', 'NVR port (camera ingest, mutual TLS)', '8444')
    .option('--kms-browser-port <PORT>', "KMS port for browsers (logins, licences)", '8445')
    .option('--viewer-port <PORT>', 'NVR port for browsers (the viewer web app and its API)', '8446')
    .option('--pattern <SPEC>', 'the cameras’ test pattern (a source spec)', DEFAULT_PATTERN)
    .action(async (o: { data: string; cameras: string; kmsPort: string; nvrPort: string; kmsBrowserPort: string; viewerPort: string; pattern: string }) => {
      const say = (line: string): void => println(ctx.stdout, line);
      const data = resolve(o.data);
      const cameras = parsePositiveInt(o.cameras, '--cameras');
      if (cameras > 64) throw new KeyframeError(ErrorCodes.USAGE, '--cameras: at most 64 on one machine');
      say(`keyframe — the whole system on this machine; data in ${data}`);
      const port = (v: string, name: string): number => parsePositiveInt(v, name, 65535);
      const site = await provisionLocalSite({ data, cameras, kmsPort: port(o.kmsPort, '--kms-port'), nvrPort: port(o.nvrPort, '--nvr-port'), kmsBrowserPort: port(o.kmsBrowserPort, '--kms-browser-port'), viewerPort: port(o.viewerPort, '--viewer-port'), pattern: o.pattern, say: (l) => say(`  ${l}`) });
      let password: string | undefined;
      const sup = new Supervisor(localSiteChildren(site, () => enrolCameras(site, (l) => say(`  ${l}`), (p) => (password = p))), { logDir: site.logs });
      let stopping = false;
      sup.on('state', (s: ChildStatus) => {
        if (stopping) return;
        if (s.state === 'ready') say(`  ${s.name} running (pid ${s.pid ?? '?'}, log ${s.log})`);
        if (s.state === 'restarting') say(`  ${s.name} ended unexpectedly: restarting (${s.restarts}); last line: ${s.lastLine}`);
      });
      const stopped = new Promise<void>((done) => {
        const unregister = onInterrupt(() => {
          stopping = true;
          unregister();
          say('stopping: cameras first (they end their sessions), then the NVR, then the KMS …');
          void sup.stop().then(done);
        });
      });
      await sup.start();
      const rel = (p: string): string => relative(process.cwd(), p) || '.';
      say('');
      say(`running: KMS ${site.kmsUrl}, NVR ${site.nvrUrl}, cameras ${site.cameras.map((c) => c.serial).join(', ')} (group ${site.group}); Ctrl-C stops everything`);
      say('');
      say(`open the viewer: ${site.viewerUrl}`);
      if (password !== undefined) {
        say(`  log in as ${LOCAL_ADMIN} with the password ${password}`);
        say('  (shown this once and stored nowhere in clear: note it now; keyframe user passwd changes it)');
      } else say(`  log in as ${LOCAL_ADMIN} (its password was shown when the site was made; keyframe user passwd ${LOCAL_ADMIN} --identity ${rel(site.kmsAdmin)} --url ${site.kmsUrl} sets a new one)`);
      say(`  the browser must trust the site's operator CA, ${rel(join(site.ca, 'operator.pem'))}: import it as an authority (Chromium:`);
      say(`  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n keyframe-operator -i ${rel(join(site.ca, 'operator.pem'))}; Firefox: Settings → Certificates → Authorities → Import)`);
      say('');
      say('look inside:');
      say(`  keyframe nvr status --config ${rel(site.nvrConfig)}`);
      for (const cam of site.cameras) say(`  keyframe camera status --config ${rel(cam.config)}`);
      say(`  keyframe kms group show ${site.group} --url ${site.kmsUrl} --identity ${rel(site.kmsAdmin)}`);
      say(`  logs: ${site.logs}/*.log`);
      await stopped;
      say('stopped');
    });
}
