import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { codeKey, pruneBundles } from '../../worker/workflow-bundle.js';

describe('the workflow bundle cache', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the bundles used last and removes older ones, nothing else', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bundle-cache-'));
    const names = Array.from({ length: 10 }, (_, i) => `workflows-${i.toString(16).padStart(24, '0')}.js`);
    names.forEach((name, i) => {
      writeFileSync(path.join(dir, name), 'bundle');
      const used = new Date(Date.UTC(2026, 10, 1, 0, i)); // bundle i used at minute i
      utimesSync(path.join(dir, name), used, used);
    });
    writeFileSync(path.join(dir, 'workflows-0000.js.123.tmp'), 'being written');
    writeFileSync(path.join(dir, 'notes.txt'), 'not ours');

    expect(pruneBundles(dir, 8).sort()).toEqual([names[0], names[1]]);
    expect(readdirSync(dir).sort()).toEqual([...names.slice(2), 'notes.txt', 'workflows-0000.js.123.tmp'].sort());
    expect(pruneBundles(dir, 8)).toEqual([]);
  });
});

describe('the code a workflow bundle is made of (codeKey)', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('changes with any module the entry point imports, transitively, and with the lockfile; not with others', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bundle-key-'));
    const write = (file: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    };
    write('package.json', '{}');
    write('package-lock.json', '{"lockfileVersion": 3}');
    write('dist/workflows/index.js', "export * from './incident.js';\n");
    write(
      'dist/workflows/incident.js',
      "import {\n  a,\n} from '../domain/rules.js';\nimport type { T } from './types.js';\n",
    );
    write('dist/domain/rules.js', 'export const a = 1;\n');
    write('dist/client/cli.js', 'not in the bundle');
    const entry = path.join(dir, 'dist/workflows/index.js');
    const keys = [codeKey(entry)];
    write('dist/client/cli.js', 'changed, still not in the bundle');
    keys.push(codeKey(entry));
    write('dist/domain/rules.js', 'export const a = 2;\n');
    keys.push(codeKey(entry));
    write('package-lock.json', '{"lockfileVersion": 3, "packages": {}}');
    keys.push(codeKey(entry));
    expect(keys[1]).toBe(keys[0]);
    expect(new Set(keys.slice(1)).size).toBe(3);
  });
});
