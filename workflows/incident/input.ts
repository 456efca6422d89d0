import type { PodAlert } from '../../domain/alert.js';
import type { Policy } from '../../domain/policy.js';
import type { ExecutorSpec } from '../executor.js';
import type { IncidentStatus } from '../messages.js';

export interface IncidentInput {
  alert: PodAlert;
  /** Complete policy (defaults applied by the starter): fixed for the life of the incident. */
  policy: Policy;
  executor: ExecutorSpec;
  /** Set only when the incident continues as new: everything so far, to pick up where it was. */
  carried?: CarriedIncident;
}

export interface CarriedIncident {
  status: IncidentStatus;
  /** The alert-ID ledger (AlertLedger.serialize): kept out of `status`, which must stay small. */
  seenAlerts: string;
}
