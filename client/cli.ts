#!/usr/bin/env node
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { parseAlert } from '../domain/alert.js';
import { InputError, parseWith } from '../domain/validation-errors.js';
import { loadConfig } from '../config/config.js';
import { escalateSignal, restoreUpdate, statusQuery } from '../workflows/messages.js';
import { answerProposal } from './approvals.js';
import { ACTIONS } from '../domain/decide.js';
import { answerAll, atOnceFor, awaitingApproval, bulkOptionsSchema } from './bulk-answers.js';
import { filtersSchema, formatInbox, inboxQuery, listIncidents, OUTCOMES, STAGES, type InboxFilters } from './inbox.js';
import { connectClient, respondToAlert, workflowUiUrl } from '../temporal-client/incidents.js';

/** The version in the package.json above this file: client/ in a checkout, dist/client/ when built. */
function packageVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    const file = new URL(up, import.meta.url);
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  }
  throw new Error(`no package.json above ${import.meta.url}`);
}

const program = new Command()
  .name('pod-responder')
  .description('Durable response to malicious activity in Kubernetes pods (Temporal worker and client)')
  .version(packageVersion())
  .showHelpAfterError();

const print = (value: unknown): void => {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
};

program
  .command('worker')
  .description('run the Temporal worker (config from POD_RESPONDER_CONFIG and the environment)')
  .action(async () => {
    const { runWorkerFromEnv } = await import('../worker/main.js');
    await runWorkerFromEnv();
  });

program
  .command('bundle')
  .description(
    "build the workers' workflow bundle into dist/workflow-bundle.js, so that compiled workers start without webpack (npm run build runs it)",
  )
  .action(async () => {
    const [{ writeWorkflowBundle, prebuiltBundleFile }, { workflowsPath }] = await Promise.all([
      import('../worker/workflow-bundle.js'),
      import('../worker/worker.js'),
    ]);
    const entry = workflowsPath();
    if (!entry.endsWith('.js'))
      throw new Error(
        'run the compiled CLI (node dist/client/cli.js bundle): from source, workers keep their own bundle',
      );
    const file = prebuiltBundleFile(entry);
    const bytes = await writeWorkflowBundle(entry, file);
    print(`workflow bundle ready: ${file} (${(bytes / 2 ** 20).toFixed(1)} MiB)`);
  });

program
  .command('forwarder')
  .description('serve the HTTP alert endpoints (XDR, Falco, GuardDuty, normalized) that start incidents')
  .action(async () => {
    const { runForwarderFromEnv } = await import('../forwarder/main.js');
    await runForwarderFromEnv();
  });

program
  .command('all-in-one')
  .description(
    'run the worker and the forwarder in one process, on one Temporal connection: new incidents start eagerly (small installations)',
  )
  .action(async () => {
    const { runAllInOneFromEnv } = await import('./all-in-one.js');
    await runAllInOneFromEnv();
  });

program
  .command('respond')
  .argument('<alert.json>', 'a normalized PodAlert as JSON ("-" reads standard input)')
  .option('--wait', 'wait for the incident to close and print its result')
  .description("start (or add a repeat alert to) the incident for the alert's pod")
  .action(async (file: string, opts: { wait?: boolean }) => {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new InputError('alert', [`${file}: not JSON (${(err as Error).message})`]);
    }
    const alert = parseAlert(json);
    const config = loadConfig();
    const client = await connectClient(config);
    const started = await respondToAlert(client, config, alert);
    print(started);
    if (opts.wait) {
      // The result is a summary: print the whole closed incident, as `status` would.
      const handle = client.workflow.getHandle(started.workflowId);
      await handle.result();
      print(await handle.query(statusQuery));
    }
    await client.connection.close();
  });

/** Registers a command that talks to one running incident. */
function incidentCommand(
  name: string,
  description: string,
  run: (
    h: ReturnType<Awaited<ReturnType<typeof connectClient>>['workflow']['getHandle']>,
    o: Record<string, string>,
  ) => Promise<unknown>,
  options: [string, string, boolean][] = [],
) {
  const cmd = program
    .command(name)
    .argument('<workflow-id>', 'the incident (as printed by respond)')
    .description(description);
  for (const [flags, help, required] of options) {
    if (required) cmd.requiredOption(flags, help);
    else cmd.option(flags, help);
  }
  cmd.action(async (workflowId: string, opts: Record<string, string>) => {
    const config = loadConfig();
    const client = await connectClient(config);
    try {
      print(
        (await run(client.workflow.getHandle(workflowId), opts)) ?? {
          ok: true,
          workflowId,
          ui: workflowUiUrl(config, workflowId),
        },
      );
    } finally {
      await client.connection.close();
    }
  });
}

const by: [string, string, boolean] = ['--by <who>', 'who is acting (recorded in the timeline)', true];
const reason = (required: boolean): [string, string, boolean] => ['--reason <text>', 'why', required];

