/**
 * The connection cap of a TLS server. Every TCP connection counts from the moment it is accepted; it becomes
 * authenticated when its TLS handshake completes with a peer the service accepts (for mutual TLS: a client
 * certificate that verified). At the cap, a new connection takes the place of the oldest connection that is not
 * authenticated (silent sockets, half-done handshakes, handshakes without a valid certificate); when every open
 * connection is authenticated, the new one is refused. So thousands of sockets opened by someone without a
 * certificate cannot lock out the cameras and administrators that have one.
 *
 * A raw socket and the TLS socket over it are matched by their remote address and port, which identify a TCP
 * connection among the open ones.
 */
import type { Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { LimitReporter } from './log.js';

interface Tracked {
  readonly socket: Socket;
  authenticated: boolean;
}

export interface ConnectionStats {
  readonly open: number;
  readonly authenticated: number;
  readonly shed: number;
  readonly refused: number;
}

export class ConnectionGuard {
  /** In acceptance order (a Map iterates in insertion order): the first unauthenticated entry is the oldest. */
  private readonly open = new Map<string, Tracked>();
  private shed = 0;
  private refused = 0;

  constructor(
    private readonly max: number,
    private readonly limits: LimitReporter,
    private readonly isAuthenticated: (socket: TLSSocket) => boolean = (s) => s.authorized,
  ) {}

  /** Installs the guard on a TLS server; call before it listens. */
  attach(server: Server): void {
    // prepended: the guard decides before the TLS layer starts a handshake on the socket
    server.prependListener('connection', (socket: Socket) => this.accept(socket));
    server.on('secureConnection', (socket: TLSSocket) => {
      const t = this.open.get(key(socket));
      if (t !== undefined) t.authenticated = this.isAuthenticated(socket);
    });
  }

  private accept(socket: Socket): void {
    if (socket.remoteAddress === undefined) {
      socket.destroy(); // closed before it was accepted
      return;
    }
    const k = key(socket);
    if (this.open.size >= this.max && !this.shedOne()) {
      this.refused++;
      this.limits.hit('connections', { max: this.max, action: 'refused (every connection is authenticated)' });
      socket.destroy();
      return;
    }
    this.open.set(k, { socket, authenticated: false });
    socket.once('close', () => {
      if (this.open.get(k)?.socket === socket) this.open.delete(k);
    });
  }

  /** Closes the oldest unauthenticated connection; false when there is none. */
  private shedOne(): boolean {
    for (const [k, t] of this.open) {
      if (t.authenticated) continue;
      this.open.delete(k);
      t.socket.destroy();
      this.shed++;
      this.limits.hit('connections', { max: this.max, action: 'shed the oldest unauthenticated connection' });
      return true;
    }
    return false;
  }

  stats(): ConnectionStats {
    let authenticated = 0;
    for (const t of this.open.values()) if (t.authenticated) authenticated++;
    return { open: this.open.size, authenticated, shed: this.shed, refused: this.refused };
  }
}

function key(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}|${socket.remotePort ?? '?'}`;
}
