import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The layer picture (docs/architecture.md): which product directory may import which. Arrows point down only;
 * a directory's own files are not listed. The CLI (client/) is the top: it launches the worker and the forwarder.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  domain: [],
  config: ['domain'],
  remediation: ['domain'],
  lambda: ['domain', 'remediation'],
  activities: ['domain', 'config', 'remediation', 'lambda'],
  workflows: ['domain', 'remediation', 'activities'],
  worker: ['domain', 'config', 'activities', 'workflows'],
  'temporal-client': ['domain', 'config', 'workflows'],
  forwarder: ['domain', 'config', 'temporal-client', 'workflows'],
  client: ['domain', 'config', 'workflows', 'temporal-client', 'worker', 'forwarder'],
};

/** What code outside workflows/ may load from it: the workflow's public contract (ids, messages); types from anywhere. */
const WORKFLOW_CONTRACT = ['workflows/ids.ts', 'workflows/messages.ts'];

interface Arrow {
  to: string;
  typeOnly: boolean;
}

/** The relative imports of a file: static and re-exports (`import type` marked), import() and require() (`typeof import()` marked). */
function arrowsOf(file: string, source: string): Arrow[] {
  const found = [
    ...[...source.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?'(\.[^']+)'/gm)].map((m) => ({
      spec: m[2]!,
      typeOnly: Boolean(m[1]),
    })),
    ...[...source.matchAll(/(typeof\s+)?\b(?:import|require)\(\s*'(\.[^']+)'\s*\)/g)].map((m) => ({
      spec: m[2]!,
      typeOnly: Boolean(m[1]),
    })),
  ];
  return found.map(({ spec, typeOnly }) => ({
    to: path.relative(ROOT, path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'))),
    typeOnly,
  }));
}

/** Why an arrow from `file` breaks the layer picture, or undefined when it keeps it. */
function upwardArrow(file: string, arrow: Arrow): string | undefined {
  const from = file.split('/')[0]!;
  const to = arrow.to.split('/')[0]!;
  if (from === to) return undefined;
  if (!MAY_IMPORT[from]!.includes(to))
    return `${file} imports ${arrow.to}: ${from}/ may import only ${MAY_IMPORT[from]!.join(', ') || 'nothing of ours'}`;
  if (to === 'workflows' && from !== 'workflows' && !arrow.typeOnly && !WORKFLOW_CONTRACT.includes(arrow.to))
    return `${file} imports ${arrow.to}: outside workflows/ only ${WORKFLOW_CONTRACT.join(', ')} (or types)`;
  if (from === 'workflows' && to === 'activities' && !arrow.typeOnly)
    return `${file} imports ${arrow.to}: the workflow takes activities' types only (their code runs in the worker)`;
  return undefined;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

describe('the layers', () => {
  it('every directory the build compiles has its place in the picture', () => {
    const build = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(Object.keys(MAY_IMPORT)).toEqual(expect.arrayContaining(build.include));
  });

  it('no product module imports upward', () => {
    const files = Object.keys(MAY_IMPORT).flatMap(sourceFiles);
    const arrows = files.flatMap((file) =>
      arrowsOf(file, readFileSync(path.join(ROOT, file), 'utf8')).map((arrow) => ({ file, arrow })),
    );
    // The walk really sees the arrows it checks, among them the forwarder's way to Temporal.
    expect(arrows).toContainEqual({
      file: 'forwarder/temporal-gateway.ts',
      arrow: { to: 'temporal-client/incidents.ts', typeOnly: false },
    });
    expect(arrows.filter(({ arrow }) => arrow.to.startsWith('forwarder/')).length).toBeGreaterThan(0);
    expect(arrows.map(({ file, arrow }) => upwardArrow(file, arrow)).filter(Boolean)).toEqual([]);
  });

  it('an upward or sideways import is reported, a type from a workflow is not', () => {
    const check = (file: string, source: string) =>
      arrowsOf(path.join(ROOT, file), source).map((a) => upwardArrow(file, a));
    expect(check('forwarder/x.ts', "import { program } from '../client/cli.js';")).toEqual([
      'forwarder/x.ts imports client/cli.ts: forwarder/ may import only domain, config, temporal-client, workflows',
    ]);
    expect(check('forwarder/x.ts', "const w = await import('../worker/main.js');")[0]).toContain(
      'imports worker/main.ts',
    );
    expect(check('forwarder/x.ts', "import {\n  decide,\n} from '../workflows/incident/decide.js';")).toEqual([
      'forwarder/x.ts imports workflows/incident/decide.ts: outside workflows/ only workflows/ids.ts, workflows/messages.ts (or types)',
    ]);
    expect(
      check('forwarder/x.ts', "import type { IncidentInput } from '../workflows/malicious-pod-response.js';"),
    ).toEqual([undefined]);
    expect(check('domain/x.ts', "export { loadConfig } from '../config/config.js';")[0]).toContain(
      'domain/ may import only nothing of ours',
    );
    expect(check('workflows/x.ts', "import { deletePod } from '../activities/direct-executor.js';")[0]).toContain(
      "activities' types only",
    );
  });
});
