/** Is a loopback port free? (Used before starting an instance, and by tests picking ports.) */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { SANDBOX_BIND_ADDRESS, type PbxPorts } from './options.js';

export function tcpPortFree(port: number, host = SANDBOX_BIND_ADDRESS): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export function udpPortFree(port: number, host = SANDBOX_BIND_ADDRESS): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind({ port, address: host, exclusive: true }, () => sock.close(() => resolve(true)));
  });
}

/** The SIP/HTTP/AMI ports of `ports` that something already holds on 127.0.0.1, described. */
export async function busyPorts(ports: PbxPorts): Promise<string[]> {
  const busy: string[] = [];
  if (!(await udpPortFree(ports.sip))) busy.push(`SIP ${ports.sip}/udp`);
  if (!(await tcpPortFree(ports.http))) busy.push(`HTTP/ARI ${ports.http}/tcp`);
  if (!(await tcpPortFree(ports.ami))) busy.push(`AMI ${ports.ami}/tcp`);
  return busy;
}
