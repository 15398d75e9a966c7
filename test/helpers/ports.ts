/**
 * Ports for services a test stops and starts again on the same address (cameras know their NVR and KMS by it).
 *
 * A port from the kernel's ephemeral range (what listen(0) returns) is not safe for that: while the service is down,
 * the kernel may hand the same number to any process's outgoing connection or listen(0), and the restart then fails
 * with "address in use" — two copies of the suite on one machine made that happen. A port just below the ephemeral
 * range is never handed out by the kernel; it is chosen at random and checked free by binding it.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && Number.isInteger(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(false));
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
  });
}

/** A free port below the ephemeral range, to keep across a service's restarts. */
export async function stablePort(): Promise<number> {
  const top = Math.max(2048, ephemeralLow());
  const bottom = Math.max(1024, top - 12_000);
  for (let i = 0; i < 200; i++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found in [${bottom}, ${top})`);
}
