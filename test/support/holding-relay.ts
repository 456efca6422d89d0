/**
 * A TCP relay to kube-apiserver that can hold every byte in flight, both ways, on new and kept-alive connections
 * alike: a network path that stalls, so a worker's call is still running when the test kills the worker.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface HoldingRelay {
  /** A kubeconfig like `kubeconfigPath`'s, its server reached through the relay. */
  kubeconfig: string;
  hold(): void;
  release(): void;
  /** Bytes held from a client since the last hold(): a request is waiting. */
  readonly heldFromClients: number;
  close(): Promise<void>;
}

export async function startHoldingRelay(kubeconfigPath: string, dir: string): Promise<HoldingRelay> {
  const original = readFileSync(kubeconfigPath, 'utf8');
  const [, host, port] = /server: https:\/\/([^:\s]+):(\d+)/.exec(original)!;
  let held = false;
  let heldFromClients = 0;
  const queued: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket, fromClient: boolean) =>
    from.on('data', (d: Buffer) => {
      if (!held) return void to.write(d);
      if (fromClient) heldFromClients += d.length;
      queued.push(() => to.write(d));
    });
  const server = createServer((client) => {
    const upstream = connect(Number(port), host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (s === client ? upstream : client).destroy());
    }
    forward(client, upstream, true);
    forward(upstream, client, false);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeconfig = `${dir}/kubeconfig-through-relay`;
  writeFileSync(
    kubeconfig,
    original.replace(
      /server: https:\/\/[^:\s]+:\d+/,
      `server: https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ),
  );
  return {
    kubeconfig,
    hold: () => {
      held = true;
      heldFromClients = 0;
    },
    release: () => {
      held = false;
      for (const write of queued.splice(0)) write();
    },
    get heldFromClients() {
      return heldFromClients;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
