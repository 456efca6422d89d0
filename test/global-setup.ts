/**
 * Vitest global setup: one real stack (etcd + kube-apiserver + Temporal dev server, and moto behind
 * the AWS test front) shared by every test file. Tests get its coordinates with
 * `inject('temporalAddress')`, `inject('aws')` etc.
 * Vitest puts no timeout on global setup, so a first run may build the tools (20+ min).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startStack, type StackAws } from '../devstack/stack.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    kubeconfigPath: string;
    kubeApiUrl: string;
    adminToken: string;
    /** AWS endpoint (the front before moto), credentials, seeded VPC and EKS clusters, faults control URL. */
    aws: StackAws;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-stack-'));
  // Ephemeral ports: a human's `npm run stack up` may be running alongside.
  const stack = await startStack({ stateDir, headless: true, aws: true, log: (line) => console.log(line) });
  project.provide('temporalAddress', stack.temporalAddress);
  project.provide('kubeconfigPath', stack.kubeconfigPath);
  project.provide('kubeApiUrl', stack.kubeApiUrl);
  project.provide('adminToken', stack.adminToken);
  project.provide('aws', stack.aws!);
  return async () => {
    await stack.stop();
    // POD_RESPONDER_KEEP_STACK=1 keeps the stack's logs for inspection.
    if (process.env.POD_RESPONDER_KEEP_STACK) console.log(`[devstack] kept ${stateDir}`);
    else rmSync(stateDir, { recursive: true, force: true });
  };
}
