import { Client, Connection } from '@temporalio/client';
import type { PodAlert } from '../../domain/alert.js';
import type { Config } from '../../worker/config.js';
import { respondToAlert, type StartedIncident } from '../incidents.js';

/**
 * The forwarder's one connection to Temporal. It connects lazily and grpc reconnects on its own,
 * so the forwarder starts (and answers 503) while Temporal is down and recovers when it is back.
 */
export class TemporalGateway {
  private constructor(
    private readonly config: Config,
    readonly connection: Connection,
    private readonly client: Client,
  ) {}

  static create(config: Config): TemporalGateway {
    const connection = Connection.lazy({ address: config.temporal.address });
    return new TemporalGateway(config, connection, new Client({ connection, namespace: config.temporal.namespace }));
  }

  /** Resolves only once Temporal has durably accepted the alert; rejects within the configured deadline. */
  submit(alert: PodAlert): Promise<StartedIncident> {
    return this.connection.withDeadline(Date.now() + this.config.forwarder.temporalTimeoutMs, () => respondToAlert(this.client, this.config, alert));
  }

  async ready(timeoutMs = 2000): Promise<boolean> {
    try {
      const res = await this.connection.withDeadline(Date.now() + timeoutMs, () => this.connection.healthService.check({}));
      return res.status === 1; // SERVING
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
