import { DefaultLogger, type LogLevel } from '@temporalio/worker';
import { installRuntime } from './runtime.js';

/**
 * JSON lines on stderr, one object per event, for log shippers. Values come from alerts, so they
 * are serialized by JSON.stringify (escaped), never interpolated into the message.
 */
export function jsonLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l + '\n')) {
  return new DefaultLogger(level, (entry) => {
    const { message, level: lvl, timestampNanos, meta } = entry;
    write(
      JSON.stringify({
        time: new Date(Number(timestampNanos / 1_000_000n)).toISOString(),
        level: lvl,
        msg: message,
        ...meta,
      }),
    );
  });
}

/** Installs the logger for the SDK and its core once per process (with the runtime: see worker/runtime.ts). */
export function installLogging(level: LogLevel): void {
  installRuntime({ logger: jsonLogger(level) });
}
