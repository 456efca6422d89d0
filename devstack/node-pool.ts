/**
 * A stand-in for a stratum mining pool: a TCP server on the node's bridge address that the miner pods connect to. It
 * reports, per pod address, when it last heard from each miner, over HTTP on loopback (GET /miners), so a test can see
 * isolation as the network enforces it: the pool stops hearing from a miner whose process still runs.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';

export interface MinerSeen {
  /** When the pool last received bytes from this address (ISO time). */
  lastHeard: string;
  /** Share lines received in total. */
  shares: number;
  /** Connections open now. */
  connections: number;
}

export interface Pool {
  /** host:port the miners connect to. */
  address: string;
  /** http://127.0.0.1:<port>/miners */
  reportUrl: string;
  miners(): Record<string, MinerSeen>;
  /**
   * Closes the pool's connections from `address` (all when omitted), as a pool restart does: the miner reconnects, and
   * the new connection meets the network policy that an established one slips past (docs/real-node.md).
   */
  dropConnections(address?: string): number;
  close(): Promise<void>;
}

export async function startPool(host: string, port: number): Promise<Pool> {
  const seen = new Map<string, MinerSeen>();
  const sockets = new Map<import('node:net').Socket, string>();
  const tcp = createServer((socket) => {
    const from = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
    sockets.set(socket, from);
    const entry = seen.get(from) ?? { lastHeard: new Date().toISOString(), shares: 0, connections: 0 };
    entry.connections++;
    seen.set(from, entry);
    socket.on('data', (chunk) => {
      entry.lastHeard = new Date().toISOString();
      entry.shares += chunk.toString().split('\n').filter(Boolean).length;
    });
    socket.on('error', () => undefined); // a reset connection is a miner gone, not a pool failure
    socket.on('close', () => {
      entry.connections--;
      sockets.delete(socket);
    });
    // Holds the connection and never answers, like a pool that only acknowledges shares.
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, host, resolve);
  });
  const miners = () => Object.fromEntries(seen);
  const http = createHttpServer((req, res) => {
    if (req.url !== '/miners') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(miners()));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    address: `${host}:${port}`,
    reportUrl: `http://127.0.0.1:${(http.address() as AddressInfo).port}/miners`,
    miners,
    dropConnections: (address) => {
      const dropped = [...sockets].filter(([, from]) => !address || from === address);
      dropped.forEach(([s]) => s.destroy());
      return dropped.length;
    },
    close: async () => {
      sockets.forEach((_, s) => s.destroy());
      await Promise.all([new Promise((r) => tcp.close(r)), new Promise((r) => http.close(r))]);
    },
  };
}
