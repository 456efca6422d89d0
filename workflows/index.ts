export { maliciousPodResponse, type IncidentInput } from './malicious-pod-response.js';
export { orphanSweeper, type SweepInput, type SweepReport } from './orphan-sweeper.js';
