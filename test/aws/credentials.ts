/**
 * Temporary credentials the front has seen issued (by AssumeRole through it, or minted for a Lambda
 * function's role), so the token webhook can check a signature (it needs the secret) and name the
 * role behind an access key. moto keeps these too, but has no API to look a secret up.
 */
export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** The IAM role ARN (arn:aws:iam::<account>:role/<name>), not the assumed-role session ARN. */
  roleArn: string;
}

export class CredentialsRegistry {
  private readonly byKey = new Map<string, IssuedCredentials>();

  remember(creds: IssuedCredentials): void {
    this.byKey.set(creds.accessKeyId, creds);
  }

  get(accessKeyId: string): IssuedCredentials | undefined {
    return this.byKey.get(accessKeyId);
  }

  /** Learns from an STS AssumeRole XML answer passing through the front. */
  rememberAssumeRoleAnswer(xml: string): void {
    const tag = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
    const accessKeyId = tag('AccessKeyId');
    const secretAccessKey = tag('SecretAccessKey');
    const assumedArn = tag('Arn');
    if (!accessKeyId || !secretAccessKey || !assumedArn) return;
    const sessionToken = tag('SessionToken');
    const roleArn = roleArnOf(assumedArn);
    this.remember({
      accessKeyId,
      secretAccessKey,
      roleArn,
      ...(sessionToken ? { sessionToken: unescapeXml(sessionToken) } : {}),
    });
  }
}

/** arn:aws:sts::123456789012:assumed-role/name/session → arn:aws:iam::123456789012:role/name */
export function roleArnOf(assumedRoleArn: string): string {
  const m = /^arn:([\w-]+):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(assumedRoleArn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : assumedRoleArn;
}

function unescapeXml(s: string): string {
  return s.replace(
    /&(lt|gt|amp|quot|apos);/g,
    (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e]!,
  );
}
