import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultPolicy } from '../../domain/policy-defaults.js';
import { policySchema } from '../../domain/policy.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Modules the workflow bundle evaluates for every incident: the static, non-type imports from its entry point. */
function evaluatedWithEveryIncident(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm)].map(
      (m) => m[1]!,
    );
    seen.set(file, specifiers);
    for (const s of specifiers)
      if (s.startsWith('.')) visit(path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
  };
  visit(path.join(ROOT, entry));
  return seen;
}

describe('what every incident evaluates', () => {
  it('no module the workflow bundle evaluates per incident imports zod (~10 ms of CPU per incident created or replayed)', () => {
    const graph = evaluatedWithEveryIncident('workflows/index.ts');
    expect(graph.size).toBeGreaterThan(20); // the walk found the playbook's modules
    const importers = [...graph]
      .filter(([, specifiers]) => specifiers.includes('zod'))
      .map(([file]) => path.relative(ROOT, file));
    expect(importers).toEqual([]);
    // Nor loads it later: alert signals are checked by domain/alert-check.ts.
    const required = [...graph.keys()].filter((file) => /\brequire\(/.test(readFileSync(file, 'utf8')));
    expect(required.map((file) => path.relative(ROOT, file))).toEqual([]);
  });

  it('the policy an incident starts from is what an empty policy parses to', () => {
    expect(policySchema.parse({})).toEqual(defaultPolicy);
  });
});
