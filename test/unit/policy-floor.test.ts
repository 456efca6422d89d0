/**
 * What "looser than the floor" means, field by field (domain/policy-floor.ts): sets that must contain the floor's,
 * sets that must stay within it, thresholds in one direction, and approval requirements with what a timeout does.
 * The incident that ends `failed` on a loosened policy, through the real worker, is test/integration/policy-floor.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  checkAgainstFloor,
  looserThanFloor,
  policyFloorSchema,
  type PolicyFloorInput,
} from '../../domain/policy-floor.js';
import { defaultPolicy, policySchema, type PolicyInput } from '../../domain/policy.js';
import { configSchema, loadConfig } from '../../config/config.js';

const looser = (policy: PolicyInput, floor: PolicyFloorInput = {}) =>
  looserThanFloor(policySchema.parse(policy), policyFloorSchema.parse(floor));

describe('the default floor', () => {
  it('is the policy defaults on every field it covers, so the default policy passes it', () => {
    const floor = policyFloorSchema.parse({});
    for (const [k, v] of Object.entries(floor)) expect(v, k).toEqual(defaultPolicy[k as keyof typeof defaultPolicy]);
    expect(looser({})).toEqual([]);
    expect(configSchema.parse({}).policyFloor).toEqual(floor);
  });
});

describe('protected namespaces and labels: sets the policy must contain', () => {
  it('refuses a policy that drops a protected namespace, naming each one', () => {
    expect(looser({ protectedNamespaces: [] })).toEqual([
      'protectedNamespaces: lacks kube-system, kube-public, kube-node-lease (the floor protects them)',
    ]);
    expect(looser({ protectedNamespaces: ['kube-public', 'kube-node-lease'] })).toEqual([
      'protectedNamespaces: lacks kube-system (the floor protects them)',
    ]);
  });

  it('takes more namespaces, in any order', () => {
    expect(looser({ protectedNamespaces: ['payments', 'kube-node-lease', 'kube-system', 'kube-public'] })).toEqual([]);
  });

  it('refuses a policy that drops a protected label; a bare key covers any value of it, not the other way round', () => {
    expect(looser({ protectedLabels: ['security.example.com/honeypot'] })).toEqual([
      'protectedLabels: lacks pod-responder.io/protected=true (the floor protects pods carrying them)',
    ]);
    expect(looser({ protectedLabels: ['pod-responder.io/protected'] })).toEqual([]);
    expect(looser({ protectedLabels: ['team=core'] }, { protectedLabels: ['team'] })).toEqual([
      'protectedLabels: lacks team (the floor protects pods carrying them)',
    ]);
    expect(
      looser({ protectedLabels: ['team', 'pod-responder.io/protected=true'] }, { protectedLabels: ['team=core'] }),
    ).toEqual([]);
  });
});

describe('the most it may do without approval', () => {
  it('refuses a policy that stops requiring an approval the floor requires', () => {
    expect(looser({}, { requireApprovalFor: ['suspend-workload'] })).toEqual([
      'requireApprovalFor: lacks suspend-workload (the floor requires approval for it)',
    ]);
    expect(
      looser(
        { requireApprovalFor: ['terminate-pod', 'suspend-workload'] },
        { requireApprovalFor: ['suspend-workload'] },
      ),
    ).toEqual([]);
  });

  it('counts a timeout that proceeds as acting without approval, where the floor dismisses', () => {
    expect(
      looser(
        { requireApprovalFor: ['suspend-workload'], onApprovalTimeout: 'proceed' },
        { requireApprovalFor: ['suspend-workload'] },
      ),
    ).toEqual([
      'onApprovalTimeout: proceed, the floor dismisses on timeout (it would suspend-workload without approval)',
    ]);
    // The floor lets it act unapproved anyway: proceeding after a timeout is no looser.
    expect(
      looser({ requireApprovalFor: ['terminate-pod'], onApprovalTimeout: 'proceed', approvalTimeoutSeconds: 2 }),
    ).toEqual([]);
  });

  it('where the floor proceeds too, a shorter wait is looser', () => {
    const floor: PolicyFloorInput = {
      requireApprovalFor: ['terminate-pod'],
      onApprovalTimeout: 'proceed',
      approvalTimeoutSeconds: 600,
    };
    expect(
      looser(
        { requireApprovalFor: ['terminate-pod'], onApprovalTimeout: 'proceed', approvalTimeoutSeconds: 60 },
        floor,
      ),
    ).toEqual(["approvalTimeoutSeconds: 60, below the floor's 600 (it would proceed without approval sooner)"]);
    expect(
      looser(
        { requireApprovalFor: ['terminate-pod'], onApprovalTimeout: 'proceed', approvalTimeoutSeconds: 600 },
        floor,
      ),
    ).toEqual([]);
    expect(
      looser(
        { requireApprovalFor: ['terminate-pod'], onApprovalTimeout: 'dismiss', approvalTimeoutSeconds: 60 },
        floor,
      ),
    ).toEqual([]);
  });

  it('a dry-run floor takes only dry runs', () => {
    expect(looser({}, { mode: 'dry-run' })).toEqual(['mode: enforce, the floor is dry-run (nothing may be changed)']);
    expect(looser({ mode: 'dry-run' }, { mode: 'dry-run' })).toEqual([]);
    expect(looser({ mode: 'dry-run' })).toEqual([]);
  });
});

describe('thresholds and grace periods: one direction each', () => {
  it.each<[string, PolicyInput, string | null]>([
    [
      'older alerts',
      { maxAlertAgeSeconds: 7200 },
      "maxAlertAgeSeconds: 7200, above the floor's 3600 (it would act on older alerts)",
    ],
    ['fresher alerts only', { maxAlertAgeSeconds: 600 }, null],
    ['a lower repeat threshold', { repeatThreshold: 2 }, null],
    ['a higher repeat threshold', { repeatThreshold: 5 }, null],
    [
      'a longer repeat window',
      { repeatWindowSeconds: 3600 },
      "repeatWindowSeconds: 3600, above the floor's 900 (it would count older alerts as repeats)",
    ],
    ['a shorter repeat window', { repeatWindowSeconds: 60 }, null],
    [
      'suspending on more severities',
      { suspendOnSeverity: ['critical', 'high'] },
      'suspendOnSeverity: adds high (the floor suspends at once only on critical)',
    ],
    ['suspending on none', { suspendOnSeverity: [] }, null],
    [
      'a shorter grace period',
      { terminateGracePeriodSeconds: 1 },
      "terminateGracePeriodSeconds: 1, below the floor's 2 (the pod would get less time to stop)",
    ],
    ['a longer grace period', { terminateGracePeriodSeconds: 30 }, null],
    [
      'more reverts undone',
      { maxReverts: 10 },
      "maxReverts: 10, above the floor's 3 (it would undo a person's revert more often)",
    ],
    ['fewer reverts undone', { maxReverts: 1 }, null],
    ['not re-applying at all', { reapplyOnRevert: false, maxReverts: 10 }, null],
  ])('%s', (_, policy, expected) => {
    expect(looser(policy)).toEqual(expected ? [expected] : []);
  });

  it('a repeat threshold below a raised floor', () => {
    expect(looser({ repeatThreshold: 2 }, { repeatThreshold: 3 })).toEqual([
      "repeatThreshold: 2, below the floor's 3 (it would suspend on fewer alerts)",
    ]);
  });

  it('re-applying where the floor never does', () => {
    expect(looser({}, { reapplyOnRevert: false })).toEqual([
      'reapplyOnRevert: true, the floor never re-applies a suspension someone undid',
    ]);
  });

  it('fields the floor does not cover never count', () => {
    expect(
      looser({
        isolate: false,
        evidenceSeconds: 0,
        revokeCredentials: true,
        watchSeconds: 0,
        holdSuspensionSeconds: 0,
        holdCheckSeconds: 0,
        keepRecentAlerts: 0,
      }),
    ).toEqual([]);
  });

  it('lists every loosened field at once', () => {
    expect(
      looser({ protectedNamespaces: [], suspendOnSeverity: ['critical', 'high'], terminateGracePeriodSeconds: 1 }).map(
        (l) => l.split(':')[0],
      ),
    ).toEqual(['protectedNamespaces', 'suspendOnSeverity', 'terminateGracePeriodSeconds']);
  });
});

describe('checking what a starter sent', () => {
  it('refuses a value that is no policy value at all, with the field and why', () => {
    expect(
      checkAgainstFloor(
        { ...defaultPolicy, protectedNamespaces: 'kube-system', repeatThreshold: 1 },
        policyFloorSchema.parse({}),
      ),
    ).toEqual({
      invalid: [
        'protectedNamespaces: Invalid input: expected array, received string',
        'repeatThreshold: Too small: expected number to be >=2',
      ],
      looser: [],
    });
  });

  it("checks only the fields the floor covers: unknown ones (a newer starter) and the others are the starter's", () => {
    const others = { someNewField: true, keepRecentAlerts: 'lots', eksHoldCheckSeconds: 2 };
    expect(checkAgainstFloor({ ...defaultPolicy, ...others }, policyFloorSchema.parse({}))).toEqual({
      invalid: [],
      looser: [],
    });
    expect(
      checkAgainstFloor({ ...defaultPolicy, someNewField: true, protectedLabels: [] }, policyFloorSchema.parse({}))
        .looser,
    ).toEqual(['protectedLabels: lacks pod-responder.io/protected=true (the floor protects pods carrying them)']);
  });
});

describe('the config field', () => {
  it('takes policyFloor from the file and POD_RESPONDER_POLICY_FLOOR, and refuses a bad one naming the field', () => {
    const config = loadConfig(
      {
        POD_RESPONDER_POLICY_FLOOR:
          '{"requireApprovalFor":["suspend-workload"],"protectedNamespaces":["kube-system","payments"]}',
      },
      undefined,
    );
    expect(config.policyFloor).toMatchObject({
      requireApprovalFor: ['suspend-workload'],
      protectedNamespaces: ['kube-system', 'payments'],
      repeatThreshold: 2,
    });
    expect(() =>
      loadConfig({ POD_RESPONDER_POLICY_FLOOR: '{"requireApprovalFor":["reboot"],"isolate":false}' }, undefined),
    ).toThrow(
      /policyFloor\.requireApprovalFor\[0\]: Invalid option: expected one of "terminate-pod"\|"suspend-workload"[\s\S]*policyFloor: Unrecognized key: "isolate"/,
    );
  });
});
