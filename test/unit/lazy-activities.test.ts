import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createCredentialsActivities } from '../../activities/credentials.js';
import { createEksLambdaActivities } from '../../activities/eks-lambda/index.js';
import { createActivities, type ActivityDeps } from '../../activities/index.js';
import { lazyActivities } from '../../activities/lazy.js';

const deps = {
  direct: { kubeconfig: '/nonexistent' },
  eks: { lambdaZip: 'remediation.zip', installationId: 'test', endpoint: 'http://127.0.0.1:9' },
  evidence: { prefix: '', logBytesPerContainer: 1, retentionDays: 1 },
  notify: { targets: [], uiUrl: '', namespace: 'default' },
  temporal: {},
} as unknown as ActivityDeps;

describe('lazyActivities', () => {
  it('loads the module once, on the first call, for calls made together', async () => {
    let loads = 0;
    const acts = lazyActivities(['double', 'name'] as const, async () => {
      loads++;
      return { double: async (n: number) => n * 2, name: async () => 'real' };
    });
    expect(loads).toBe(0);
    expect(await Promise.all([acts.double(2), acts.double(5), acts.name()])).toEqual([4, 10, 'real']);
    expect(loads).toBe(1);
  });

  it('tries a failed load again on the next call rather than failing every later attempt', async () => {
    let loads = 0;
    const acts = lazyActivities(['ping'] as const, async () => {
      if (++loads === 1) throw new Error('cannot load');
      return { ping: async () => 'pong' };
    });
    await expect(acts.ping()).rejects.toThrow('cannot load');
    expect(await acts.ping()).toBe('pong');
    expect(loads).toBe(2);
  });
});

describe('the worker registers the AWS activities without loading them', () => {
  it('registers every activity the EKS executor and the credentials revocation create', () => {
    const registered = Object.keys(createActivities(deps));
    expect(registered).toEqual(expect.arrayContaining(Object.keys(createEksLambdaActivities(deps.eks))));
    expect(registered).toEqual(expect.arrayContaining(Object.keys(createCredentialsActivities(deps.eks))));
  });

  it('loads the AWS SDK clients beyond S3 only when an activity that needs them runs', () => {
    // A fresh process: this one has loaded them above. Run from source with tsx, as the worker's tests do.
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(${JSON.stringify(root)} + '/package.json');
      const clients = () => Object.keys(require.cache).map((k) => /@aws-sdk\\/(client-[a-z0-9-]+)\\/dist-cjs\\/index\\.js$/.exec(k)?.[1]).filter(Boolean).sort();
      const { createActivities } = await import(${JSON.stringify(root + 'activities/index.ts')});
      const acts = createActivities(${JSON.stringify(deps)});
      const atStart = clients();
      await acts.describeTargetCluster('c', 'us-east-1').catch(() => undefined);
      console.log(JSON.stringify({ atStart, afterEksCall: clients() }));`;
    const tsx = createRequire(import.meta.url).resolve('tsx');
    const out = execFileSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], {
      cwd: root,
      env: {
        ...process.env,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_MAX_ATTEMPTS: '1',
      },
      encoding: 'utf8',
    });
    const { atStart, afterEksCall } = JSON.parse(out.trim().split('\n').at(-1)!) as {
      atStart: string[];
      afterEksCall: string[];
    };
    expect(atStart).toEqual(['client-s3']); // evidence bundles
    expect(afterEksCall).toEqual([
      'client-cloudwatch-logs',
      'client-ec2',
      'client-eks',
      'client-iam',
      'client-lambda',
      'client-s3',
    ]);
  });
});
