/**
 * The package as a user gets it: `npm pack` of a copy of this working tree (its `prepack` build included), then
 * `npm install` of the tarball into an empty folder, from the npm registry, as docs/cli.md says. The installed
 * command runs, the worker's modules load without a devDependency, and the forwarder (better-sqlite3 built by its
 * install script) takes an alert and spools it while Temporal is away. No stack: minutes of npm and tsc.
 */
import { execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../devstack/probes.js';
import { until } from '../support/until.js';

const root = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const execFileAsync = promisify(execFile);
/** execFile, failing with the command's output (tsc and npm say what went wrong on stdout). */
const run = (file: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }) =>
  execFileAsync(file, args, { ...opts, maxBuffer: 64 * 2 ** 20 }).catch((err: Error & { stdout?: string }) => {
    throw new Error(`${err.message}\n${err.stdout?.slice(-4000) ?? ''}`);
  });
const work = mkdtempSync(path.join(tmpdir(), 'pod-responder-pack-'));
const app = path.join(work, 'app');
const FALCO_TOKEN = 'falco-token-0123456789abcdef';

const src = path.join(work, 'src');
let packed: string[];
let inCheckout: { help: string; dist: boolean };

/**
 * A copy of the working tree (tracked and new files, as git sees them) with this checkout's node_modules, as
 * `npm ci` leaves a clone: `npx pod-responder --help` there, then `npm pack` (never in the checkout itself).
 */
async function packWorkingTree(): Promise<string> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (!existsSync(path.join(root, file))) continue; // deleted, not yet committed
    mkdirSync(path.dirname(path.join(src, file)), { recursive: true });
    copyFileSync(path.join(root, file), path.join(src, file));
  }
  symlinkSync(realpathSync(path.join(root, 'node_modules')), path.join(src, 'node_modules'));
  inCheckout = {
    help: (await run('npx', ['pod-responder', '--help'], { cwd: src })).stdout,
    dist: existsSync(path.join(src, 'dist')),
  };
  const out = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: src });
  // The prepack build writes to the same stdout, before npm's JSON.
  const [result] = JSON.parse(out.stdout.slice(out.stdout.indexOf('[\n  {'))) as {
    filename: string;
    files: { path: string }[];
  }[];
  packed = result!.files.map((f) => f.path);
  return path.join(work, result!.filename);
}

beforeAll(async () => {
  const tarball = await packWorkingTree();
  mkdirSync(app);
  // What a user types (docs/cli.md). --prefer-offline takes what this machine's npm cache already has.
  writeFileSync(path.join(app, '.npmrc'), 'allow-scripts=better-sqlite3\n');
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: app });
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

const npx = (args: string[]) => run('npx', ['pod-responder', ...args], { cwd: app });

describe('in a checkout', () => {
  it('`npx pod-responder --help` works after `npm ci`, with nothing built', () => {
    expect(inCheckout.dist).toBe(false);
    expect(inCheckout.help).toMatch(/^Usage: pod-responder /);
    expect(inCheckout.help).toMatch(/worker\s+run the Temporal worker/);
  });
});

describe('the npm package', () => {
  it('holds the command, the build with the Lambda bundle, and the deploy files; no sources, maps or tests', () => {
    expect(packed).toEqual(
      expect.arrayContaining([
        'bin/pod-responder.js',
        'dist/client/cli.js',
        'dist/forwarder/main.js',
        'dist/worker/main.js',
        'dist/lambda/remediation.zip',
        'deploy/aws/worker-policy.json',
        'README.md',
      ]),
    );
    expect(packed.filter((f) => /\.(ts|map)$/.test(f) || /^(test|devstack|bench|client|forwarder)\//.test(f))).toEqual(
      [],
    );
  });

  it('installs into an empty folder and runs `pod-responder --version` and `pod-responder worker --help`', async () => {
    expect((await npx(['--version'])).stdout).toBe(`${pkg.version}\n`);
    expect((await npx(['worker', '--help'])).stdout).toContain('run the Temporal worker');
    expect((await npx(['--help'])).stdout).toMatch(/forwarder\s+serve the HTTP alert endpoints/);
  });

  it('brings no package only the tests or the build need, and the worker with every activity loads without them', async () => {
    // devDependencies the lockfile marks dev-only (others, like semver, also come with a runtime dependency).
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev);
    expect(devOnly).toEqual(expect.arrayContaining(['@aws-sdk/client-sts', 'fflate', 'tsx', 'typescript']));
    expect(devOnly.filter((d) => existsSync(path.join(app, 'node_modules', d)))).toEqual([]);
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const w = await import('pod-responder/dist/worker/worker.js'); console.log(typeof w.createWorker)",
      ],
      { cwd: app, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
    );
    expect(stdout).toBe('function\n');
  });

  it("gives the Temporal SDK's packages one protobufjs 8, the one pinned (a package's overrides would not apply here)", async () => {
    const { stdout } = await run('npm', ['query', '#protobufjs'], { cwd: app });
    const copies = (JSON.parse(stdout) as { version: string; location: string }[]).filter((p) =>
      p.version.startsWith('8.'),
    );
    expect(copies.map((p) => `${p.location}@${p.version}`)).toEqual([
      `node_modules/protobufjs@${pkg.dependencies.protobufjs}`,
    ]);
  });

  it('runs the forwarder: an alert posted while Temporal is away is spooled (202 queued)', async () => {
    const [port, nobody] = await freePorts(2);
    const base = `http://127.0.0.1:${port}`;
    const bin = path.join(app, 'node_modules', pkg.name, 'bin/pod-responder.js');
    const forwarder = spawn(process.execPath, [bin, 'forwarder'], {
      cwd: app,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: `127.0.0.1:${nobody}`,
        POD_RESPONDER_FALCO_TOKEN: FALCO_TOKEN,
        POD_RESPONDER_FORWARDER_HOST: '127.0.0.1',
        POD_RESPONDER_FORWARDER_PORT: String(port),
        POD_RESPONDER_SPOOL_PATH: path.join(app, 'spool.db'),
        POD_RESPONDER_LOG_LEVEL: 'WARN',
      },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => forwarder.once('exit', resolve));
    try {
      await until('the installed forwarder answers', async () => (await fetch(`${base}/healthz`)).ok);
      const res = await fetch(`${base}/v1/alerts/falco?cluster=pack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${FALCO_TOKEN}` },
        body: readFileSync(path.join(root, 'test/fixtures/alerts/falco-stratum.json')),
      });
      expect({ status: res.status, body: await res.json() }).toMatchObject({
        status: 202,
        body: { results: [{ outcome: 'queued' }] },
      });
      expect(await (await fetch(`${base}/readyz`)).json()).toMatchObject({ spool: { depth: 1 } });
      expect(existsSync(path.join(app, 'spool.db'))).toBe(true);
    } finally {
      forwarder.kill('SIGKILL');
      await exited;
    }
  });
});
