/**
 * Runs one Lambda invocation for real: the function's zip unpacked into a temp task root, its handler
 * run by lambda-bootstrap.mjs in a child `node` with the function's environment and role credentials,
 * killed at the function's Timeout like Lambda's sandbox.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';

const BOOTSTRAP = fileURLToPath(new URL('./lambda-bootstrap.mjs', import.meta.url));
const PROJECT_NODE_MODULES = fileURLToPath(new URL('../../node_modules', import.meta.url));
// The parent-death signal takes an invocation down with the stack if the stack's process dies hard.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
/** Lambda's limit on a function's init phase (loading its handler) for on-demand functions. */
const INIT_LIMIT_SECONDS = 10;

export interface RunnableFunction {
  name: string;
  arn: string;
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memorySize: number;
  environment: Record<string, string>;
  zip: Buffer;
}

export interface RoleCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type InvocationOutcome =
  | { ok: true; payload: string; logs: string }
  | { ok: false; error: { errorType: string; errorMessage: string; trace?: string[] }; logs: string };

export class LambdaRunner {
  private readonly live = new Set<ReturnType<typeof spawn>>();

  constructor(
    /** Outside the repository, so a handler cannot resolve the project's node_modules by walking up. */
    private readonly workDir: string,
    private readonly log: (line: string) => void,
  ) {
    // Like the nodejs20.x runtime, which ships AWS SDK v3: handlers may import @aws-sdk/* without bundling it.
    const runtimeModules = path.join(workDir, 'node_modules');
    fs.mkdirSync(runtimeModules, { recursive: true });
    const sdk = path.join(PROJECT_NODE_MODULES, '@aws-sdk');
    if (fs.existsSync(sdk) && !fs.existsSync(path.join(runtimeModules, '@aws-sdk')))
      fs.symlinkSync(sdk, path.join(runtimeModules, '@aws-sdk'));
  }

  /** Unpacks each distinct zip once; invocations of the same code share the task root. */
  private taskRoot(fn: RunnableFunction): string {
    const digest = createHash('sha256').update(fn.zip).digest('hex').slice(0, 16);
    const root = path.join(this.workDir, `${fn.name}-${digest}`, 'task');
    if (fs.existsSync(root)) return root;
    const tmp = `${root}.${randomUUID()}`;
    fs.mkdirSync(tmp, { recursive: true });
    for (const [name, data] of Object.entries(unzipSync(new Uint8Array(fn.zip)))) {
      const target = path.resolve(tmp, name);
      if (!target.startsWith(tmp + path.sep)) throw new Error(`zip entry escapes the task root: ${name}`);
      if (name.endsWith('/')) {
        fs.mkdirSync(target, { recursive: true });
        continue;
      }
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, data);
    }
    try {
      fs.renameSync(tmp, root);
    } catch (err) {
      // A concurrent invocation of the same code unpacked it first.
      if (!fs.existsSync(root)) throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return root;
  }

