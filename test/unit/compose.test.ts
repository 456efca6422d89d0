/**
 * docker-compose.yml and the Dockerfile checked against the code they deploy. No Docker engine is
 * needed (CI has none): the compose file is parsed and its `${VAR}` interpolation done here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTE_TYPES } from '../../domain/search-attributes.js';
import { ALL_ENV_NAMES, ENV_VARS, loadConfig } from '../../config/config.js';

const root = new URL('../../', import.meta.url);
const read = (file: string): string => readFileSync(new URL(file, root), 'utf8');
const exists = (file: string): boolean => existsSync(new URL(file, root));

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: string | number })[];
  volumes?: (string | { source?: string; target: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
  entrypoint?: string | string[];
}

const composeText = read('docker-compose.yml');
// `merge`: the file shares worker/forwarder settings through `<<: *anchor`, which the yaml package
// resolves only when asked.
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const svc = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

/** Services that run to completion; everything else is long-running and needs a healthcheck. */
const ONE_SHOT = ['temporal-setup'];
const APP = ['worker', 'forwarder'] as const;

/** Standard variables (AWS SDK, Node) that may be set beside the ones config/config.ts reads. */
const STANDARD_ENV = [
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'NODE_ENV',
  'NODE_OPTIONS',
  'MALLOC_ARENA_MAX',
];

/** A service's environment as written (before interpolation); null means "pass through from the host". */
function rawEnv(s: Service): Record<string, string | null> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, null])),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? null : String(v)]));
}

const DUMMY_SECRET = 'dummy-secret-0123456789';

/**
 * Compose interpolation as `docker compose` does it for the forms this file may use: `$$`, `$VAR`,
 * `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`. A required
 * variable the host does not set becomes DUMMY_SECRET, standing in for the user's .env.
 */
function interpolate(value: string, host: Record<string, string> = {}): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_]\w*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_]\w*)/g,
    (match, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      if (bare) return host[bare] ?? '';
      const v = host[name!];
      const missing = v === undefined || (colon === ':' && v === '');
      if (!missing) return v;
      if (op === '-') return arg!;
      if (op === '?') return DUMMY_SECRET;
      return '';
    },
  );
}

/** The environment a container gets: interpolated, pass-through names taken from the host or left out. */
function containerEnv(s: Service, host: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawEnv(s))) {
    if (v === null) {
      if (host[k] !== undefined) out[k] = host[k];
    } else out[k] = interpolate(v, host);
  }
  return out;
}

/** Container ports a service publishes, from the short ("[ip:]host:container[/proto]") or long syntax. */
function containerPorts(s: Service): number[] {
  return (s.ports ?? []).map((p) =>
    typeof p === 'object' ? Number(p.target) : Number(String(p).split('/')[0]!.split(':').at(-1)),
  );
}

const dependsOn = (s: Service): Record<string, string | undefined> =>
  Array.isArray(s.depends_on)
    ? Object.fromEntries(s.depends_on.map((d) => [d, undefined]))
    : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([k, v]) => [k, v.condition]));

/** Dockerfile instructions per stage, continuation lines joined and comments dropped. */
function dockerfileStages(text: string): { from: string; instructions: [string, string][] }[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: { from: string; instructions: [string, string][] }[] = [];
  for (const line of lines) {
    const [, op, rest] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (!op || rest === undefined) continue;
    if (op.toUpperCase() === 'FROM') stages.push({ from: rest.split(/\s+/)[0]!, instructions: [] });
    else stages.at(-1)?.instructions.push([op.toUpperCase(), rest]);
  }
  return stages;
}

