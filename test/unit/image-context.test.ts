/** The image's cache key (devstack/image.ts): what the build context holds, as `.dockerignore` decides it. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { contextKey, dockerignore } from '../../devstack/image.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('.dockerignore as Docker reads it', () => {
  it("the repository's: host builds, tool caches, logs at the root and secrets out; sources in", () => {
    const ignored = dockerignore(readFileSync(path.join(root, '.dockerignore'), 'utf8'));
    for (const p of ['node_modules', 'node_modules/zod/index.js', 'dist/client/cli.js', '.tools/x', '.git/HEAD']) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ['.env', '.env.production', 'data', 'data/spool.db', 'stack.log', '.ci/results.json']) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ['Dockerfile', 'package.json', 'workflows/index.ts', '.ci/run', 'test/histories/x.json']) {
      expect(ignored(p), p).toBe(false);
    }
    // A pattern without a slash matches at the root only, as in Docker (not .gitignore).
    expect(ignored('devstack/build.log')).toBe(false);
  });

  it('`*` stays within a segment, `**` crosses any, `!` re-includes, the last matching line decides', () => {
    const ignored = dockerignore('# comment\n/docs/*.md\n**/*.tmp\n!keep/a.tmp\nbuild/\n');
    expect(ignored('docs/a.md')).toBe(true);
    expect(ignored('docs/sub/a.md')).toBe(false);
    expect(ignored('a.tmp')).toBe(true);
    expect(ignored('x/y/z.tmp')).toBe(true);
    expect(ignored('keep/a.tmp')).toBe(false);
    expect(ignored('build/out/x.js')).toBe(true);
    expect(ignored('builder/x.js')).toBe(false);
  });
});

describe('the context key', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('changes with a file the build copies or the base image, not with an ignored one', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-context-'));
    mkdirSync(path.join(dir, 'src'));
    mkdirSync(path.join(dir, 'node_modules'));
    writeFileSync(path.join(dir, '.dockerignore'), 'node_modules/\n');
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM node:22-bookworm-slim\n');
    writeFileSync(path.join(dir, 'src/a.ts'), 'export const a = 1;\n');
    writeFileSync(path.join(dir, 'node_modules/x.js'), 'one');
    const key = contextKey(dir, 'base-1');
    expect(contextKey(dir, 'base-1')).toBe(key);

    writeFileSync(path.join(dir, 'node_modules/x.js'), 'two');
    expect(contextKey(dir, 'base-1')).toBe(key);
    expect(contextKey(dir, 'base-2')).not.toBe(key);
    writeFileSync(path.join(dir, 'src/a.ts'), 'export const a = 2;\n');
    expect(contextKey(dir, 'base-1')).not.toBe(key);
  });
});
