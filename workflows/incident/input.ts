import type { PodAlert } from '../../domain/alert.js';
import type { Policy } from '../../domain/policy.js';
import type { ExecutorSpec } from '../executor.js';
import type { IncidentState } from './state.js';

export interface IncidentInput {
  alert: PodAlert;
  /** Complete policy (defaults applied by the starter): fixed for the life of the incident. */
  policy: Policy;
  executor: ExecutorSpec;
  /** Set only when the incident continues as new: everything so far, to pick up where it was. */
  carried?: CarriedIncident;
}

export interface CarriedIncident {
  state: IncidentState;
  /** The alert-ID ledger (AlertLedger.serialize): kept out of the state, which `status` shows and must stay small. */
  seenAlerts: string;
}
