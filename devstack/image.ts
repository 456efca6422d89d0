/**
 * The project's image, built here from the Dockerfile users build (docs/image.md): podman on the locally assembled
 * base (devstack/image-base.sh, through `tools.sh image-base`), with host networking, and this machine's CA bundle as a
 * build secret (the egress intercepts TLS; the secret is kept in no layer). Built once per input: the tag is a hash of
 * the base image and every file the build context holds (the Dockerfile and what `.dockerignore` lets through), so an
 * unchanged checkout costs one hash of a few MB. The image is also saved as a `docker save` archive, which
 * `ctr images import` (the real node's containerd) and `podman load` read.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureImageBase } from './tools.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The name the image gets here; its tag is the input hash. */
export const IMAGE_REPOSITORY = 'localhost/pod-responder';
/**
 * Archives (about 700 MB each) are removed once unused for a day, except the two used last: worktrees and helpers on
 * one machine build their own, and one may be about to import an archive another built.
 */
const ARCHIVES_KEPT = 2;
const ARCHIVE_UNUSED_MS = 24 * 3600_000;

export interface ProjectImage {
  /** `localhost/pod-responder:<hash>`, in podman's store. */
  ref: string;
  /** The input hash (16 hex digits): the base image's ID and the build context's files. */
  tag: string;
  /** A `docker save` archive of it: `ctr -n k8s.io images import <archive>` or `podman load -i <archive>`. */
  archive: string;
  podman: string;
}

function toolsDir(): string {
  return process.env.POD_RESPONDER_TOOLS_DIR ?? path.join(REPO_ROOT, '.tools');
}

/**
 * Why podman cannot build or run the image on this machine (empty when it can): tools.sh installs podman with apt,
 * which needs root on Debian; containers need Linux and root here (no rootless setup).
 */
export function podmanMissing(): string[] {
  if (process.platform !== 'linux') return [`a Linux host (this is ${process.platform})`];
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (the image is built and run with rootful podman)');
  const onPath = (cmd: string) =>
    (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, cmd)));
  if (!onPath('podman') && !onPath('apt-get')) missing.push('podman (Debian: apt-get install podman)');
  return missing;
}

/** The image of this checkout: built if its inputs changed, saved as an archive if not yet. */
export async function ensureImage(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<ProjectImage> {
  const base = await ensureImageBase(log);
  const tag = contextKey(REPO_ROOT, base.id).slice(0, 16);
  const ref = `${IMAGE_REPOSITORY}:${tag}`;
  const dir = path.join(toolsDir(), 'images');
  const archive = path.join(dir, `pod-responder-${tag}.tar`);
  fs.mkdirSync(dir, { recursive: true });
  // One build at a time on this machine (two test runs may get here together): the second finds the first's
  // layers in podman's cache and the archive written.
  const lock = path.join(toolsDir(), '.image.lock');
  if ((await run('podman', ['image', 'exists', ref], { quiet: true })) !== 0) {
    log(`[image] building ${ref} with podman (first time for these sources: several minutes)`);
    const args = ['build', '--network', 'host', '--pull=never', '-t', ref, '-f', 'Dockerfile'];
    const ca = hostCaBundle();
    if (ca) args.push('--secret', `id=ca,src=${ca}`);
    const code = await run('flock', [lock, base.podman, ...args, REPO_ROOT], { log });
    if (code !== 0) throw new Error(`podman build of ${ref} failed (exit ${code}); its output is above`);
  }
  if (fs.existsSync(archive)) {
    const now = new Date();
    fs.utimesSync(archive, now, now); // used: pruning keeps the archives used last
  } else {
    const tmp = `${archive}.${process.pid}.tmp`;
    const code = await run('flock', [lock, base.podman, 'save', '--format', 'docker-archive', '-o', tmp, ref], {
      log,
    });
    if (code !== 0) throw new Error(`podman save of ${ref} failed (exit ${code})`);
    fs.renameSync(tmp, archive);
    pruneArchives(dir, ARCHIVES_KEPT, ARCHIVE_UNUSED_MS);
  }
  return { ref, tag, archive, podman: base.podman };
}

/** The image's `docker save` archive (built first if needed), for `ctr -n k8s.io images import`. */
export async function imageArchive(log?: (line: string) => void): Promise<string> {
  return (await ensureImage(log)).archive;
}

/** The CA bundle this machine trusts (its egress intercepts TLS), if it has one: npm's cafile, else Debian's. */
function hostCaBundle(): string | undefined {
  return [process.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/certs/ca-certificates.crt'].find(
    (f): f is string => !!f && fs.existsSync(f),
  );
}

/**
 * A hash of what the build reads: the base image, the Dockerfile and every file of the build context (what
 * `.dockerignore` lets through), by path, executable bit and content.
 */
export function contextKey(root: string, baseId: string): string {
  const hash = createHash('sha256').update(`base ${baseId}\n`);
  const ignored = dockerignore(
    fs.existsSync(path.join(root, '.dockerignore')) ? fs.readFileSync(path.join(root, '.dockerignore'), 'utf8') : '',
  );
  const walk = (rel: string) => {
    const entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (ignored(p)) continue;
      const abs = path.join(root, p);
      if (e.isDirectory()) walk(p);
      else if (e.isSymbolicLink()) hash.update(`link ${p} ${fs.readlinkSync(abs)}\n`);
      else if (e.isFile()) {
        const exec = (fs.statSync(abs).mode & 0o111) !== 0;
        hash.update(`file ${p} ${exec ? 'x' : '-'}\n`).update(fs.readFileSync(abs));
      }
    }
  };
  walk('');
  return hash.digest('hex');
}

/**
 * `.dockerignore` as Docker reads it: each line a pattern on the path from the context's root (`*` within one
 * segment, `**` across any, `?` one character), a match on a folder excluding what it holds, a leading `!`
 * re-including, the last matching line deciding.
 */
export function dockerignore(text: string): (relPath: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).trim().replace(/^\/+|\/+$/g, '');
      const source = pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) =>
          part === '**/'
            ? '(?:.*/)?'
            : part === '**'
              ? '.*'
              : part === '*'
                ? '[^/]*'
                : part === '?'
                  ? '[^/]'
                  : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('');
      return { negate, re: new RegExp(`^${source}(?:/.*)?$`) };
    });
  return (relPath) => {
    let out = false;
    for (const r of rules) if (r.re.test(relPath)) out = !r.negate;
    return out;
  };
}

function pruneArchives(dir: string, keep: number, unusedMs: number): void {
  const archives = fs
    .readdirSync(dir)
    .filter((n) => /^pod-responder-[0-9a-f]+\.tar$/.test(n))
    .map((n) => ({ n, t: fs.statSync(path.join(dir, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n, t } of archives.slice(keep)) {
    if (Date.now() - t > unusedMs) fs.rmSync(path.join(dir, n), { force: true });
  }
}

/** Runs a command; its output, line by line, to `log` (unless quiet). Resolves with the exit code. */
function run(
  cmd: string,
  args: string[],
  o: { log?: (line: string) => void; quiet?: boolean } = {},
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', o.quiet ? 'ignore' : 'pipe', o.quiet ? 'ignore' : 'pipe'] });
    let pending = '';
    const onData = (d: Buffer) => {
      const lines = (pending + d.toString()).split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) o.log?.(l);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      if (pending) o.log?.(pending);
      resolve(code);
    });
  });
}
