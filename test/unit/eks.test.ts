import { describe, expect, it } from 'vitest';
import { fnv1a64, notOwnedBecause, ownerTags, resourceNames } from '../../domain/aws-resources.js';
import { trustPolicy } from '../../activities/eks-lambda/role.js';
import { eksToken } from '../../lambda/eks-token.js';

describe('EKS token', () => {
  it('is a presigned STS GetCallerIdentity URL bound to the cluster name', async () => {
    const token = await eksToken(
      'prod',
      'eu-west-1',
      { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'tok' },
      new Date('2026-11-27T10:00:00Z'),
    );
    expect(token.startsWith('k8s-aws-v1.')).toBe(true);
    expect(token).not.toMatch(/[=+/]/); // base64url without padding, as EKS expects
    const url = new URL(Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString());
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('Action')).toBe('GetCallerIdentity');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
    expect(url.searchParams.get('X-Amz-Credential')).toBe('AKIDEXAMPLE/20261127/eu-west-1/sts/aws4_request');
    expect(url.searchParams.get('X-Amz-Date')).toBe('20261127T100000Z');
    expect(url.searchParams.get('X-Amz-Expires')).toBe('60');
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe('tok');
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('incident resources', () => {
  it('derive stable names within IAM limits from the workflow ID and session', () => {
    const id = 'pod-incident:a-very-long-cluster-name:some-namespace:' + 'p'.repeat(200);
    const a = resourceNames(id, 1);
    expect(a).toEqual(resourceNames(id, 1));
    expect(a.base).not.toBe(resourceNames(id, 2).base);
    expect(a.base.length).toBeLessThanOrEqual(64);
    expect(a.base).toMatch(/^[A-Za-z0-9+=,.@_-]+$/); // IAM role name characters
    expect(fnv1a64('')).toBe('cbf29ce484222325');
  });

  it("name one installation's resources apart from another's, and keep the names of resources made before installations", () => {
    const id = 'pod-incident:c:n:p';
    expect(resourceNames(id, 1, 'staging').base).not.toBe(resourceNames(id, 1, 'production').base);
    expect(resourceNames(id, 1, 'staging').base).toBe(resourceNames(id, 1, 'staging').base);
    expect(resourceNames(id, 1).base).toBe(`pod-responder-${fnv1a64(id)}-s1`);
  });

  it('tags everything with the installation, the incident and a managed marker', () => {
    expect(ownerTags({ installationId: 'prod', incidentId: 'pod-incident:c:n:p' })).toEqual({
      'pod-responder:managed': 'true',
      'pod-responder:installation': 'prod',
      'pod-responder:incident': 'pod-incident:c:n:p',
    });
  });

  it("count as ours only what the tags prove is this installation's incident's", () => {
    const owner = { installationId: 'prod', incidentId: 'i1' };
    expect(notOwnedBecause(ownerTags(owner), owner)).toBeUndefined();
    expect(notOwnedBecause({ 'pod-responder:managed': 'true', 'pod-responder:incident': 'i1' }, owner)).toBeUndefined(); // tagged before installations
    expect(notOwnedBecause(undefined, owner)).toBe('it is not tagged pod-responder:managed=true');
    expect(notOwnedBecause({ 'pod-responder:incident': 'i1' }, owner)).toBe(
      'it is not tagged pod-responder:managed=true',
    );
    expect(notOwnedBecause(ownerTags({ ...owner, installationId: 'staging' }), owner)).toBe(
      'it belongs to installation staging',
    );
    expect(notOwnedBecause(ownerTags({ ...owner, incidentId: 'i2' }), owner)).toBe('it belongs to incident i2');
  });

  it('trusts only Lambda, for this account, with no wildcard action', () => {
    const doc = JSON.parse(trustPolicy('123456789012'));
    expect(doc.Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Service: 'lambda.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
      },
    ]);
    expect(JSON.stringify(doc)).not.toContain('*');
  });
});
