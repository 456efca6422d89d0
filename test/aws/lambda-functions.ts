/**
 * Lambda functions that really run. moto (without Docker) keeps every function's metadata, tags and
 * state but answers Invoke with the payload it was given; the front also records each function's code
 * and configuration as it passes through, and answers a successful Invoke by running the code
 * (lambda-runner.ts) under the function's role, as Lambda would, reaching only what its security groups
 * allow (function-network.ts).
 */
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { unzipSync } from 'fflate';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { awsError } from './aws-errors.js';
import { parseJson, type FrontContext, type Interceptor } from './context.js';
import type { CredentialsRegistry } from './credentials.js';
import type { InboundRequest, Reply } from './http.js';
import type { FunctionNetwork } from './function-network.js';
import type { LambdaRunner } from './lambda-runner.js';

interface VpcConfig {
  SubnetIds?: string[];
  SecurityGroupIds?: string[];
}

interface FunctionRecord {
  name: string;
  arn: string;
  role: string;
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memorySize: number;
  environment: Record<string, string>;
  vpcConfig: VpcConfig;
  zip?: Buffer;
  /** Until then the function is Pending (Lambda making its network interfaces); Invoke is refused. */
  activeAt: number;
}

type Json = Record<string, unknown>;

/** FunctionName may be a name, a full ARN (optionally qualified) or a partial ARN. */
function functionNameOf(nameOrArn: string): string {
  const m = /^(?:arn:[\w-]+:lambda:[\w-]+:)?(?:\d{12}:)?function:([^:]+)/.exec(nameOrArn);
  return m ? m[1]! : nameOrArn;
}

export class LambdaFunctions {
  private readonly functions = new Map<string, FunctionRecord>();
  /** Told which security groups a function stopped using, for the ENI release delay. */
  onGroupsReleased: (groupIds: string[]) => void = () => {};

  constructor(
    private readonly ctx: FrontContext,
    private readonly runner: LambdaRunner,
    private readonly credentials: CredentialsRegistry,
    private readonly endpointUrl: () => string,
    private readonly pendingSeconds: (functionName: string) => number,
    /** What the function's security groups let it reach. */
    private readonly network: FunctionNetwork,
  ) {}

  private pending(name: string | undefined): boolean {
    const fn = name ? this.functions.get(name) : undefined;
    return !!fn && Date.now() < fn.activeAt;
  }

  /** moto reports every function Active at once; Lambda reports Pending while it creates the function. */
  private asPending(config: Json): void {
    Object.assign(config, {
      State: 'Pending',
      StateReason: 'The function is being created.',
      StateReasonCode: 'Creating',
    });
  }

  /** Security groups of the functions that exist: their ENIs are attached. */
  groupsInUse(): Set<string> {
    return new Set([...this.functions.values()].flatMap((f) => f.vpcConfig.SecurityGroupIds ?? []));
  }

  intercept: Interceptor = (call, req, forward) => {
    if (call.service !== 'lambda') return undefined;
    const name = call.labels['FunctionName'] && functionNameOf(call.labels['FunctionName']);
    switch (call.action) {
      case 'CreateFunction':
        return (
          this.refuseBadZip(((parseJson(req.body)['Code'] ?? {}) as Json)['ZipFile']) ??
          this.rewritten(forward, (out) => {
            this.record(parseJson(req.body), out);
            if (this.pending(String(out['FunctionName']))) this.asPending(out);
          })
        );
      case 'GetFunction':
        return this.pending(name)
          ? this.rewritten(forward, (out) => this.asPending((out['Configuration'] ?? {}) as Json))
          : undefined;
      case 'GetFunctionConfiguration':
        return this.pending(name) ? this.rewritten(forward, (out) => this.asPending(out)) : undefined;
      case 'UpdateFunctionCode':
        return (
          this.refuseBadZip(parseJson(req.body)['ZipFile']) ??
          this.afterSuccess(forward, (out) => {
            const fn = this.functions.get(name!);
            const zip = parseJson(req.body)['ZipFile'];
            if (fn && typeof zip === 'string') fn.zip = Buffer.from(zip, 'base64');
            if (fn) fn.arn = String(out['FunctionArn'] ?? fn.arn);
          })
        );
      case 'UpdateFunctionConfiguration':
        return this.afterSuccess(forward, () => this.reconfigure(name!, parseJson(req.body)));
      case 'DeleteFunction':
        // Deleting one version leaves the function (and its ENIs) in place.
        if (req.query.get('Qualifier')) return undefined;
        return this.afterSuccess(forward, () => {
          const fn = this.functions.get(name!);
          this.functions.delete(name!);
          if (fn?.vpcConfig.SecurityGroupIds?.length) this.onGroupsReleased(fn.vpcConfig.SecurityGroupIds);
        });
      case 'Invoke':
        return this.invoke(name!, req, forward);
      default:
        return undefined;
    }
  };

