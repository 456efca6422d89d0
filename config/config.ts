import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { eksHoldCheckFloor, policySchema } from '../domain/policy.js';
import { policyFloorSchema } from '../domain/policy-floor.js';
import { clusterNameSchema, dnsLabel, regionSchema } from '../domain/alert.js';
import { DEFAULT_ROUTES, routesSchema } from '../domain/routing.js';
import { SOURCES } from '../domain/sources/index.js';
import { formatIssues, InputError } from '../domain/validation-errors.js';
import { checkTemporalSecurity, temporalApiKeyFields, temporalTlsSchema } from './temporal-security.js';

/** Written by `npm run build`. */
const DEFAULT_LAMBDA_ZIP = fileURLToPath(new URL('../dist/lambda/remediation.zip', import.meta.url)).replace(
  /dist\/dist\//,
  'dist/',
);

/** A map keyed by cluster name; a bad key is named with the reason (zod says only "Invalid key in record"). */
const byCluster = <T extends z.ZodType>(value: T) =>
  z.record(z.string(), value).superRefine((rec, ctx) => {
    for (const key of Object.keys(rec)) {
      const r = clusterNameSchema.safeParse(key);
      if (!r.success) ctx.addIssue({ code: 'custom', path: [key], message: r.error.issues[0]!.message });
    }
  });

/**
 * What one credential may report on. Absent: any cluster (or namespace). A credential a cluster's sender
 * holds should name that cluster, so a token stolen from it cannot act on the others.
 */
const bindingFields = {
  clusters: z
    .array(clusterNameSchema)
    .min(1, 'list at least one cluster, or leave it out for any')
    .optional()
    .describe(
      'Clusters it may report on; an alert about another is refused (HTTP 403; SQS: dead-lettered). Unset: any, and the forwarder warns at start.',
    ),
  namespaces: z
    .array(dnsLabel)
    .min(1, 'list at least one namespace, or leave it out for any')
    .optional()
    .describe('Namespaces it may report on. Unset: any.'),
};

const secretFields = {
  token: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'Accepted as `Authorization: Bearer <token>`. A source with no token or HMAC secret at all is disabled (404).',
    ),
  hmacSecret: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'Key of `X-Signature-256: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, sent with `X-Signature-Timestamp`.',
    ),
};

/** One more credential of a source, with its own name (in logs), bindings and rate limit. */
const credentialSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase alphanumerics and "-")')
      .describe("Its name, in logs and the spool (`default` is the source's own token or HMAC secret)."),
    ...secretFields,
    ...bindingFields,
    ratePerSecond: z.coerce.number().positive().optional().describe("Its own rate. Default: the source's."),
    burst: z.coerce.number().int().positive().optional().describe("Its own burst. Default: the source's."),
  })
  .refine((c) => c.token || c.hmacSecret, { message: 'a credential needs "token" or "hmacSecret"' });

/**
 * Credentials and limits for one alert endpoint. The source's own token/hmacSecret form its credential
 * named "default"; `credentials` adds more (one per cluster's sender, typically). A source with no
 * credential at all is disabled.
 */
const sourceSchema = z
  .strictObject({
    ...secretFields,
    ...bindingFields,
    /**
     * Token bucket for alerts that would start an incident (a batch of 10 such alerts takes 10), per credential
     * and cluster: one cluster's flood does not hold back another's alerts. A credential bound to no cluster
     * has one bucket for all it reports, since the cluster it names is its own word.
     * Repeats for an incident this forwarder delivered to lately are not limited: they are batched instead.
     */
    ratePerSecond: z.coerce
      .number()
      .positive()
      .default(200)
      .describe(
        'Alerts per second that may start an incident, per credential and cluster; repeats about an incident delivered to lately are not limited.',
      ),
    burst: z.coerce.number().int().positive().default(1000).describe('Burst above that rate (a token bucket).'),
    /**
     * An alert over that rate: `spool` delays it (202 queued, delivered as the rate allows), for senders that
     * never resend (Falcosidekick); `refuse` answers 429 for the sender to resend.
     */
    overRate: z
      .enum(['spool', 'refuse'])
      .default('spool')
      .describe(
        'An alert over the rate: `spool` delays it (202 queued, delivered as the rate allows), for senders that never resend (Falcosidekick); `refuse` answers 429.',
      ),
    credentials: z
      .array(credentialSchema)
      .default([])
      .describe("More credentials, typically one per cluster's sender, each with its own name, bindings and rate."),
  })
  .refine((s) => new Set(['default', ...s.credentials.map((c) => c.name)]).size === s.credentials.length + 1, {
    message: 'credential names must be unique, and "default" is the source\'s own token/hmacSecret',
    path: ['credentials'],
  })
  .prefault({});

