/**
 * Global setup of the `workflow` project: the Java SDK's test server (devstack/tools.sh test-server fetches it from
 * Maven Central once) and the workflow bundle, made once here so each test file only starts its own server.
 */
import type { TestProject } from 'vitest/node';
import { ensureTestServer } from '../../devstack/tools.js';
import { workflowBundle } from '../../worker/workflow-bundle.js';
import { workflowsPath } from '../../worker/worker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    testServerPath: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  project.provide('testServerPath', await ensureTestServer((line) => console.log(line)));
  // Bundled here once (and kept in the bundle cache): test files then read it in milliseconds.
  await workflowBundle(workflowsPath());
}
