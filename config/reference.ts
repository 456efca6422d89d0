/**
 * The configuration reference, docs/configuration.md, generated from the schema: zod 4's JSON Schema output gives
 * every setting's type, limits and default, each setting's `.describe()` its meaning, and `ENV_VARS` (plus the
 * JSON-valued variables) the environment variable that sets it. `npm run docs:config` writes the file;
 * test/unit/config-reference.test.ts fails when it is stale or a setting has no description.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import {
  ALL_ENV_NAMES,
  CLUSTER_TASK_QUEUES_ENV,
  CONFIG_FILE_ENV,
  configSchema,
  ENV_VARS,
  NOTIFY_ENV,
  POLICY_ENV,
  POLICY_FLOOR_ENV,
  ROUTES_ENV,
  SQS_ENV,
} from './config.js';

export const REFERENCE_FILE = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The JSON-valued variables: each replaces (the policy: is merged over) the file's value at that path. */
export const JSON_ENV_VARS: Record<string, { path: string; how: string }> = {
  [POLICY_ENV]: { path: 'policy', how: 'JSON object, merged over the file’s `policy`' },
  [POLICY_FLOOR_ENV]: { path: 'policyFloor', how: 'JSON object, merged over the file’s `policyFloor`' },
  [ROUTES_ENV]: { path: 'forwarder.routes', how: 'JSON array, replaces the file’s' },
  [SQS_ENV]: { path: 'forwarder.sqs', how: 'JSON array, replaces the file’s' },
  [NOTIFY_ENV]: { path: 'notify', how: 'JSON array, replaces the file’s' },
  [CLUSTER_TASK_QUEUES_ENV]: { path: 'temporal.clusterTaskQueues', how: 'JSON object, replaces the file’s' },
};

/** The part of JSON Schema that z.toJSONSchema emits for this configuration. */
interface Schema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
}

export interface Setting {
  path: string;
  env?: string;
  type: string;
  default?: string;
  description?: string;
}

/** A placeholder in a path (`<source>`) and the keys it stands for. */
const placeholders = new Map<string, string[]>();

const envByPath = new Map<string, string>([
  ...Object.entries(ENV_VARS).map(([name, path]): [string, string] => [path, name]),
  ...Object.entries(JSON_ENV_VARS).map(([name, { path, how }]): [string, string] => [path, `${name} (${how})`]),
]);

/** Every setting, a leaf of the schema, in the schema's order. Objects whose children are alike are one row. */
export function settings(): Setting[] {
  placeholders.clear();
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Schema;
  const out: Setting[] = [];
  walk(root, [], out);
  return out;
}

function walk(s: Schema, path: string[], out: Setting[]): void {
  const props = s.properties;
  if (props && !isListOfObjects(s)) {
    const keys = Object.keys(props);
    const alike = keys.length > 2 && keys.every((k) => JSON.stringify(props[k]) === JSON.stringify(props[keys[0]!]));
    if (alike) {
      // forwarder.sources.<source>: one set of rows for xdr, falco, guardduty and normalized.
      const placeholder = `<${path[path.length - 1]!.replace(/s$/, '')}>`;
      placeholders.set(placeholder, keys);
      const before = out.length;
      walk(props[keys[0]!]!, [...path, placeholder], out);
      for (const row of out.slice(before)) row.env = genericEnv(row.path, placeholder, keys);
      return;
    }
    for (const key of keys) walk(props[key]!, [...path, key], out);
    return;
  }
  const at = path.join('.');
  const env = envByPath.get(at) ?? inJsonEnv(at);
  out.push({
    path: at,
    ...(env ? { env } : {}),
    type: typeOf(s),
    ...(s.default !== undefined ? { default: showDefault(s.default) } : {}),
    ...(s.description ? { description: s.description } : {}),
  });
  if (s.items && isListOfObjects(s)) {
    for (const [key, item] of Object.entries(s.items.properties ?? {})) {
      out.push({
        path: `${at}[].${key}`,
        type: typeOf(item) + (s.items.required?.includes(key) ? ', required' : ''),
        ...(item.default !== undefined ? { default: showDefault(item.default) } : {}),
        ...(item.description ? { description: item.description } : {}),
      });
    }
  }
}

/** `policy.mode` is also a field of POD_RESPONDER_POLICY's JSON. */
function inJsonEnv(path: string): string | undefined {
  const entry = Object.entries(JSON_ENV_VARS).find(([, v]) => path.startsWith(`${v.path}.`));
  return entry ? `${entry[0]} (a field of its JSON)` : undefined;
}

function isListOfObjects(s: Schema): s is Schema & { items: Schema } {
  return s.type === 'array' && s.items?.type === 'object' && !!s.items.properties;
}

/** `POD_RESPONDER_FALCO_TOKEN` for each source becomes `POD_RESPONDER_<SOURCE>_TOKEN`. */
function genericEnv(path: string, placeholder: string, keys: string[]): string | undefined {
  const names = keys.map((k) => envByPath.get(path.replace(placeholder, k)));
  if (names.some((n) => n === undefined)) return undefined;
  const generic = names.map((n, i) => n!.replace(keys[i]!.toUpperCase(), '<SOURCE>'));
  return generic.every((g) => g === generic[0]) ? generic[0] : names.join(', ');
}