/** An SQS queue the forwarder consumes: Falcosidekick's aws.sqs output, or an EventBridge rule's target. */
const sqsQueueSchema = z
  .strictObject({
    url: z.url().describe("The queue's URL."),
    source: z
      .enum(['falco', 'guardduty', 'normalized'])
      .describe(
        "Its messages: Falcosidekick's `aws.sqs` output, an EventBridge GuardDuty event, or a normalized alert.",
      ),
    cluster: clusterNameSchema
      .optional()
      .describe('Falco: the cluster its events come from (required: Falco events do not name it).'),
    region: regionSchema.optional().describe("Falco: that cluster's AWS region."),
    /** What the queue's alerts may be about (absent: any); one about another goes to the dead-letter queue. */
    ...bindingFields,
    deadLetterUrl: z
      .url()
      .optional()
      .describe(
        "Where a message that is not a valid alert goes, with the reason as the attribute `pod-responder-reason`. Unset: hidden 12 hours at a time, for the queue's own redrive policy.",
      ),
    waitSeconds: z.number().int().min(0).max(20).default(20).describe('Long-polling wait of each receive.'),
    retrySeconds: z
      .number()
      .int()
      .min(1)
      .max(43_200)
      .default(30)
      .describe(
        'How long a message stays hidden while Temporal does not take its alerts; doubles with each receive, up to 15 minutes.',
      ),
  })
  .refine((q) => q.source !== 'falco' || q.cluster, {
    message: 'a falco queue needs "cluster": Falco events do not name their cluster',
    path: ['cluster'],
  });

// prefault: an absent section is parsed as `{}`, so its fields' own defaults fill it.
const forwarderSchema = z
  .strictObject({
    host: z.string().min(1).default('0.0.0.0').describe('Address the forwarder listens on.'),
    port: z.coerce.number().int().min(0).max(65535).default(8080).describe('Its port.'),
    bodyLimitBytes: z.coerce
      .number()
      .int()
      .min(1024)
      .default(256 * 1024)
      .describe('Larger request bodies get 413 before they are parsed.'),
    maxBatch: z.coerce.number().int().positive().default(100).describe('Most alerts in one request (a JSON array).'),
    temporalTimeoutMs: z.coerce
      .number()
      .int()
      .positive()
      .default(2000)
      .describe('How long one alert may wait on Temporal before it is spooled (or, with no spool, answered 503).'),
    /**
     * Alerts about one incident go in one signal: the first at once, then at most one signal per incident
     * this often, each within the pipeline's BATCH_MAX_ALERTS and BATCH_MAX_BYTES (Temporal warns at 512 KiB).
     */
    batchIntervalMs: z.coerce
      .number()
      .int()
      .min(0)
      .max(10_000)
      .default(100)
      .describe(
        'Alerts about one incident go in one signal: the first at once, then at most one signal per incident this often.',
      ),
    batchMaxIntervalMs: z.coerce
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(2000)
      .describe(
        "Through a burst of alerts about one incident the interval doubles with each signal, up to this: a burst costs a few signals, then one per this. With the spool, the burst's repeats are answered 202 `queued` (on disk) at once.",
      ),
    closedIncidentSeconds: z.coerce
      .number()
      .int()
      .min(0)
      .default(3600)
      .describe(
        'For this long after an incident closed with its pod gone, alerts about that pod are answered `closed` and start nothing (0: each starts a run, dismissed as pod-gone). A new pod with the same name still starts one.',
      ),
    sources: z
      .strictObject(
        Object.fromEntries(SOURCES.map((s) => [s, sourceSchema])) as Record<
          (typeof SOURCES)[number],
          typeof sourceSchema
        >,
      )
      .prefault({}),
    routes: routesSchema
      .default(DEFAULT_ROUTES)
      .describe(
        'Routing rules: the first that matches decides, and an alert no rule matches is ignored with the reason (docs/forwarder.md).',
      ),
    /** The durable spool: one file per forwarder replica, on a volume of its own in production. */
    spool: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'The durable spool: an alert Temporal does not take in time is answered 202 `queued` once on disk, and delivered later. Off: 503 instead.',
          ),
        path: z
          .string()
          .min(1)
          .default('data/forwarder-spool.db')
          .describe(
            "The spool's SQLite file, one per forwarder replica (the image: `/var/lib/pod-responder/spool/forwarder.db`).",
          ),
        maxEntries: z.coerce
          .number()
          .int()
          .min(1)
          .default(100_000)
          .describe('At this many alerts waiting, further alerts are answered 503.'),
        /**
         * Or at this many bytes of alerts (their JSON): the file stays within about twice this, so the volume
         * must be at least 2 x maxBytes (the chart's 1Gi default fits the 256 MiB default).
         */
        maxBytes: z.coerce
          .number()
          .int()
          .min(64 * 1024, 'must be at least 65536 (64 KiB)')
          .default(256 * 1024 * 1024)
          .describe('Or at this many bytes of alert JSON; the file stays within about twice this.'),
      })
      .prefault({}),
    sqs: z
      .array(sqsQueueSchema)
      .default([])
      .describe(
        'SQS queues the forwarder consumes, with the same routing, deduplication and metrics as HTTP (docs/forwarder.md).',
      ),
  })
  .prefault({});

