#!/usr/bin/env node
/**
 * `npm start` and `npm run stack`: devstack/cli.ts on plain Node.js.
 *
 * Under tsx every ES module, @kubernetes/client-node's 2,500 among them, costs a round trip to its loader
 * thread: a second of CPU in a start that has two cores for kube-apiserver, Temporal and the worker. So the
 * TypeScript is transpiled ahead by esbuild (tsx's own transpiler), packages left to Node, and kept under
 * node_modules/.cache with the hash of every file it was built from; a start whose files are unchanged runs it
 * without transpiling anything. Each file's `import.meta.url` stays its source's URL, so paths relative to
 * the sources resolve as they do under tsx. Stack traces name the transpiled files (readable, not minified);
 * `NODE_OPTIONS=--enable-source-maps npm start` maps them to the .ts sources, at half a second more per start.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = 'devstack/cli.ts';
// Inside the repository (a test sets another such folder): the build imports the packages from where it is.
const CACHE = process.env.POD_RESPONDER_DEVSTACK_CACHE || path.join(ROOT, 'node_modules/.cache/pod-responder/devstack');
/** Builds kept: a stack started before an edit may still load a chunk of its own build. */
const BUILDS_KEPT = 3;
const MANIFEST = path.join(CACHE, 'manifest.json');

const digest = (file) =>
  createHash('sha256')
    .update(readFileSync(path.join(ROOT, file)))
    .digest('hex');

/** What a build depends on beyond its input files: a new esbuild or Node.js may emit other code. */
function toolchain() {
  const esbuild = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/esbuild/package.json'), 'utf8')).version;
  return `esbuild ${esbuild}, node ${process.versions.node}, ${digest('tsconfig.json')}`;
}

/** The cached build's entry, if every file it was built from is unchanged. */
function cached(chain) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest.toolchain !== chain) return undefined;
  for (const [file, hash] of Object.entries(manifest.inputs)) {
    try {
      if (digest(file) !== hash) return undefined;
    } catch {
      return undefined; // deleted or renamed
    }
  }
  const entry = path.join(CACHE, manifest.build, manifest.entry);
  return existsSync(entry) ? entry : undefined; // the build removed by hand
}

/** Our modules keep their own URL: `new URL('..', import.meta.url)` means what it means in the source. */
const sourceUrls = {
  name: 'source-urls',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replaceAll(
        'import.meta.url',
        JSON.stringify(pathToFileURL(args.path).href),
      ),
      loader: 'ts',
    }));
  },
};

async function transpile(chain) {
  const { build } = await import('esbuild');
  const id = `build-${process.pid}-${Date.now()}`;
  const outdir = path.join(CACHE, id);
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [ENTRY],
    bundle: true,
    // Dynamic imports stay lazy: each becomes a chunk loaded when it runs.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    outdir,
    outExtension: { '.js': '.mjs' },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [sourceUrls],
  });
  const inputs = Object.fromEntries(Object.keys(result.metafile.inputs).map((file) => [file, digest(file)]));
  const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === ENTRY)[0];
  const manifest = { toolchain: chain, build: id, entry: path.relative(outdir, path.join(ROOT, entry)), inputs };
  // The manifest names the build it describes, and replaces the last one whole; older builds are removed.
  writeFileSync(`${MANIFEST}.${process.pid}.tmp`, JSON.stringify(manifest));
  renameSync(`${MANIFEST}.${process.pid}.tmp`, MANIFEST);
  pruneBuilds();
  return path.join(outdir, manifest.entry);
}

function pruneBuilds() {
  const builds = readdirSync(CACHE)
    .filter((name) => name.startsWith('build-'))
    .map((name) => ({ name, at: statSync(path.join(CACHE, name), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => b.at - a.at);
  for (const { name } of builds.slice(BUILDS_KEPT)) rmSync(path.join(CACHE, name), { recursive: true, force: true });
}

mkdirSync(CACHE, { recursive: true });
const chain = toolchain();
const entry = cached(chain) ?? (await transpile(chain));
const { runCli } = await import(pathToFileURL(entry).href);
await runCli(process.argv.slice(2));
