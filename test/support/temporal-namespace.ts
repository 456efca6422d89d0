/** A second Temporal namespace on the shared dev server, set up as an operator would: registered, with our search attributes. */
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { inject } from 'vitest';
import { SEARCH_ATTRIBUTE_TYPES } from '../../domain/search-attributes.js';
import { until } from './until.js';

/** temporal.api.enums.v1.IndexedValueType */
const INDEXED_VALUE_TYPE = { Keyword: 2 } as const;
const ALREADY_EXISTS = 6; // gRPC status

const alreadyThere = (err: unknown) => (err as { code?: number }).code === ALREADY_EXISTS;

export async function ensureNamespace(namespace: string): Promise<void> {
  const conn = await Connection.connect({ address: inject('temporalAddress') });
  try {
    await conn.workflowService
      .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') })
      .catch((err) => {
        if (!alreadyThere(err)) throw err;
      });
    // The frontend's namespace cache takes a few seconds to learn a new namespace.
    await until(
      `namespace ${namespace} registered`,
      () =>
        conn.workflowService.describeNamespace({ namespace }).then(
          () => true,
          () => false,
        ),
      30_000,
    );
    const searchAttributes = Object.fromEntries(
      Object.entries(SEARCH_ATTRIBUTE_TYPES).map(([k, type]) => [k, INDEXED_VALUE_TYPE[type]]),
    );
    await conn.operatorService.addSearchAttributes({ namespace, searchAttributes }).catch((err) => {
      if (!alreadyThere(err)) throw err;
    });
    await until(
      `search attributes on ${namespace}`,
      async () => {
        const res = await conn.operatorService.listSearchAttributes({ namespace });
        return Object.keys(SEARCH_ATTRIBUTE_TYPES).every((k) => k in (res.customAttributes ?? {}));
      },
      30_000,
    );
  } finally {
    await conn.close();
  }
}