export const configSchema = z.strictObject({
  temporal: z
    .strictObject({
      address: z
        .string()
        .regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port')
        .default('localhost:7233')
        .describe('host:port of the Temporal frontend.'),
      namespace: z.string().min(1).default('default').describe('The Temporal namespace.'),
      taskQueue: z
        .string()
        .min(1)
        .default('pod-responder')
        .describe(
          'The task queue the worker polls and incidents start on (unless clusterTaskQueues names their cluster).',
        ),
      uiUrl: z
        .url()
        .default('http://localhost:8233')
        .describe('Base URL of the Temporal UI, for links printed to analysts.'),
      clusterTaskQueues: byCluster(z.string().min(1))
        .default({})
        .describe(
          'Cluster → the task queue its incidents start on, served by a worker in that cluster; the others use taskQueue. Set where incidents start (the forwarder, the CLI).',
        ),
      /**
       * Worker Deployment Versioning: with a build ID, the worker polls as version `name`:`buildId` and each
       * incident stays pinned to the build it started on until it continues as new at a wait
       * (docs/changing-the-workflow.md). Without one, the worker is unversioned (development, tests).
       */
      deployment: z
        .strictObject({
          name: z.string().min(1).default('pod-responder').describe("The Worker Deployment's name."),
          buildId: z
            .string()
            .min(1, 'must name the build (e.g. the image tag)')
            .describe(
              "This worker's build (e.g. the image tag): it polls as that version, and each incident stays on the build it started on until it continues as new at a wait (docs/changing-the-workflow.md). No deployment: unversioned (development, tests).",
            ),
        })
        .optional(),
      /** A secured Temporal (config/temporal-security.ts): TLS and mTLS, an API key (which implies TLS). */
      tls: temporalTlsSchema.optional(),
      ...temporalApiKeyFields,
    })
    .superRefine(checkTemporalSecurity)
    .prefault({}),
  executor: z
    .enum(['direct', 'eks-lambda'])
    .default('direct')
    .describe(
      "`direct`: the worker calls the cluster's API itself; `eks-lambda`: through a short-lived function in the cluster's VPC, for a private endpoint (docs/eks.md).",
    ),
  direct: z
    .strictObject({
      kubeconfig: z.string().min(1).optional().describe('The kubeconfig file. Default: `~/.kube/config`.'),
      /** The cluster (as alerts name it) the kubeconfig's current context reaches. */
      cluster: clusterNameSchema
        .optional()
        .describe(
          "The cluster (as alerts name it) the kubeconfig's current context reaches; `npm start` sets `local`. An alert about a cluster this worker has no mapping for ends needs-manual-action, nothing done.",
        ),
      contexts: byCluster(z.string().min(1))
        .optional()
        .describe('More clusters: alert cluster name → kubeconfig context.'),
      /**
       * Running in the cluster it acts on (the Helm chart): its service account's token and CA, read from
       * /var/run/secrets/kubernetes.io/serviceaccount/ (the token re-read as the kubelet rotates it), and
       * KUBERNETES_SERVICE_HOST/PORT, instead of a kubeconfig. Needs `cluster`.
       */
      inCluster: z
        .preprocess(
          (v) => (v === 'true' ? true : v === 'false' ? false : v),
          z.boolean({ error: 'must be true or false' }),
        )
        .optional()
        .describe(
          "Run in the cluster it acts on (the Helm chart): its service account's token and CA instead of a kubeconfig. Needs `cluster`, and no kubeconfig or contexts.",
        ),
      inClusterPathPrefix: z
        .string()
        .optional()
        .describe("Prefix of the service account's mount path, where it is mounted elsewhere (tests)."),
    })
    .refine((d) => !d.inCluster || (d.cluster && !d.kubeconfig && !d.contexts), {
      message:
        'inCluster acts on the cluster it runs in: set cluster (its name, as alerts give it), and no kubeconfig or contexts',
    })
    .default({}),
  eks: z
    .strictObject({
      /** Override of every AWS endpoint, for a local test stack; unset in production. */
      endpoint: z
        .url()
        .optional()
        .describe('Override of every AWS endpoint (SQS and S3 included), for a local test stack; unset on AWS.'),
      lambdaZip: z
        .string()
        .min(1)
        .default(DEFAULT_LAMBDA_ZIP)
        .describe("The remediation function's zip (written by `npm run build`)."),
      sweepRegions: z
        .array(regionSchema)
        .default([])
        .describe(
          'Regions the orphan sweeper (a Temporal Schedule) scans for resources of closed incidents; empty: no sweeper.',
        ),
      /**
       * Names and tags of everything deployed carry it, so two installations sharing an AWS account (staging
       * and production, two Temporal clusters) never adopt or delete each other's resources. Default: the
       * Temporal namespace; set it when two installations use namespaces of the same name.
       */
      installationId: z
        .string()
        .regex(/^[A-Za-z0-9_.:/=+@-]{1,128}$/, 'must be 1 to 128 letters, digits or _.:/=+@- (it is an AWS tag value)')
        .optional()
        .describe(
          "Carried by every AWS name and tag, so two installations sharing an account (staging and production) never touch each other's resources. Default: the Temporal namespace; set it when two installations use namespaces of the same name.",
        ),
      permissionsBoundaryArn: z
        .string()
        .regex(/^arn:aws[\w-]*:iam::\d{12}:policy\/[\w+=,.@/-]+$/, 'must be an IAM policy ARN')
        .optional()
        .describe(
          'The permissions boundary of every function role, required with executor eks-lambda (the worker refuses to start without it; its IAM policy allows role writes only on roles that carry it): `policy/pod-responder-function-boundary`, made from deploy/aws/function-boundary-policy.json (docs/permissions.md).',
        ),
    })
    .default({ lambdaZip: DEFAULT_LAMBDA_ZIP, sweepRegions: [] }),
  /** Where evidence bundles go (policy.evidenceSeconds sets the capture budget). No bucket: none is written. */
  evidence: z
    .strictObject({
      bucket: z
        .string()
        .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name')
        .optional()
        .describe('The S3 bucket for evidence bundles. Unset: no bundle is written, and the status says so.'),
      prefix: z
        .string()
        .regex(/^([A-Za-z0-9._-]+\/)*$/, 'must be empty or end with "/"')
        .default('pod-responder/')
        .describe(
          'Key prefix of every bundle: `<prefix><cluster>/<namespace>/<pod>/<run>/`; the worker may write only under it.',
        ),
      region: regionSchema.optional().describe("The bucket's region. Default: the alert's."),
      endpoint: z
        .url()
        .optional()
        .describe('An S3-compatible endpoint (MinIO). Default: eks.endpoint when set, else AWS.'),
      logBytesPerContainer: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024)
        .describe('Most bytes of logs kept per container (current and previous, each).'),
      retentionDays: z
        .number()
        .int()
        .min(1)
        .max(36_500)
        .default(30)
        .describe(
          'GOVERNANCE retention of each object, on a bucket with Object Lock and no default retention of its own.',
        ),
    })
    .prefault({}),
  /**
   * Where notifications go (acted, awaiting-approval, needs-manual-action, failed, restored). Worker-side, so
   * URLs and secrets never enter workflow history.
   */
  notify: z
    .array(
      z.strictObject({
        name: z
          .string()
          .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a lowercase name (letters, digits, "-")')
          .describe("The target's name."),
        kind: z
          .enum(['slack', 'webhook'])
          .describe(
            '`webhook`: signed JSON; `slack`: `{"text": ...}` to an incoming webhook (Slack, Mattermost, Rocket.Chat).',
          ),
        url: z.url().describe('Where to post.'),
        secret: z
          .string()
          .min(16, 'must be at least 16 characters')
          .optional()
          .describe('webhook: the key of `X-Pod-Responder-Signature` (HMAC-SHA256 of "<timestamp>.<body>").'),
        events: z
          .array(z.enum(['acted', 'awaiting-approval', 'needs-manual-action', 'failed', 'restored']))
          .min(1)
          .optional()
          .describe(
            'Which events it gets: acted, awaiting-approval, needs-manual-action, failed, restored. Default: all.',
          ),
      }),
    )
    .default([])
    .describe(
      'Notification targets. On the worker, so URLs and secrets never enter workflow history (docs/notifications.md).',
    ),
  policy: policySchema.superRefine(eksHoldCheckFloor).default(policySchema.parse({})),
  // The policy's own field names and defaults; described in domain/policy-floor.ts.
  policyFloor: policyFloorSchema,
  forwarder: forwarderSchema,
  /**
   * The worker's Prometheus endpoint (worker/runtime.ts): the Temporal SDK's metrics and the incidents'. The SDK
   * binds it as a socket address, so the host is an IP; port 0 turns it off.
   */
  metrics: z
    .strictObject({
      host: z
        .string()
        .refine((h) => isIP(h) !== 0, 'must be an IP address (0.0.0.0: every interface, 127.0.0.1: this host only)')
        .default('0.0.0.0')
        .describe("The IP address the worker's /metrics listens on (`::` for every IPv6 interface)."),
      port: z.coerce.number().int().min(0).max(65535).default(9464).describe('Its port; 0 turns the endpoint off.'),
    })
    .prefault({}),
  /**
   * The worker's health endpoint (worker/health.ts): /healthz and /readyz for Kubernetes probes, answered from
   * memory, whether metrics are on or off. Off by default; the Helm chart turns it on.
   */
  health: z
    .strictObject({
      host: z
        .string()
        .refine((h) => isIP(h) !== 0, 'must be an IP address (0.0.0.0: every interface, 127.0.0.1: this host only)')
        .default('0.0.0.0')
        .describe("The IP address the worker's /healthz and /readyz listen on (`::` for every IPv6 interface)."),
      port: z.coerce
        .number()
        .int()
        .min(0)
        .max(65535)
        .default(0)
        .describe('Its port; 0 (the default) turns the endpoint off.'),
    })
    .prefault({}),
  /**
   * What one worker process holds. An incident in the cache costs about 0.5 MiB of heap; one evicted (a parked
   * incident: awaiting approval, watching, holding) costs nothing on the worker until a message or timer wakes it,
   * when it is replayed from history. The defaults, with a 192 MiB V8 heap (NODE_OPTIONS, as the chart sets it),
   * keep a worker near 512 MiB (docs/operations.md: "Sizing a worker").
   */
  worker: z
    .strictObject({
      maxCachedIncidents: z.coerce
        .number()
        .int()
        .min(0)
        .max(100_000)
        .refine((n) => n !== 1, 'must be 0 (no cache) or at least 2 (the SDK keeps two)')
        .default(100)
        .describe(
          'Incidents kept in memory, about 0.5 MiB of heap each; 0 (no cache) or at least 2. Approve at most a sixth of it at once (docs/operations.md#sizing-a-worker). At least twice `maxConcurrentWorkflowTasks` for the kill path to run as local activities, in the first workflow task (docs/kill-first.md); below, it goes through the task queue.',
        ),
      maxConcurrentActivities: z.coerce
        .number()
        .int()
        .min(1)
        .max(10_000)
        .default(100)
        .describe('Activities the worker runs at once.'),
      maxConcurrentWorkflowTasks: z.coerce
        .number()
        .int()
        .min(2)
        .max(10_000)
        .default(40)
        .describe('Workflow tasks the worker runs at once.'),
      shutdownGraceSeconds: z.coerce
        .number()
        .int()
        .min(0)
        .max(3600)
        .default(30)
        .describe(
          'On SIGTERM, how long activities in flight (a kill, a compensation) get to finish before they are cancelled.',
        ),
    })
    .prefault({}),
  logLevel: z
    .enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'])
    .default('INFO')
    .describe('Level of the JSON log lines on stderr.'),
});