  /**
   * `network`: asked before each TCP connect the function makes (its security groups' answer); unset: the
   * function's connects are not checked.
   */
  async invoke(
    fn: RunnableFunction,
    event: unknown,
    creds: RoleCredentials,
    endpointUrl: string,
    region: string,
    network?: (host: string, port: number) => Promise<{ allow: boolean; why: string }>,
  ): Promise<InvocationOutcome & { requestId: string }> {
    const requestId = randomUUID();
    const started = Date.now();
    const logLines: string[] = [`START RequestId: ${requestId} Version: $LATEST`];
    if (!fn.runtime.startsWith('nodejs')) {
      return {
        requestId,
        ok: false,
        error: {
          errorType: 'Runtime.InvalidRuntime',
          errorMessage: `the test front runs nodejs runtimes only, not ${fn.runtime}`,
        },
        logs: '',
      };
    }
    const taskRoot = this.taskRoot(fn);
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      // The SDK's notice about this machine's Node.js, not about the function.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...fn.environment,
      LAMBDA_TASK_ROOT: taskRoot,
      _HANDLER: fn.handler,
      AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${requestId.replaceAll('-', '')}`,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      ...(creds.sessionToken ? { AWS_SESSION_TOKEN: creds.sessionToken } : {}),
      // The SDK inside the function reaches the front, not AWS.
      AWS_ENDPOINT_URL: endpointUrl,
    };
    const bootstrap = [BOOTSTRAP, ...(network ? ['--guard-network'] : [])];
    const [file, args] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', process.execPath, ...bootstrap]]
      : [process.execPath, bootstrap];
    const child = spawn(file, args, { cwd: taskRoot, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.live.add(child);
    const onOutput = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n').filter(Boolean)) {
        logLines.push(line);
        this.log(`[lambda ${fn.name}] ${line}`);
      }
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);

    type Message =
      | { payload: string }
      | { error: { errorType: string; errorMessage: string; trace?: string[] } }
      | { type: 'ready' };
    type ConnectQuestion = { type: 'connect?'; id: number; host: string; port: number };
    child.on('message', (m: ConnectQuestion | Message) => {
      if (!('type' in m) || m.type !== 'connect?' || !network) return;
      network(m.host, m.port)
        .then(
          (a) => ({ allow: a.allow, why: a.why }),
          (err: unknown) => ({ allow: false, why: `the front could not decide: ${(err as Error).message}` }),
        )
        .then((a) => {
          this.log(
            `[lambda ${fn.name}] connect ${m.host}:${m.port} ${a.allow ? 'allowed' : 'refused'} by its security groups: ${a.why}`,
          );
          if (child.connected) child.send({ type: 'connect!', id: m.id, ...a }, () => undefined); // gone meanwhile: nothing to answer
        })
        .catch((err: unknown) =>
          this.log(`[lambda ${fn.name}] connect ${m.host}:${m.port}: could not answer: ${String(err)}`),
        );
    });
    const outcome = await new Promise<InvocationOutcome>((resolve) => {
      let message: Message | undefined;
      const timedOut = (errorMessage: string) => {
        child.kill('SIGKILL');
        resolve({ ok: false, error: { errorType: 'Sandbox.Timedout', errorMessage }, logs: '' });
      };
      // Lambda's init phase (loading the handler) has a limit of its own, 10 s; the function's timeout counts from
      // the invocation, after it. Counting a process start against a 1 s timeout would fail functions Lambda runs.
      let timer = setTimeout(
        () => timedOut(`${new Date().toISOString()} ${requestId} INIT timed out after ${INIT_LIMIT_SECONDS} seconds`),
        INIT_LIMIT_SECONDS * 1000,
      );
      child.on('message', (m: Message | { type: string }) => {
        if ('type' in m) {
          if (m.type !== 'ready') return; // a question about the network, answered above
          clearTimeout(timer);
          const deadline = Date.now() + fn.timeoutSeconds * 1000;
          timer = setTimeout(
            () =>
              timedOut(
                `${new Date().toISOString()} ${requestId} Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`,
              ),
            fn.timeoutSeconds * 1000,
          );
          child.send({ type: 'invoke', event, requestId, deadline, functionArn: fn.arn });
          return;
        }
        message = m;
        clearTimeout(timer);
        resolve('payload' in m ? { ok: true, payload: m.payload, logs: '' } : { ok: false, error: m.error, logs: '' });
      });
      child.once('exit', (code, signal) => {
        // The IPC message and the exit can arrive in either order: give the message a moment.
        setTimeout(() => {
          if (message) return;
          clearTimeout(timer);
          const why = signal ? `signal: ${signal}` : `exit status ${code}`;
          resolve({
            ok: false,
            error: {
              errorType: 'Runtime.ExitError',
              errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: ${why}`,
            },
            logs: '',
          });
        }, 100);
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        resolve({ ok: false, error: { errorType: 'Runtime.StartError', errorMessage: err.message }, logs: '' });
      });
    });
    this.live.delete(child);
    const ms = Date.now() - started;
    logLines.push(
      `END RequestId: ${requestId}`,
      `REPORT RequestId: ${requestId}\tDuration: ${ms} ms\tMemory Size: ${fn.memorySize} MB`,
    );
    return { ...outcome, logs: logLines.join('\n') + '\n', requestId };
  }

  close(): void {
    for (const child of this.live) child.kill('SIGKILL');
    this.live.clear();
  }
}
