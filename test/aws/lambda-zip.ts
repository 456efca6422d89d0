/** Bundles a handler module into a Lambda deployment zip (index.mjs), as a deploy step would. */
import { build } from 'esbuild';
import { zipSync } from 'fflate';

export async function bundleLambdaZip(entry: string, opts: { external?: string[] } = {}): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    write: false,
    external: opts.external ?? [],
    // Some dependencies still call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return zipSync({ 'index.mjs': result.outputFiles[0]!.contents });
}
