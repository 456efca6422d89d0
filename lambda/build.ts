/**
 * Bundles the Lambda handler into one ESM file and zips it as `index.mjs` (Node.js 20 runtime,
 * handler `index.handler`). Run by `npm run build`; the worker uploads the zip at deploy time.
 */
import { build } from 'esbuild';
import { zipSync } from 'fflate';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const LAMBDA_ZIP = path.join(root, 'dist/lambda/remediation.zip');

export async function buildLambdaZip(out = LAMBDA_ZIP): Promise<{ path: string; bytes: number }> {
  const result = await build({
    entryPoints: [path.join(root, 'lambda/handler.ts')],
    bundle: true,
    platform: 'node',
    // Deployed on nodejs22.x; syntax no newer than Node 20's, so the test front runs the same zip on this machine's Node 20.
    target: 'node20',
    format: 'esm',
    minify: true,
    write: false,
    legalComments: 'none',
    // The runtime ships AWS SDK v3 (the evidence writes use its S3 client): not bundled.
    external: ['@aws-sdk/*'],
    // Some dependencies still call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  const code = result.outputFiles[0]!.contents;
  // A fixed mtime keeps the zip byte-identical for identical code.
  const zip = zipSync({ 'index.mjs': [code, { mtime: new Date('2020-01-01T00:00:00Z') }] }, { level: 9 });
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, zip);
  return { path: out, bytes: zip.byteLength };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { path: p, bytes } = await buildLambdaZip();
  process.stdout.write(`lambda bundle: ${p} (${(bytes / 1024).toFixed(0)} KiB)\n`);
}
