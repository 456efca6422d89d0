import { AssociateAccessPolicyCommand, CreateAccessEntryCommand, DeleteAccessEntryCommand } from '@aws-sdk/client-eks';
import { EDIT_POLICY_ARN, incidentTags } from '../../domain/aws-resources.js';
import { ignoring, type AwsClients } from './clients.js';

/** Lets the function's role edit one namespace, the incident's: never cluster admin. */
export async function createAccessEntry(
  aws: AwsClients,
  p: { clusterName: string; roleArn: string; namespace: string; incidentId: string },
): Promise<void> {
  await ignoring(['ResourceInUseException'], () =>
    aws.eks.send(new CreateAccessEntryCommand({ clusterName: p.clusterName, principalArn: p.roleArn, type: 'STANDARD', tags: incidentTags(p.incidentId) })),
  );
  await aws.eks.send(
    new AssociateAccessPolicyCommand({
      clusterName: p.clusterName,
      principalArn: p.roleArn,
      policyArn: EDIT_POLICY_ARN,
      accessScope: { type: 'namespace', namespaces: [p.namespace] },
    }),
  );
}

/** Deleting the entry also removes its policy associations. */
export async function deleteAccessEntry(aws: AwsClients, p: { clusterName: string; roleArn: string }): Promise<{ deleted: boolean }> {
  const out = await ignoring(['ResourceNotFoundException'], () =>
    aws.eks.send(new DeleteAccessEntryCommand({ clusterName: p.clusterName, principalArn: p.roleArn })),
  );
  return { deleted: out !== undefined };
}
