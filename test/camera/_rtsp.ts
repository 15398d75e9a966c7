/**
 * The GStreamer RTSP server fixture (test/fixtures/rtsp-server.py) as a child process: started on a free port below
 * the ephemeral range (test/helpers/ports.ts; with retry: a port found free can be taken before the server binds
 * it), stopped like a camera losing power, and restarted on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stablePort } from '../helpers/ports.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/rtsp-server.py', import.meta.url));
/** Debian's Python, which has python3-gi (a pyenv python3 on PATH does not). */
const PYTHON = '/usr/bin/python3';

export interface ServerArgs {
  readonly file: string;
  /** The file's video is H.265. */
  readonly h265?: boolean;
  readonly user?: string;
  readonly password?: string;
  /** RTSPS: the server's certificate and key (PEM files). */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

/** Starts the server on `port`; resolves true when it says ready, false when the port is taken (status 3). */
function launch(port: number, a: ServerArgs): Promise<{ ok: boolean; child: ChildProcess; stderr: () => string }> {
  const args = [SCRIPT, '--port', String(port), '--file', a.file, ...(a.h265 === true ? ['--h265'] : []), ...(a.user !== undefined ? ['--user', a.user, '--password', a.password ?? ''] : []),
    ...(a.tlsCert !== undefined ? ['--tls-cert', a.tlsCert, '--tls-key', a.tlsKey ?? ''] : []),
  ];
  // not niced: it plays a camera on the network, which is not starved of CPU by the recorders around it
  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (t: string) => {
    err = (err + t).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`RTSP server did not start in 20 s: ${err}`)), 20_000);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (t: string) => {
      out += t;
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve({ ok: true, child, stderr: () => err });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 3) resolve({ ok: false, child, stderr: () => err });
      else reject(new Error(`RTSP server exited with ${code}: ${err}`));
    });
  });
}

export class RtspServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly args: ServerArgs,
  ) {}

  /** A server on a free port (up to 10 tries). */
  static async start(args: ServerArgs): Promise<RtspServer> {
    for (let i = 0; i < 10; i++) {
      const port = await stablePort();
      const r = await launch(port, args);
      if (r.ok) {
        const s = new RtspServer(port, args);
        s.child = r.child;
        return s;
      }
    }
    throw new Error('no free port for the RTSP server after 10 tries');
  }

  url(credentials = ''): string {
    return `${this.args.tlsCert !== undefined ? 'rtsps' : 'rtsp'}://${credentials}127.0.0.1:${this.port}/cam`;
  }

  /** Kills the server (SIGKILL: a camera losing power) and waits until it is gone. */
  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGKILL');
    await gone;
  }

  /** Starts it again on the same port (retrying for up to 10 s while the port is still held). */
  async restart(): Promise<void> {
    await this.stop();
    const until = Date.now() + 10_000;
    for (;;) {
      const r = await launch(this.port, this.args);
      if (r.ok) {
        this.child = r.child;
        return;
      }
      if (Date.now() > until) throw new Error(`cannot restart the RTSP server on port ${this.port}: ${r.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
