import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { CoreRequest, CoreResponse } from '../remediation/protocol.js';
import type { Compensations } from './compensations.js';

/** Where the remediation core runs. `direct`: in the worker, with a kubeconfig. */
export type ExecutorSpec = { kind: 'direct' };

/** An executor opened for one incident: runs core operations; whatever it deploys it undoes via the saga. */
export interface ExecutorSession {
  run<R extends CoreRequest>(request: R, summary: string): Promise<CoreResponse<R>>;
}

const { runDirect } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8 },
});

export async function openExecutor(
  spec: ExecutorSpec,
  cluster: string,
  _compensations: Compensations,
): Promise<ExecutorSession> {
  switch (spec.kind) {
    case 'direct':
      // Nothing to deploy, so nothing to compensate: the worker already reaches the cluster.
      return {
        run: <R extends CoreRequest>(request: R, summary: string) =>
          runDirect.executeWithOptions({ summary }, [cluster, request]) as Promise<CoreResponse<R>>,
      };
  }
}