export type Config = z.output<typeof configSchema>;

/** Environment variables and the config path each one sets. */
export const ENV_VARS = {
  TEMPORAL_ADDRESS: 'temporal.address',
  TEMPORAL_NAMESPACE: 'temporal.namespace',
  POD_RESPONDER_TASK_QUEUE: 'temporal.taskQueue',
  TEMPORAL_UI_URL: 'temporal.uiUrl',
  POD_RESPONDER_BUILD_ID: 'temporal.deployment.buildId',
  POD_RESPONDER_TEMPORAL_TLS: 'temporal.tls.enabled',
  POD_RESPONDER_TEMPORAL_TLS_CA: 'temporal.tls.caFile',
  POD_RESPONDER_TEMPORAL_TLS_CERT: 'temporal.tls.certFile',
  POD_RESPONDER_TEMPORAL_TLS_KEY: 'temporal.tls.keyFile',
  POD_RESPONDER_TEMPORAL_TLS_SERVER_NAME: 'temporal.tls.serverName',
  POD_RESPONDER_TEMPORAL_API_KEY: 'temporal.apiKey',
  POD_RESPONDER_TEMPORAL_API_KEY_FILE: 'temporal.apiKeyFile',
  POD_RESPONDER_EXECUTOR: 'executor',
  KUBECONFIG: 'direct.kubeconfig',
  POD_RESPONDER_CLUSTER: 'direct.cluster',
  POD_RESPONDER_IN_CLUSTER: 'direct.inCluster',
  POD_RESPONDER_AWS_ENDPOINT: 'eks.endpoint',
  POD_RESPONDER_LAMBDA_ZIP: 'eks.lambdaZip',
  POD_RESPONDER_INSTALLATION_ID: 'eks.installationId',
  POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN: 'eks.permissionsBoundaryArn',
  POD_RESPONDER_EVIDENCE_BUCKET: 'evidence.bucket',
  POD_RESPONDER_EVIDENCE_ENDPOINT: 'evidence.endpoint',
  POD_RESPONDER_LOG_LEVEL: 'logLevel',
  POD_RESPONDER_MAX_CACHED_INCIDENTS: 'worker.maxCachedIncidents',
  POD_RESPONDER_MAX_CONCURRENT_ACTIVITIES: 'worker.maxConcurrentActivities',
  POD_RESPONDER_MAX_CONCURRENT_WORKFLOW_TASKS: 'worker.maxConcurrentWorkflowTasks',
  POD_RESPONDER_SHUTDOWN_GRACE_SECONDS: 'worker.shutdownGraceSeconds',
  POD_RESPONDER_FORWARDER_HOST: 'forwarder.host',
  POD_RESPONDER_FORWARDER_PORT: 'forwarder.port',
  POD_RESPONDER_METRICS_HOST: 'metrics.host',
  POD_RESPONDER_METRICS_PORT: 'metrics.port',
  POD_RESPONDER_HEALTH_HOST: 'health.host',
  POD_RESPONDER_HEALTH_PORT: 'health.port',
  POD_RESPONDER_SPOOL_PATH: 'forwarder.spool.path',
  POD_RESPONDER_SPOOL_MAX_BYTES: 'forwarder.spool.maxBytes',
  POD_RESPONDER_XDR_TOKEN: 'forwarder.sources.xdr.token',
  POD_RESPONDER_XDR_HMAC_SECRET: 'forwarder.sources.xdr.hmacSecret',
  POD_RESPONDER_FALCO_TOKEN: 'forwarder.sources.falco.token',
  POD_RESPONDER_FALCO_HMAC_SECRET: 'forwarder.sources.falco.hmacSecret',
  POD_RESPONDER_GUARDDUTY_TOKEN: 'forwarder.sources.guardduty.token',
  POD_RESPONDER_GUARDDUTY_HMAC_SECRET: 'forwarder.sources.guardduty.hmacSecret',
  POD_RESPONDER_NORMALIZED_TOKEN: 'forwarder.sources.normalized.token',
  POD_RESPONDER_NORMALIZED_HMAC_SECRET: 'forwarder.sources.normalized.hmacSecret',
} as const;

