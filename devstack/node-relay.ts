/**
 * Relays from the node's bridge address to services the stack runs on loopback (kube-apiserver, Temporal), so pods
 * can reach them: pods reach the node's address and nothing beyond (docs/real-node.md), and there is no kube-proxy to
 * route the `kubernetes` Service's ClusterIP. Plain TCP, so TLS passes through untouched: kube-apiserver's serving
 * certificate names the node's address (its --advertise-address), and a pod checks it with its service account's CA.
 * Bound to the bridge address only: nothing off this machine can reach them.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface Relay {
  /** host:port pods connect to. */
  address: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startRelay(o: {
  name: string;
  host: string;
  port: number;
  targetHost: string;
  targetPort: number;
}): Promise<Relay> {
  const open = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: o.targetHost, port: o.targetPort });
    for (const s of [inbound, outbound]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      // Either side gone ends the other: a reset is a client or the service going, not a relay failure.
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound).on('close', () => inbound.destroy());
    outbound.pipe(inbound).on('close', () => outbound.destroy());
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new Error(`devstack: cannot relay ${o.name} on ${o.host}:${o.port} for pods: ${err.message}`)),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: `${o.host}:${port}`,
    host: o.host,
    port,
    close: () =>
      new Promise((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
