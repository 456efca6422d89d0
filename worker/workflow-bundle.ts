/**
 * The workflow bundle, built once per source. Webpack takes ~3 s at every worker start; a bundle cached under
 * node_modules/.cache, keyed by everything that could change it (every source file of the package, the
 * lockfile, the entry point), is read in milliseconds; the 8 used last are kept. The image builds its own when
 * it is built (`pod-responder bundle`); elsewhere, where the cache cannot be written (a read-only root filesystem),
 * the bundle is built at every start and simply not kept.
 */
import { bundleWorkflowCode, type Logger } from '@temporalio/worker';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';

const SKIP = new Set(['node_modules', '.git', '.stack', '.tools', '.ci', 'data']);
/** Bundles kept: the source and compiled entry points, and a few edits back (about 3 MiB each). */
export const BUNDLES_KEPT = 8;
const SOURCE = /\.(ts|js|mjs|cjs|json)$/;

/** Where the bundle of this source is kept. */
export function bundleCacheFile(workflowsPath: string): string {
  const root = packageRoot(workflowsPath);
  return path.join(root, 'node_modules/.cache/pod-responder', `workflows-${sourceKey(root, workflowsPath)}.js`);
}

export async function workflowBundle(workflowsPath: string, logger?: Logger): Promise<{ code: string }> {
  const file = bundleCacheFile(workflowsPath);
  const dir = path.dirname(file);
  const cached = readCached(file);
  if (cached !== undefined) return { code: cached };
  const { code } = await bundleWorkflowCode({ workflowsPath, ...(logger ? { logger } : {}) });
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, file); // whole or not at all, even with two workers starting at once
    pruneBundles(dir, BUNDLES_KEPT);
  } catch {
    // Not kept: the next start bundles again.
  }
  return { code };
}

/** The cached bundle, marked as used (pruning keeps the latest used); undefined if absent or pruned meanwhile. */
function readCached(file: string): string | undefined {
  let code: string;
  try {
    code = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // A read-only filesystem (the image's prebuilt bundle): nothing is pruned there either.
  }
  return code;
}

/** Every edit makes a new bundle: keep the `keep` used last, so the cache does not grow by 3 MiB an edit. */
export function pruneBundles(dir: string, keep: number): string[] {
  const bundles = readdirSync(dir)
    .filter((name) => /^workflows-[0-9a-f]+\.js$/.test(name))
    .map((name) => {
      try {
        return { name, used: statSync(path.join(dir, name)).mtimeMs };
      } catch {
        return undefined; // pruned by another worker meanwhile
      }
    })
    .filter((b) => b !== undefined)
    .sort((a, b) => b.used - a.used);
  const removed: string[] = [];
  for (const { name } of bundles.slice(keep)) {
    try {
      unlinkSync(path.join(dir, name));
      removed.push(name);
    } catch {
      // Another worker pruned it first.
    }
  }
  return removed;
}

function packageRoot(from: string): string {
  for (let dir = path.dirname(path.resolve(from)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (dir === path.dirname(dir)) return path.dirname(path.resolve(from));
  }
}

/** A hash of every source file of the package (outside node_modules), the lockfile and the entry point. */
function sourceKey(root: string, workflowsPath: string): string {
  const hash = createHash('sha256').update(path.relative(root, path.resolve(workflowsPath)));
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (SKIP.has(entry.name)) continue;
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (SOURCE.test(entry.name)) hash.update(path.relative(root, p)).update(readFileSync(p));
    }
  };
  walk(root);
  return hash.digest('hex').slice(0, 24);
}
