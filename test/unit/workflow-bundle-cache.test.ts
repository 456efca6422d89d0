import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneBundles } from '../../worker/workflow-bundle.js';

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
