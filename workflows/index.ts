export { maliciousPodResponse, type IncidentInput } from './malicious-pod-response.js';
