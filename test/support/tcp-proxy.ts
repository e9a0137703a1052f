/**
 * A TCP relay in front of a real server (Redis, PostgreSQL), for outage tests: `cut()` closes the listener
 * and every connection (the server is gone: refused connections), `restore()` listens again on
 * the same port, `stall()` keeps connections open but stops forwarding (a hung server: commands
 * time out), `resume()` forwards again.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  private readonly held: { from: Socket; to: Socket; data: Buffer }[] = [];
  /** Connections accepted so far (each reconnect of a client is one more). */
  accepted = 0;

  private constructor(
    private boundPort: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
    const p = new TcpProxy(port, target);
    p.boundPort = await p.listen(port);
    return p;
  }

  /** The port the relay listens on (the same after restore()). */
  get port(): number {
    return this.boundPort;
  }

  /** A Redis URL through the relay (for PostgreSQL, set a URL's port to `port`). */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private listen(port: number): Promise<number> {
    const server = createServer((client) => {
      this.accepted++;
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      const relay = (from: Socket, to: Socket): void => {
        from.on('data', (data: Buffer) => {
          if (this.stalled) this.held.push({ from, to, data });
          else to.write(data);
        });
        from.on('close', () => to.destroy());
      };
      relay(client, upstream);
      relay(upstream, client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  }

  /** The server is gone: the listener closes and every open connection is dropped. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** The server is back, on the same port. */
  async restore(): Promise<void> {
    if (this.server) return;
    await this.listen(this.port);
  }

  /** Connections stay up but nothing is forwarded (held until resume()). */
  stall(): void {
    this.stalled = true;
  }

  resume(): void {
    this.stalled = false;
    for (const h of this.held.splice(0)) if (!h.to.destroyed) h.to.write(h.data);
  }

  async close(): Promise<void> {
    this.resume();
    await this.cut();
  }
}