/** JSON-valued variable holding policy fields, merged over the file's policy. */
export const POLICY_ENV = 'POD_RESPONDER_POLICY';
/** JSON-valued variable holding policy floor fields, merged over the file's policyFloor. */
export const POLICY_FLOOR_ENV = 'POD_RESPONDER_POLICY_FLOOR';
/** JSON array of routing rules, replacing the file's `forwarder.routes`. */
export const ROUTES_ENV = 'POD_RESPONDER_ROUTES';
/** JSON array of SQS queues to consume, replacing the file's `forwarder.sqs`. */
export const SQS_ENV = 'POD_RESPONDER_SQS';
/** JSON array of notification targets, replacing the file's `notify`. */
export const NOTIFY_ENV = 'POD_RESPONDER_NOTIFY';
/** JSON object, cluster name -> task queue, replacing the file's `temporal.clusterTaskQueues`. */
export const CLUSTER_TASK_QUEUES_ENV = 'POD_RESPONDER_CLUSTER_TASK_QUEUES';
/** Path of the optional JSON config file. */
export const CONFIG_FILE_ENV = 'POD_RESPONDER_CONFIG';

/** Every environment variable the configuration reads. */
export const ALL_ENV_NAMES: readonly string[] = [
  ...Object.keys(ENV_VARS),
  POLICY_ENV,
  POLICY_FLOOR_ENV,
  ROUTES_ENV,
  SQS_ENV,
  CLUSTER_TASK_QUEUES_ENV,
  NOTIFY_ENV,
  CONFIG_FILE_ENV,
];