  /** Lambda unpacks the code at upload; moto does not look inside. */
  private refuseBadZip(zipFile: unknown): Promise<Reply> | undefined {
    if (typeof zipFile !== 'string') return undefined;
    try {
      unzipSync(Buffer.from(zipFile, 'base64'));
      return undefined;
    } catch {
      return Promise.resolve(
        awsError(
          'rest-json',
          'lambda',
          400,
          'InvalidParameterValueException',
          'Could not unzip uploaded file. Please check your file, then try to upload again.',
        ),
      );
    }
  }

  /** moto's successful answer, changed by `edit`. */
  private async rewritten(forward: () => Promise<Reply>, edit: (out: Json) => void): Promise<Reply> {
    const reply = await forward();
    if (reply.status < 200 || reply.status >= 300) return reply;
    const out = parseJson(reply.body);
    edit(out);
    return { ...reply, body: Buffer.from(JSON.stringify(out)) };
  }

  private async afterSuccess(forward: () => Promise<Reply>, then: (out: Json) => void): Promise<Reply> {
    const reply = await forward();
    if (reply.status >= 200 && reply.status < 300) then(reply.body.length ? parseJson(reply.body) : {});
    return reply;
  }

  private record(body: Json, out: Json): void {
    const code = (body['Code'] ?? {}) as Json;
    const name = String(out['FunctionName'] ?? functionNameOf(String(body['FunctionName'])));
    this.functions.set(name, {
      name,
      arn: String(out['FunctionArn'] ?? ''),
      role: String(body['Role']),
      handler: String(body['Handler'] ?? 'index.handler'),
      runtime: String(body['Runtime'] ?? 'nodejs20.x'),
      timeoutSeconds: Number(body['Timeout'] ?? 3),
      memorySize: Number(body['MemorySize'] ?? 128),
      environment: ((body['Environment'] as Json | undefined)?.['Variables'] ?? {}) as Record<string, string>,
      vpcConfig: body['VpcConfig'] ?? {},
      ...(typeof code['ZipFile'] === 'string' ? { zip: Buffer.from(code['ZipFile'], 'base64') } : {}),
      activeAt: Date.now() + this.pendingSeconds(name) * 1000,
    });
  }

  private reconfigure(name: string, body: Json): void {
    const fn = this.functions.get(name);
    if (!fn) return;
    if (body['Role'] !== undefined) fn.role = String(body['Role']);
    if (body['Handler'] !== undefined) fn.handler = String(body['Handler']);
    if (body['Runtime'] !== undefined) fn.runtime = String(body['Runtime']);
    if (body['Timeout'] !== undefined) fn.timeoutSeconds = Number(body['Timeout']);
    if (body['MemorySize'] !== undefined) fn.memorySize = Number(body['MemorySize']);
    if (body['Environment'] !== undefined)
      fn.environment = ((body['Environment'] as Json)['Variables'] ?? {}) as Record<string, string>;
    if (body['VpcConfig'] !== undefined) {
      const next = body['VpcConfig'] as VpcConfig;
      const dropped = (fn.vpcConfig.SecurityGroupIds ?? []).filter((g) => !(next.SecurityGroupIds ?? []).includes(g));
      fn.vpcConfig = next;
      if (dropped.length) this.onGroupsReleased(dropped);
    }
  }

