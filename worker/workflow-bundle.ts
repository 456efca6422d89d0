/**
 * The workflow bundle, built once: the SDK's prebuilt-bundle pattern. `npm run build` ends with
 * `pod-responder bundle`, which writes dist/workflow-bundle.js with `bundleWorkflowCode`, and a compiled worker
 * (the image) runs it as `workflowBundle: { codePath }`, without webpack at start (about 5 s and 6 CPU seconds).
 *
 * Its first line names the code it was built from: a hash of the workflow's own modules (the compiled files the
 * entry point imports, transitively) and the lockfile (the SDK and every package bundled). A compiled worker whose
 * code no longer matches (tsc run without the bundle step) bundles at start instead, and says so, rather than run
 * workflow code other than its own.
 *
 * Run from source (tests, `npm start`), the bundle is kept under node_modules/.cache, named by the same hash, so
 * the many workers a test run starts bundle once; the 8 used last are kept (edits, and worktrees sharing it).
 */
import { bundleWorkflowCode, type Logger, type WorkerOptions } from '@temporalio/worker';
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

/** Bundles kept in the development cache: the source and compiled entry points, and a few edits back (about 2 MiB each). */
export const BUNDLES_KEPT = 8;
const FIRST_LINE = '// pod-responder workflow bundle of ';

/** Where `pod-responder bundle` writes the bundle of a compiled entry point: dist/workflow-bundle.js. */
export function prebuiltBundleFile(workflowsPath: string): string {
  return path.join(path.dirname(path.dirname(path.resolve(workflowsPath))), 'workflow-bundle.js');
}

/** Builds the bundle of `workflowsPath` into `file` (whole or not at all), headed by the hash of its code. */
export async function writeWorkflowBundle(workflowsPath: string, file: string, logger?: Logger): Promise<number> {
  const key = codeKey(workflowsPath);
  const { code } = await bundleWorkflowCode({ workflowsPath, ...(logger ? { logger } : {}) });
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${FIRST_LINE}${key}\n${code}`);
  renameSync(tmp, file); // whole or not at all, even with two workers starting at once
  return code.length;
}

/**
 * The worker's `workflowBundle`: the prebuilt file of a compiled entry point when it was built from this code;
 * otherwise the development cache's, built now if absent.
 */
export async function workflowBundle(
  workflowsPath: string,
  logger?: Logger,
): Promise<NonNullable<WorkerOptions['workflowBundle']>> {
  const key = codeKey(workflowsPath);
  if (workflowsPath.endsWith('.js')) {
    const prebuilt = prebuiltBundleFile(workflowsPath);
    const builtFrom = keyOf(prebuilt);
    if (builtFrom === key) return { codePath: prebuilt };
    logger?.warn(
      builtFrom === undefined
        ? `no prebuilt workflow bundle at ${prebuilt}: bundling now (npm run build writes it)`
        : `the workflow bundle at ${prebuilt} was built from other code: bundling now (npm run build rewrites it)`,
    );
  }
  const cached = path.join(packageRoot(workflowsPath), 'node_modules/.cache/pod-responder', `workflows-${key}.js`);
  if (keyOf(cached) === key) {
    markUsed(cached);
    return { codePath: cached };
  }
  try {
    await writeWorkflowBundle(workflowsPath, cached, logger);
    pruneBundles(path.dirname(cached), BUNDLES_KEPT);
    return { codePath: cached };
  } catch {
    // Not kept (a read-only filesystem): this start bundles for itself.
    return await bundleWorkflowCode({ workflowsPath, ...(logger ? { logger } : {}) });
  }
}

/** The hash a bundle file was built from, from its first line; undefined if there is none. */
function keyOf(file: string): string | undefined {
  let head: string;
  try {
    head = readFileSync(file, 'utf8').slice(0, FIRST_LINE.length + 64);
  } catch {
    return undefined;
  }
  return head.startsWith(FIRST_LINE) ? head.slice(FIRST_LINE.length).split('\n')[0] : undefined;
}

function markUsed(file: string): void {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // Pruned meanwhile, or a read-only filesystem: nothing is pruned there either.
  }
}

/** Every edit makes a new bundle: keep the `keep` used last, so the cache does not grow by 2 MiB an edit. */
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

/**
 * A hash of what the bundle is made of: the workflow's own modules (the entry point and every module it imports by
 * a relative path, transitively; type-only imports are not followed, as webpack does not bundle them) and the
 * lockfile, which pins the SDK and every package the bundle takes from node_modules.
 */
export function codeKey(workflowsPath: string): string {
  const hash = createHash('sha256');
  const root = packageRoot(workflowsPath);
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    hash.update(path.relative(root, file)).update('\0').update(source).update('\0');
    for (const [, specifier] of source.matchAll(
      /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'(\.[^']+)'/gm,
    ))
      visit(resolveModule(path.dirname(file), specifier!));
  };
  visit(path.resolve(workflowsPath));
  try {
    hash.update(readFileSync(path.join(root, 'package-lock.json')));
  } catch {
    // No lockfile: the modules alone.
  }
  return hash.digest('hex').slice(0, 24);
}

/** `./x.js` as the compiled file, or as the `.ts` source it is written from. */
function resolveModule(dir: string, specifier: string): string {
  const file = path.resolve(dir, specifier);
  if (existsSync(file)) return file;
  const ts = file.replace(/\.js$/, '.ts');
  if (existsSync(ts)) return ts;
  throw new Error(`the workflow module ${file} is missing`);
}
