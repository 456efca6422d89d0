// The Lambda Node.js runtime in miniature, run by lambda-runner.ts as a child `node` process per
// invocation: loads `<file>.<export>` from _HANDLER under LAMBDA_TASK_ROOT like Lambda does
// (.mjs, then .js, then .cjs), calls it with the event and a context, and sends the outcome back over
// IPC. Plain JavaScript so it runs on bare node, without the TypeScript loader the tests use.
//
// A VPC function's network: every TCP connect is held until the front answers whether the function's
// security groups let it through (function-network.ts); one they do not is never made, like a dropped SYN.
import { existsSync } from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

function errorOf(err) {
  if (err instanceof Error) {
    return { errorType: err.name || 'Error', errorMessage: err.message, trace: (err.stack ?? '').split('\n') };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

function reply(message) {
  // Exit only once the parent has the message: process.send is asynchronous.
  process.send(message, () => process.exit(0));
}

async function loadHandler(taskRoot, handlerSpec) {
  const dot = handlerSpec.lastIndexOf('.');
  if (dot <= 0) throw Object.assign(new Error(`Bad handler ${handlerSpec}`), { name: 'Runtime.MalformedHandlerName' });
  const file = handlerSpec.slice(0, dot);
  const exportPath = handlerSpec.slice(dot + 1);
  const base = path.resolve(taskRoot, file);
  const found = ['.mjs', '.js', '.cjs'].map((ext) => base + ext).find((p) => existsSync(p));
  if (!found) throw Object.assign(new Error(`Cannot find module '${file}'`), { name: 'Runtime.ImportModuleError' });
  let mod;
  try {
    // import() decides ESM or CommonJS by extension and the nearest package.json, as Lambda does.
    mod = found.endsWith('.cjs') ? createRequire(found)(found) : await import(pathToFileURL(found).href);
  } catch (err) {
    throw Object.assign(new Error(`${err?.name ?? 'Error'}: ${err?.message ?? err}`), {
      name: 'Runtime.ImportModuleError',
      stack: err?.stack,
    });
  }
  let fn = mod;
  for (const key of exportPath.split('.')) fn = fn?.[key] ?? fn?.default?.[key];
  if (typeof fn !== 'function') {
    throw Object.assign(new Error(`${handlerSpec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  }
  return fn;
}

const answers = new Map();
let asked = 0;
const HELD = Symbol('held until the security groups answer');

function guardConnects() {
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    if (this[HELD]) return connect.apply(this, args);
    // net.connect() passes its arguments already normalized, as one array.
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    const options =
      first !== null && typeof first === 'object'
        ? first
        : { port: first, host: typeof args[1] === 'string' ? args[1] : undefined };
    if (options.path || (typeof first === 'string' && !/^\d+$/.test(first))) return connect.apply(this, args); // a local socket, as net decides
    const host = options.host ?? 'localhost';
    const port = Number(options.port);
    const id = ++asked;
    // Writes made meanwhile wait for 'connect', as they do while a socket connects.
    this.connecting = true;
    answers.set(id, ({ allow, why }) => {
      if (this.destroyed) return;
      if (!allow) {
        process.stderr.write(`[network] connection to ${host}:${port} dropped: ${why}\n`);
        return;
      }
      this[HELD] = true;
      connect.apply(this, args);
    });
    process.send({ type: 'connect?', id, host, port });
    return this;
  };
}

process.on('message', (m) => {
  if (m?.type !== 'connect!') return;
  const answer = answers.get(m.id);
  answers.delete(m.id);
  answer?.(m);
});

process.on('unhandledRejection', (err) =>
  reply({ error: { ...errorOf(err), errorType: 'Runtime.UnhandledPromiseRejection' } }),
);
process.on('uncaughtException', (err) => reply({ error: errorOf(err) }));

// Init, as Lambda's init phase: the handler loaded before the invocation, under its own limit (the runner's), not
// the function's timeout. A VPC function's connects are guarded from the start, its init's included.
if (process.argv.includes('--guard-network')) guardConnects();
let handler;
try {
  handler = await loadHandler(process.env.LAMBDA_TASK_ROOT, process.env._HANDLER);
  process.send({ type: 'ready' });
} catch (err) {
  reply({ error: errorOf(err) });
}

process.on('message', async (m) => {
  if (m?.type !== 'invoke' || !handler) return;
  const { event, requestId, deadline, functionArn } = m;
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: functionArn,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    // Callback-style handlers (three parameters) are still supported by the nodejs20.x runtime.
    const result =
      handler.length >= 3
        ? await new Promise((resolve, reject) =>
            handler(event, context, (err, value) => (err ? reject(err) : resolve(value))),
          )
        : await handler(event, context);
    reply({ payload: JSON.stringify(result === undefined ? null : result) });
  } catch (err) {
    reply({ error: errorOf(err) });
  }
});
