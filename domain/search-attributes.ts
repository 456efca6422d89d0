import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes an analyst filters incidents by in the Temporal UI.
 * The dev server registers them at start (devstack); production clusters need
 * `temporal operator search-attribute create` once (docs/deploy.md).
 */
export const SEARCH_ATTRIBUTE_TYPES = {
  PodResponderCluster: 'Keyword',
  PodResponderNamespace: 'Keyword',
  PodResponderPod: 'Keyword',
  PodResponderWorkloadKind: 'Keyword',
  PodResponderWorkloadName: 'Keyword',
  PodResponderStage: 'Keyword',
  PodResponderOutcome: 'Keyword',
  PodResponderAlertSource: 'Keyword',
  /** Where the evidence bundle is (s3://bucket/prefix/): an analyst finds it from the incident's row. */
  PodResponderEvidence: 'Keyword',
} as const;

export const SA = {
  cluster: defineSearchAttributeKey('PodResponderCluster', 'KEYWORD'),
  namespace: defineSearchAttributeKey('PodResponderNamespace', 'KEYWORD'),
  pod: defineSearchAttributeKey('PodResponderPod', 'KEYWORD'),
  workloadKind: defineSearchAttributeKey('PodResponderWorkloadKind', 'KEYWORD'),
  workloadName: defineSearchAttributeKey('PodResponderWorkloadName', 'KEYWORD'),
  stage: defineSearchAttributeKey('PodResponderStage', 'KEYWORD'),
  outcome: defineSearchAttributeKey('PodResponderOutcome', 'KEYWORD'),
  alertSource: defineSearchAttributeKey('PodResponderAlertSource', 'KEYWORD'),
  evidence: defineSearchAttributeKey('PodResponderEvidence', 'KEYWORD'),
} as const;
