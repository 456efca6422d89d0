/**
 * The real node's images, built here because no registry is reachable: one layer holding Debian's static busybox and
 * the miner script, tagged three ways (the sandbox "pause" image, a plain busybox, the miner), written as a
 * `docker save` archive that `ctr images import` reads.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const IMAGES = {
  pause: 'pod-responder.local/pause:1',
  busybox: 'pod-responder.local/busybox:1',
  miner: 'pod-responder.local/miner:1',
} as const;

/** The pool's port on the node's bridge address. */
export const POOL_PORT = 3333;

/**
 * A stand-in cryptominer: keeps one connection to the pool ($POOL, host:port), submits a share a second on it and logs
 * a line per share; when the pool is lost it says so and reconnects, as miners do.
 */
const MINER = `#!/bin/sh
host=\${POOL%:*}
port=\${POOL##*:}
while :; do
  echo "connecting to pool $POOL"
  i=0
  while :; do
    i=$((i + 1))
    echo "{\\"id\\":$i,\\"method\\":\\"mining.submit\\",\\"params\\":[\\"$HOSTNAME\\",\\"$i\\"]}"
    echo "share $i submitted" >&2
    sleep 1
  done | nc -w 5 "$host" "$port" >/dev/null
  echo "pool connection lost" >&2
  sleep 1
done
`;

const APPLETS = [
  'sh',
  'sleep',
  'nc',
  'echo',
  'cat',
  'ls',
  'ps',
  'kill',
  'wget',
  'ip',
  'hostname',
  'env',
  'true',
  'false',
];

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Writes the archive into `dir` and returns its path. */
export function buildImageArchive(dir: string): string {
  const root = path.join(dir, 'rootfs');
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc'));
  fs.mkdirSync(path.join(root, 'tmp'));
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  for (const applet of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
  fs.writeFileSync(path.join(root, 'bin/miner'), MINER, { mode: 0o755 });
  fs.writeFileSync(
    path.join(root, 'etc/passwd'),
    'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnobody:x:65534:\n');

  const out = path.join(dir, 'archive');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  // Fixed owner and times: the same input gives the same layer digest.
  execFileSync('tar', [
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '--sort=name',
    '-C',
    root,
    '-cf',
    path.join(out, 'layer.tar'),
    '.',
  ]);
  const diffId = `sha256:${sha256(path.join(out, 'layer.tar'))}`;

  const manifest = Object.entries({
    [IMAGES.pause]: { Entrypoint: ['/bin/sleep', '2147483647'] },
    [IMAGES.busybox]: { Cmd: ['/bin/sh'] },
    [IMAGES.miner]: { Entrypoint: ['/bin/miner'] },
  }).map(([tag, cmd]) => {
    const config = JSON.stringify({
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'], WorkingDir: '/', ...cmd },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created_by: 'devstack/node-images.ts' }],
    });
    const name = `${createHash('sha256').update(config).digest('hex')}.json`;
    fs.writeFileSync(path.join(out, name), config);
    return { Config: name, RepoTags: [tag], Layers: ['layer.tar'] };
  });
  fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify(manifest));
  const archive = path.join(dir, 'images.tar');
  execFileSync('tar', ['-C', out, '-cf', archive, '.']);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(out, { recursive: true, force: true });
  return archive;
}