describe('docker-compose.yml', () => {
  it('has the Temporal stack, its one-shot setup and both pod-responder processes', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['postgresql', 'temporal', 'temporal-setup', 'temporal-ui', 'worker', 'forwarder']),
    );
  });

  it('gives every long-running service a healthcheck, and never restarts the one-shot setup', () => {
    for (const [name, s] of Object.entries(services)) {
      if (ONE_SHOT.includes(name)) {
        // A restart policy would rerun the setup forever, and `service_completed_successfully` never holds.
        expect(s.restart ?? 'no', name).toBe('no');
        continue;
      }
      const test = s.healthcheck?.test;
      expect(s.healthcheck?.disable, name).not.toBe(true);
      expect(
        Array.isArray(test) ? test.length > 1 && test[0] !== 'NONE' : typeof test === 'string' && test.length > 0,
        `${name} healthcheck`,
      ).toBe(true);
    }
  });

  it('starts each service only once what it needs is up', () => {
    expect(dependsOn(svc('temporal'))).toMatchObject({ postgresql: 'service_healthy' });
    expect(dependsOn(svc('temporal-setup'))).toMatchObject({ temporal: 'service_healthy' });
    // Workflows upsert the search attributes; a worker running before they exist fails workflow tasks.
    for (const name of APP)
      expect(dependsOn(svc(name)), name).toMatchObject({ 'temporal-setup': 'service_completed_successfully' });
  });

  it('pins every image, with Temporal on a 1.2x server and admin tools of the same server version', () => {
    for (const [name, s] of Object.entries(services)) {
      if (!s.image) continue;
      expect(s.image, name).toMatch(/:[\w.-]+$/);
      expect(s.image, name).not.toMatch(/:latest$/);
    }
    const server = /^temporalio\/auto-setup:(1\.2\d\.\d+)$/.exec(svc('temporal').image ?? '')?.[1];
    expect(server, svc('temporal').image).toBeDefined();
    expect(svc('temporal-setup').image).toMatch(
      new RegExp(`^temporalio/admin-tools:${server!.replace(/\./g, '\\.')}\\b`),
    );
    expect(svc('temporal-ui').image).toMatch(/^temporalio\/ui:/);
  });

  it('builds worker and forwarder from this repository, each running its own command', () => {
    for (const name of APP) {
      const build = svc(name).build;
      const context = typeof build === 'string' ? build : build?.context;
      expect(context, name).toMatch(/^\.\/?$/);
      expect(typeof build === 'object' ? (build.dockerfile ?? 'Dockerfile') : 'Dockerfile', name).toBe('Dockerfile');
      expect([svc(name).command].flat(), name).toEqual([name]);
    }
    expect(exists('Dockerfile')).toBe(true);
  });

  it('sets on worker and forwarder only variables the config reads, or standard AWS/Node ones', () => {
    const allowed = new Set([...ALL_ENV_NAMES, ...STANDARD_ENV]);
    for (const name of APP) {
      const unknown = Object.keys(rawEnv(svc(name))).filter((k) => !allowed.has(k));
      expect(unknown, `${name}: not in ALL_ENV_NAMES (config/config.ts) nor STANDARD_ENV`).toEqual([]);
    }
  });

  it('gives the forwarder every source credential the config has', () => {
    const credentials = Object.keys(ENV_VARS).filter((k) => /_(TOKEN|HMAC_SECRET)$/.test(k));
    expect(credentials.length).toBeGreaterThan(0);
    expect(Object.keys(rawEnv(svc('forwarder')))).toEqual(expect.arrayContaining(credentials));
  });

  it('passes the secured-Temporal settings to worker and forwarder alike, unset by default', () => {
    const names = Object.keys(ENV_VARS).filter((k) => k.startsWith('POD_RESPONDER_TEMPORAL_'));
    expect(names).toHaveLength(7);
    for (const name of APP) {
      const env = containerEnv(svc(name));
      for (const k of names) expect(env[k], `${name}.${k}`).toBe('');
      expect(
        containerEnv(svc(name), { POD_RESPONDER_TEMPORAL_API_KEY_FILE: '/etc/pod-responder/temporal/api-key' })
          .POD_RESPONDER_TEMPORAL_API_KEY_FILE,
      ).toBe('/etc/pod-responder/temporal/api-key');
    }
  });

  it('takes secrets from the environment or .env, never from the file itself', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [k, v] of Object.entries(rawEnv(s))) {
        if (!/TOKEN|SECRET|PASSWORD|PWD|^AWS_ACCESS|^AWS_SESSION/.test(k) || v === null) continue;
        expect(v, `${name}.${k}`).toMatch(/^\$\{[A-Za-z_]\w*(:?[-?][^}]*)?\}$/);
      }
    }
  });

  it('documents every variable it reads at the top of the file', () => {
    const header = composeText.slice(0, composeText.search(/^[^#\s]/m));
    const referenced = new Set([...composeText.replace(/\$\$/g, '').matchAll(/\$\{([A-Za-z_]\w*)/g)].map((m) => m[1]!));
    // Pass-through names (no value) are read from the host too.
    for (const s of Object.values(services))
      for (const [k, v] of Object.entries(rawEnv(s))) if (v === null) referenced.add(k);
    const undocumented = [...referenced].filter((v) => !new RegExp(`\\b${v}\\b`).test(header));
    expect(undocumented).toEqual([]);
  });

  it('has worker and forwarder agree on what goes into a workflow, in the namespace Temporal creates', () => {
    const worker = rawEnv(svc('worker'));
    const forwarder = rawEnv(svc('forwarder'));
    for (const k of [
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
      'POD_RESPONDER_TASK_QUEUE',
      'POD_RESPONDER_EXECUTOR',
      'POD_RESPONDER_POLICY',
    ]) {
      expect(forwarder[k], k).toBe(worker[k]);
    }
    expect(rawEnv(svc('temporal')).DEFAULT_NAMESPACE).toBe(worker.TEMPORAL_NAMESPACE);
    expect(rawEnv(svc('temporal-setup')).TEMPORAL_NAMESPACE).toBe(worker.TEMPORAL_NAMESPACE);
    // The address names the temporal service on the compose network.
    const [host, port] = interpolate(worker.TEMPORAL_ADDRESS ?? '').split(':');
    expect(services[host!], `TEMPORAL_ADDRESS host ${host}`).toBeDefined();
    expect(port).toBe('7233');
  });

  it('publishes the port the forwarder listens on, and probes /readyz on it', () => {
    const port = Number(containerEnv(svc('forwarder')).POD_RESPONDER_FORWARDER_PORT);
    expect(containerPorts(svc('forwarder'))).toEqual([port]);
    const probe = [svc('forwarder').healthcheck?.test].flat().join(' ');
    expect(probe).toContain(`:${port}/readyz`);
  });

  it('registers exactly the search attributes the workflow upserts', () => {
    const setup = svc('temporal-setup');
    const pairs = containerEnv(setup).SEARCH_ATTRIBUTES?.trim().split(/\s+/) ?? [];
    expect(Object.fromEntries(pairs.map((p) => p.split('=')))).toEqual(SEARCH_ATTRIBUTE_TYPES);
    // The script the setup service runs is mounted from this repository.
    const script = (setup.volumes ?? []).map((v) =>
      typeof v === 'string' ? interpolate(v).split(':') : [v.source, v.target],
    );
    const entry = [setup.entrypoint].flat().join(' ');
    const mounted = script.find(([, target]) => target && entry.includes(target));
    expect(mounted, 'entrypoint runs a mounted script').toBeDefined();
    expect(exists(mounted![0]!.replace(/^\.\//, ''))).toBe(true);
  });

  it('gives worker and forwarder a configuration loadConfig accepts, with defaults and with secrets set', () => {
    const port = containerPorts(svc('forwarder'))[0];
    const defaults = {
      worker: loadConfig(containerEnv(svc('worker'))),
      forwarder: loadConfig(containerEnv(svc('forwarder'))),
    };
    for (const c of Object.values(defaults)) {
      expect(c.temporal).toMatchObject({ address: 'temporal:7233', uiUrl: 'http://localhost:8233' });
    }
    expect(defaults.forwarder.forwarder.port).toBe(port);
    // The kubeconfig the direct executor reads lies in the folder mounted into the worker.
    const kubeconfig = defaults.worker.direct.kubeconfig ?? '';
    const mounts = (svc('worker').volumes ?? []).map((v) =>
      typeof v === 'string' ? interpolate(v).split(':')[1]! : v.target,
    );
    expect(
      mounts.some((m) => kubeconfig.startsWith(`${m}/`)),
      `${kubeconfig} inside ${mounts.join(', ')}`,
    ).toBe(true);
    // The forwarder's spool lies on a volume of its own: what it answered 202 for survives the container.
    const spool = defaults.forwarder.forwarder.spool.path;
    const spoolMounts = (svc('forwarder').volumes ?? []).map((v) =>
      typeof v === 'string' ? interpolate(v).split(':')[1]! : v.target,
    );
    expect(
      spoolMounts.some((m) => spool.startsWith(`${m}/`)),
      `${spool} inside ${spoolMounts.join(', ')}`,
    ).toBe(true);

    // As a user's .env would: every credential and the executor/policy the compose file passes on.
    const host: Record<string, string> = {
      POD_RESPONDER_EXECUTOR: 'eks-lambda',
      POD_RESPONDER_POLICY: '{}',
      AWS_REGION: 'eu-west-1',
    };
    const credentials = Object.keys(rawEnv(svc('forwarder'))).filter(
      (k) => /_(TOKEN|HMAC_SECRET)$/.test(k) && k in ENV_VARS,
    );
    credentials.forEach((k, i) => (host[k] = `${DUMMY_SECRET}-${i}`));
    const worker = loadConfig(containerEnv(svc('worker'), host));
    const forwarder = loadConfig(containerEnv(svc('forwarder'), host));
    expect(worker.executor).toBe('eks-lambda');
    expect(forwarder.executor).toBe('eks-lambda');
    expect(containerEnv(svc('worker'), host).AWS_REGION).toBe('eu-west-1');
    for (const k of credentials) {
      const path = ENV_VARS[k as keyof typeof ENV_VARS].split('.');
      const value = path.reduce<unknown>((o, key) => (o as Record<string, unknown>)[key], forwarder);
      expect(value, k).toBe(host[k]);
    }
  });
});

describe('Dockerfile', () => {
  const stages = dockerfileStages(read('Dockerfile'));
  const final = stages.at(-1)!;
  const ops = (op: string) => final.instructions.filter(([o]) => o === op).map(([, rest]) => rest);
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
  // The image has no sources: it runs the compiled CLI that package.json's launcher runs in an installed package.
  const builtCli = 'dist/client/cli.js';

  it('builds on node:22-bookworm-slim (Node.js 22 LTS) in stages, and runs as node without dev dependencies or a compiler', () => {
    expect(stages.length).toBeGreaterThan(1);
    for (const s of stages) expect(s.from).toBe('node:22-bookworm-slim');
    expect(stages[0]!.instructions.some(([o, r]) => o === 'RUN' && /npm run build/.test(r))).toBe(true);
    // Dependencies are built once (native ones need a compiler), pruned to production, and copied over.
    expect(stages[0]!.instructions.some(([o, r]) => o === 'RUN' && /npm prune\b.*--omit=dev/.test(r))).toBe(true);
    expect(ops('COPY').some((r) => /--from=\S+\s+\S*node_modules\/?\s/.test(r))).toBe(true);
    expect(ops('COPY').some((r) => /--from=\S+\s+\S*dist\/?\s/.test(r))).toBe(true);
    expect(ops('RUN').some((r) => /npm (ci|install)\b/.test(r))).toBe(false);
    expect(ops('USER').at(-1)).toBe('node');
  });

  it('carries the workflow bundle that `npm run build` writes last into dist/, which the final stage copies', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    // Last, so it bundles the compiled code it ships with (its first line names that code; a worker checks it).
    expect(scripts.build).toMatch(new RegExp(`&& node ${builtCli} bundle$`));
    expect(stages[0]!.instructions.some(([o, r]) => o === 'RUN' && r === 'npm run build')).toBe(true);
    expect(ops('COPY')).toContain('--from=build /app/dist ./dist');
    // Nothing rebuilds it in the final stage: no webpack run there, and no file of dist/ changed after the copy.
    expect(ops('RUN').filter((r) => /\bbundle\b|tsc|npm run/.test(r))).toEqual([]);
  });

  it("runs the compiled CLI, the one package.json's command runs where there are no sources, the worker by default", () => {
    expect(JSON.parse(ops('ENTRYPOINT').at(-1) ?? 'null')).toEqual(['node', builtCli]);
    expect(read(pkg.bin['pod-responder']!)).toContain(`'../${builtCli}'`);
    expect(JSON.parse(ops('CMD').at(-1) ?? 'null')).toEqual(['worker']);
  });

  it('keeps in the build context everything `npm run build` compiles, and secrets and host builds out', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim().replace(/^\/|\/$/g, ''))
      .filter((l) => l && !l.startsWith('#'));
    const { include } = JSON.parse(read('tsconfig.json')) as { include: string[] };
    expect(include.filter((dir) => ignored.includes(dir))).toEqual([]);
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.env']));
  });
});