/**
 * Loads config from an optional JSON file, then the environment on top, and validates the whole.
 * Any error names the source and the field, and nothing starts with a half-valid config.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, file = env[CONFIG_FILE_ENV]): Config {
  const raw: Record<string, unknown> = file ? readJsonFile(file) : {};
  for (const [name, path] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    // KUBECONFIG may list several files; the first is the one kubectl writes to.
    setPath(raw, path, name === 'KUBECONFIG' ? value.split(':')[0] : value);
  }
  const policyEnv = env[POLICY_ENV];
  if (policyEnv) raw.policy = { ...(raw.policy ?? {}), ...(jsonEnv(POLICY_ENV, policyEnv) as object) };
  const floorEnv = env[POLICY_FLOOR_ENV];
  if (floorEnv) raw.policyFloor = { ...(raw.policyFloor ?? {}), ...(jsonEnv(POLICY_FLOOR_ENV, floorEnv) as object) };
  const routesEnv = env[ROUTES_ENV];
  if (routesEnv) setPath(raw, 'forwarder.routes', jsonEnv(ROUTES_ENV, routesEnv));
  const sqsEnv = env[SQS_ENV];
  if (sqsEnv) setPath(raw, 'forwarder.sqs', jsonEnv(SQS_ENV, sqsEnv));
  const notifyEnv = env[NOTIFY_ENV];
  if (notifyEnv) raw.notify = jsonEnv(NOTIFY_ENV, notifyEnv);
  const queuesEnv = env[CLUSTER_TASK_QUEUES_ENV];
  if (queuesEnv) setPath(raw, 'temporal.clusterTaskQueues', jsonEnv(CLUSTER_TASK_QUEUES_ENV, queuesEnv));
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const source = file ? `${file} and environment` : 'environment';
    throw new InputError(`configuration (${source})`, formatIssues(result.error.issues));
  }
  return result.data;
}

/** Why a worker with the EKS executor refuses to start without a boundary (exact: tests and docs quote it). */
export const BOUNDARY_REQUIRED =
  'eks.permissionsBoundaryArn (POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN): required with executor eks-lambda: every function role is created ' +
  "with it as its permissions boundary, and the worker's IAM policy allows role writes only on roles that carry it; create it from " +
  'deploy/aws/function-boundary-policy.json (docs/permissions.md)';

/**
 * What only the worker needs (the forwarder reads the same config, and starts incidents without creating anything):
 * the EKS executor's permissions boundary.
 */
export function checkWorkerConfig(config: Config): void {
  if (config.executor === 'eks-lambda' && !config.eks.permissionsBoundaryArn)
    throw new InputError('configuration', [BOUNDARY_REQUIRED]);
}

function jsonEnv(name: string, value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new InputError('configuration', [`${name}: not JSON (${(err as Error).message})`]);
  }
}

function readJsonFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError('configuration', [
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    ]);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new InputError('configuration', [`${file}: not a JSON object (${(err as Error).message})`]);
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    // A shorthand (`temporal.tls: true`) is kept as `{ enabled }`, so a variable adds to it instead of replacing it.
    node[key] =
      typeof child === 'object' && child !== null ? child : typeof child === 'boolean' ? { enabled: child } : {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}