function typeOf(s: Schema): string {
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return alternatives.map(typeOf).join(' or ');
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' | ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  const limits = limitsOf(s);
  switch (s.type) {
    case 'array':
      return `list of ${s.items ? typeOf(s.items) : 'any'}${limits}`;
    case 'object':
      if (s.additionalProperties && typeof s.additionalProperties === 'object') {
        return `map of name → ${typeOf(s.additionalProperties)}`;
      }
      return 'object';
    case 'string':
      return (s.format === 'uri' ? 'URL' : 'string') + limits + (s.pattern ? ` matching \`${s.pattern}\`` : '');
    case undefined:
      return 'any';
    default:
      return `${Array.isArray(s.type) ? s.type.join(' or ') : s.type}${limits}`;
  }
}

const UNBOUNDED = Number.MAX_SAFE_INTEGER;

function limitsOf(s: Schema): string {
  const parts: string[] = [];
  const low = s.minimum ?? s.minLength ?? s.minItems;
  const high = s.maximum ?? s.maxLength ?? s.maxItems;
  if (low !== undefined && low !== -UNBOUNDED && !(s.type === 'string' && low === 1)) parts.push(`≥ ${low}`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${s.exclusiveMinimum}`);
  if (high !== undefined && high !== UNBOUNDED) parts.push(`≤ ${high}`);
  if (s.exclusiveMaximum !== undefined) parts.push(`< ${s.exclusiveMaximum}`);
  if (!parts.length) return '';
  const unit = s.type === 'string' ? ' characters' : s.type === 'array' ? ' items' : '';
  return ` (${parts.join(', ')}${unit})`;
}

function showDefault(value: unknown): string {
  // The Lambda zip's default is a path inside this checkout; show it relative to the checkout.
  const text = JSON.stringify(value).replaceAll(JSON.stringify(ROOT).slice(1, -1), '');
  return `\`${text}\``;
}

/** Settings that issue 27's review turned into constants (named where each is now defined). */
const REMOVED_IN_ISSUE_27 = [
  'forwarder.retryAfterSeconds',
  'forwarder.signatureWindowSeconds',
  'forwarder.dedupCacheSize',
  'forwarder.batchMaxAlerts',
  'forwarder.batchMaxBytes',
  'forwarder.knownIncidentSeconds',
  'forwarder.spool.drainSeconds',
  'eks.sweepIntervalMinutes',
  'evidence.functionResponseBytes',
];

const cell = (text: string) => text.replaceAll('\n', ' ').replaceAll('|', '\\|');

/** The whole of docs/configuration.md. */
export function renderConfigReference(): string {
  const rows = settings();
  const sections = new Map<string, Setting[]>();
  for (const row of rows) {
    const top = row.path.split('.')[0]!.replace('[]', '');
    sections.set(top, [...(sections.get(top) ?? []), row]);
  }
  const lines = [
    '# Configuration',
    '',
    '<!-- Generated from config/config.ts by `npm run docs:config`; test/unit/config-reference.test.ts fails when',
    '     this file is stale. Edit the schema (each setting’s `.describe()`), not this file. -->',
    '',
    `Every program (the worker, the forwarder, the CLI) reads one configuration: an optional JSON file named by`,
    `\`${CONFIG_FILE_ENV}\`, then environment variables on top, validated as a whole at start. A program with a bad`,
    'configuration does not start, and the error names each field and its source. Unknown keys are refused.',
    '',
    `${rows.length} settings (a \`<source>\` row stands for each alert source) and ${ALL_ENV_NAMES.length} environment variables;`,
    'a setting that a variable sets names it in its `env` column. The policy, step by step: [response.md](response.md); the',
    "worker's policy floor: [policy-floor.md](policy-floor.md); the EKS executor: [eks.md](eks.md); a secured Temporal:",
    '[deploy.md](deploy.md#connect-to-a-secured-temporal).',
    '',
    'Internal limits are constants in the code, each with a comment saying why, not settings. Issue 27 made constants',
    `of ${REMOVED_IN_ISSUE_27.map((p) => `\`${p}\``).join(', ')}`,
    `(134 settings before, ${rows.length} after): a configuration that still sets one is refused as an unknown key.`,
    '',
    '## Environment variables',
    '',
    '| variable | sets |',
    '| --- | --- |',
    `| \`${CONFIG_FILE_ENV}\` | the path of the JSON configuration file |`,
    ...Object.entries(ENV_VARS).map(
      ([name, path]) => `| \`${name}\` | \`${path}\`${name === 'KUBECONFIG' ? ' (the first path of the list)' : ''} |`,
    ),
    ...Object.entries(JSON_ENV_VARS).map(([name, { path, how }]) => `| \`${name}\` | \`${path}\`: ${how} |`),
    '',
  ];
  for (const [top, group] of sections) {
    lines.push(
      `## \`${top}\``,
      '',
      '| setting | env | type | default | description |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const r of group) {
      const env = r.env ? `\`${r.env.replace(/ \(.*\)$/, '')}\`${r.env.includes('(') ? ' (JSON)' : ''}` : '';
      const cells = [`\`${r.path}\``, env, r.type, r.default ?? '', r.description ?? ''];
      lines.push(`| ${cells.map(cell).join(' | ')} |`);
    }
    for (const [placeholder, keys] of placeholders) {
      if (group.some((r) => r.path.includes(placeholder))) {
        lines.push('', `\`${placeholder}\` is each of ${keys.map((k) => `\`${k}\``).join(', ')}.`);
      }
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(REFERENCE_FILE, renderConfigReference());
  console.log(`wrote ${REFERENCE_FILE}`);
}
