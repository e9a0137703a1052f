/**
 * Bind a UDP socket for one call's media: an ephemeral port, a fixed port, or the first
 * free port of a configured range (searched from a rotating cursor so consecutive calls
 * do not all probe the same busy ports).
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

export function isPortRange(p: number | PortRange): p is PortRange {
  return typeof p === 'object';
}

function validPort(n: number, allowZero: boolean): boolean {
  return Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= 65535;
}

let rangeCursor = 0;

function bindOnce(host: string, port: number): Promise<Socket> {
  const family = isIP(host) === 6 ? 'udp6' : 'udp4';
  const socket = createSocket({ type: family, reuseAddr: false });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/**
 * Bind to `host` on `port` (0 = any free port) or on a free port in `range`. Rejects
 * with the last bind error if no port in the range is free, or at once on other errors.
 */
export async function bindUdp(host: string, port: number | PortRange): Promise<Socket> {
  if (isIP(host) === 0) throw new TypeError(`RTP bind host must be an IP address, got "${host}"`);
  if (!isPortRange(port)) {
    if (!validPort(port, true)) throw new RangeError(`RTP port must be 0..65535, got ${port}`);
    return bindOnce(host, port);
  }
  const { min, max } = port;
  if (!validPort(min, false) || !validPort(max, false) || min > max) throw new RangeError(`invalid RTP port range ${min}-${max}`);
  const size = max - min + 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < size; attempt++) {
    const candidate = min + ((rangeCursor + attempt) % size);
    try {
      const socket = await bindOnce(host, candidate);
      rangeCursor = (rangeCursor + attempt + 1) % size;
      return socket;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      lastError = err;
    }
  }
  throw new Error(`no free UDP port in ${min}-${max} on ${host}`, { cause: lastError });
}
