import type { Client } from '@temporalio/client';
import { closedIncidents } from './eks-lambda/sweep.js';

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
      for await (const wf of client.workflow.list({ query: filter, pageSize: 100 })) {
        incidents.add(wf.workflowId);
        if (incidents.size >= MAX_COUNTED) break;
      }
      return incidents.size;
    },
    closedIncidents: (incidentIds: string[], provenOnly?: string[]) => closedIncidents(client, incidentIds, provenOnly),
  };
}
