/** The workflow module as it was before v2 (patch `incident-v2`): what workers ran before an upgrade. */
export { incidentV1 as maliciousPodResponse } from '../../workflows/legacy/incident-v1.js';