  /**
   * Lambda's checks first: moto's simple backend answers Invoke for any name, so the function's
   * existence and state are asked of moto's GetFunctionConfiguration. Then moto answers (its
   * invocation-type handling) and only its success is replaced by a real run.
   */
  private async invoke(name: string, req: InboundRequest, forward: () => Promise<Reply>): Promise<Reply> {
    const qualifier = req.query.get('Qualifier') ?? undefined;
    let state: string | undefined;
    try {
      ({ State: state } = await this.ctx.moto.lambda.send(
        new GetFunctionConfigurationCommand({ FunctionName: name, Qualifier: qualifier }),
      ));
    } catch (err) {
      if ((err as { name?: string }).name !== 'ResourceNotFoundException') throw err;
      const arn = `arn:aws:lambda:${this.ctx.region}:${this.ctx.accountId}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
      return awsError('rest-json', 'lambda', 404, 'ResourceNotFoundException', `Function not found: ${arn}`);
    }
    if (this.pending(name)) state = 'Pending';
    if (state && state !== 'Active') {
      return awsError(
        'rest-json',
        'lambda',
        409,
        'ResourceConflictException',
        `The operation cannot be performed at this time. The function is currently in the following state: ${state}`,
      );
    }
    const reply = await forward();
    const fn = this.functions.get(name);
    if (reply.status >= 300 || !fn?.zip) return reply;
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (invocationType === 'DryRun') return reply;

    let event: unknown;
    try {
      event = req.body.length ? JSON.parse(req.body.toString('utf8')) : {};
    } catch {
      return {
        status: 400,
        headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'InvalidRequestContentException' },
        body: Buffer.from(JSON.stringify({ Type: 'User', message: 'Could not parse request body into json' })),
      };
    }
    const run = this.run(fn, event);
    if (invocationType === 'Event') {
      run.catch((err) => this.ctx.log(`[aws-front] lambda ${name}: async invocation failed: ${err}`));
      return reply; // moto's 202
    }
    const outcome = await run;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-amz-executed-version': '$LATEST',
      'x-amzn-requestid': outcome.requestId,
    };
    if (req.headers['x-amz-log-type'] === 'Tail')
      headers['x-amz-log-result'] = Buffer.from(outcome.logs.slice(-4096)).toString('base64');
    if (!outcome.ok) {
      headers['x-amz-function-error'] = 'Unhandled';
      return { status: 200, headers, body: Buffer.from(JSON.stringify(outcome.error)) };
    }
    return { status: 200, headers, body: Buffer.from(outcome.payload) };
  }

  private async run(fn: FunctionRecord, event: unknown) {
    // Lambda assumes the execution role for each execution environment; the session is named after the function.
    const { Credentials } = await this.ctx.moto.sts.send(
      new AssumeRoleCommand({ RoleArn: fn.role, RoleSessionName: fn.name.slice(0, 64) }),
    );
    const creds = {
      accessKeyId: Credentials!.AccessKeyId!,
      secretAccessKey: Credentials!.SecretAccessKey!,
      sessionToken: Credentials!.SessionToken!,
    };
    this.credentials.remember({ ...creds, roleArn: fn.role });
    // Its groups as configured now (UpdateFunctionConfiguration may change them), each connect decided by their rules then.
    const network = (host: string, port: number) =>
      this.network.decide(fn.vpcConfig.SecurityGroupIds ?? [], host, port);
    return this.runner.invoke({ ...fn, zip: fn.zip! }, event, creds, this.endpointUrl(), this.ctx.region, network);
  }
}