incidentCommand(
  'escalate',
  'suspend the whole workload, not just the pod',
  (h, o) => h.signal(escalateSignal, { by: o.by!, reason: o.reason! }).then(() => undefined),
  [by, reason(true)],
);
const proposal: [string, string, boolean] = [
  '--proposal <id>',
  'the proposal answered (default: the one open now, see status)',
  false,
];
const answer = (o: Record<string, string>) => ({
  by: o.by!,
  ...(o.reason ? { reason: o.reason } : {}),
  ...(o.proposal ? { proposalId: o.proposal } : {}),
});
incidentCommand(
  'approve',
  'approve the action the incident proposes',
  (h, o) => answerProposal(h, 'approved', answer(o)),
  [by, reason(false), proposal],
);
incidentCommand(
  'deny',
  'deny the action the incident proposes (the incident is dismissed)',
  (h, o) => answerProposal(h, 'denied', answer(o)),
  [by, reason(false), proposal],
);
incidentCommand(
  'restore',
  'undo the workload suspension from its recorded prior state, and release a credentials revocation',
  (h, o) => h.executeUpdate(restoreUpdate, { args: [{ by: o.by!, ...(o.reason ? { reason: o.reason } : {}) }] }),
  [by, reason(false)],
);
incidentCommand('status', 'print stage, decision, actions and timeline', (h) => h.query(statusQuery));

for (const [name, answer, verb] of [
  ['approve-all', 'approved', 'approve'],
  ['deny-all', 'denied', 'deny'],
] as const) {
  program
    .command(name)
    .description(
      `${verb} the open proposal of every incident awaiting approval that the filters select (without --yes: list them, change nothing)`,
    )
    .requiredOption('--by <who>', 'who is acting (recorded in each timeline)')
    .option('--reason <text>', 'why')
    .option('--action <action>', `only proposals of this action: ${ACTIONS.join(' or ')}`)
    .option('--cluster <name>', 'the cluster as alerts name it')
    .option('--namespace <name>', "the pod's namespace")
    .option('--since <age>', 'started within (30m, 12h, 7d) or after an ISO 8601 time')
    .option('--limit <n>', 'at most this many incidents (default 100)')
    .option('--at-once <n>', 'answers in flight at once (default: the worker cache / 6)')
    .option('--yes', `${verb} them; without it nothing is answered`)
    .action(
      async (
        opts: Omit<InboxFilters, 'stage' | 'outcome'> & {
          by: string;
          reason?: string;
          action?: string;
          atOnce?: string;
          yes?: boolean;
        },
      ) => {
        const { by, reason: why, action, atOnce, yes, ...filters } = opts;
        const config = loadConfig();
        const { limit } = parseWith(filtersSchema, 'filters', filters); // exact errors for bad filters before anything is read
        const options = parseWith(bulkOptionsSchema, 'options', {
          by,
          reason: why,
          action,
          atOnce: atOnce ?? atOnceFor(config.worker.maxCachedIncidents),
        });
        const client = await connectClient(config);
        try {
          const rows = await awaitingApproval(client, filters);
          const capped = rows.length === limit ? ` (the first ${limit}: more may match, --limit raises it)` : '';
          if (!yes) {
            process.stdout.write(formatInbox(rows));
            return print(
              `${rows.length} incident(s) awaiting approval match${capped}; nothing was answered. Run again with --yes to ${verb} their open proposals${action ? ` (those proposing ${action} only)` : ''}.`,
            );
          }
          if (capped)
            process.stderr.write(
              `answering ${rows.length} incidents${capped}; running the command again answers the next ones\n`,
            );
          const stop = new AbortController();
          process.once('SIGINT', () => {
            process.stderr.write('stopping: the answers in flight finish, no new ones are sent\n');
            stop.abort();
          });
          let shown = 0;
          const report = await answerAll(client, rows, answer, options, {
            stop: stop.signal,
            onProgress: (p) => {
              const done = p.answered + p.skipped + p.failed;
              if (Date.now() - shown < 2000 && done < p.total) return;
              shown = Date.now();
              process.stderr.write(
                `${done} of ${p.total}: ${p.answered} ${answer}, ${p.skipped} skipped, ${p.failed} failed\n`,
              );
            },
          });
          print(report);
          if (report.failed || report.notTried) process.exitCode = 1;
        } finally {
          await client.connection.close();
        }
      },
    );
}

program
  .command('list')
  .description('the analyst inbox: incidents by stage, outcome, cluster, namespace and age (newest first)')
  .option('--stage <stage>', `one of ${STAGES.join(', ')}`)
  .option('--outcome <outcome>', `one of ${OUTCOMES.join(', ')}`)
  .option('--cluster <name>', 'the cluster as alerts name it')
  .option('--namespace <name>', "the pod's namespace")
  .option('--since <age>', 'started within (30m, 12h, 7d) or after an ISO 8601 time')
  .option('--limit <n>', 'at most this many (default 100)')
  .option('--json', 'JSON lines instead of a table')
  .option('--query', 'print the visibility query (for the Temporal UI) and exit')
  .action(async (opts: InboxFilters & { json?: boolean; query?: boolean }) => {
    const { json, query, ...filters } = opts;
    if (query) return print(inboxQuery(filters));
    const config = loadConfig();
    const client = await connectClient(config);
    try {
      const rows = await listIncidents(client, filters);
      process.stdout.write(
        json
          ? rows.map((r) => `${JSON.stringify({ ...r, ui: workflowUiUrl(config, r.workflowId) })}\n`).join('')
          : formatInbox(rows),
      );
    } finally {
      await client.connection.close();
    }
  });

program.parseAsync().catch((err: unknown) => {
  const e = err as Error & { cause?: Error };
  process.stderr.write(`error: ${e.message}${e.cause?.message ? ` (${e.cause.message})` : ''}\n`);
  process.exitCode = err instanceof InputError ? 2 : 1;
});
