import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { ExecutorGroup } from './eks-lambda/executor-group.js';

export interface RecentIncidentQuery {
  cluster: string;
  namespace: string;
  workloadKind: string;
  workloadName: string;
  sinceIso: string;
  excludeWorkflowId: string;
}

/** More earlier incidents than this change no decision (the repeat threshold is far lower). */
const MAX_COUNTED = 100;

/** Quotes a value for a Temporal visibility query. */
function q(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Counts earlier incidents on the same workload: a Deployment's replacement pod has a new name,
 * so its repeat alert starts a new incident, and the repeat is only visible across incidents.
 */
export function createIncidentHistory(client: Client) {
  return {
    async countRecentIncidents(query: RecentIncidentQuery): Promise<number> {
      const filter = [
        `WorkflowType = 'maliciousPodResponse'`,
        `PodResponderCluster = ${q(query.cluster)}`,
        `PodResponderNamespace = ${q(query.namespace)}`,
        `PodResponderWorkloadKind = ${q(query.workloadKind)}`,
        `PodResponderWorkloadName = ${q(query.workloadName)}`,
        `StartTime > ${q(query.sinceIso)}`,
        `WorkflowId != ${q(query.excludeWorkflowId)}`,
      ].join(' AND ');
      // An incident that continued as new has several runs: count incidents (workflow IDs), not runs.
      const incidents = new Set<string>();
      // The attempt's deadline (less a second, so the call says why) on every visibility call: a stalled store ends
      // the call, not only the attempt, and the activity fails with the reason rather than a bare timeout.
      const { startToCloseTimeoutMs } = Context.current().info;
      await client.connection.withDeadline(Date.now() + Math.max(1000, startToCloseTimeoutMs - 1000), async () => {
        for await (const wf of client.workflow.list({ query: filter, pageSize: 100 })) {
          incidents.add(wf.workflowId);
          if (incidents.size >= MAX_COUNTED) break;
        }
      });
      return incidents.size;
    },
    closedIncidents: (incidentIds: string[], provenOnly?: string[]) => closedIncidents(client, incidentIds, provenOnly),

    /**
     * The executor groups no incident may need: none running on their cluster in this namespace, and none used
     * for `idleMinutes` (an incident that just started may not be visible yet, and may be about to deploy).
     */
    async idleExecutorGroups(groups: ExecutorGroup[], idleMinutes: number): Promise<ExecutorGroup[]> {
      const idle: ExecutorGroup[] = [];
      for (const g of groups) {
        if (g.lastUsed && Date.now() - Date.parse(g.lastUsed) < idleMinutes * 60_000) continue;
        const { count } = await client.workflow.count(
          `WorkflowType = 'maliciousPodResponse' AND PodResponderCluster = ${q(g.clusterName)} AND ExecutionStatus = 'Running'`,
        );
        if (count === 0) idle.push(g);
      }
      return idle;
    },
  };
}

/**
 * Incidents whose workflow is no longer running (or never existed here, past retention): their resources
 * are orphans. For `provenOnly` incidents (resources tagged before installations existed, which another
 * installation may have made) only a closed workflow in this namespace counts: not finding one proves nothing.
 */
export async function closedIncidents(
  client: Client,
  incidentIds: string[],
  provenOnly: string[] = [],
): Promise<string[]> {
  const closed: string[] = [];
  const strict = new Set(provenOnly);
  for (const id of new Set(incidentIds)) {
    try {
      const d = await client.workflow.getHandle(id).describe();
      if (d.status.name !== 'RUNNING') closed.push(id);
    } catch (err) {
      if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
      if (!strict.has(id)) closed.push(id);
    }
  }
  return closed;
}
