// The Lambda Node.js runtime in miniature, run by lambda-runner.ts as a child `node` process per
// invocation: loads `<file>.<export>` from _HANDLER under LAMBDA_TASK_ROOT like Lambda does
// (.mjs, then .js, then .cjs), calls it with the event and a context, and sends the outcome back over
// IPC. Plain JavaScript so it runs on bare node, without the TypeScript loader the tests use.
import { existsSync } from 'node:fs';
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
    throw Object.assign(new Error(`${err?.name ?? 'Error'}: ${err?.message ?? err}`), { name: 'Runtime.ImportModuleError', stack: err?.stack });
  }
  let fn = mod;
  for (const key of exportPath.split('.')) fn = fn?.[key] ?? fn?.default?.[key];
  if (typeof fn !== 'function') {
    throw Object.assign(new Error(`${handlerSpec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  }
  return fn;
}

process.on('unhandledRejection', (err) => reply({ error: { ...errorOf(err), errorType: 'Runtime.UnhandledPromiseRejection' } }));
process.on('uncaughtException', (err) => reply({ error: errorOf(err) }));

process.once('message', async ({ event, requestId, deadline, functionArn }) => {
  let handler;
  try {
    handler = await loadHandler(process.env.LAMBDA_TASK_ROOT, process.env._HANDLER);
  } catch (err) {
    return reply({ error: errorOf(err) });
  }
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
        ? await new Promise((resolve, reject) => handler(event, context, (err, value) => (err ? reject(err) : resolve(value))))
        : await handler(event, context);
    reply({ payload: JSON.stringify(result === undefined ? null : result) });
  } catch (err) {
    reply({ error: errorOf(err) });
  }
});
