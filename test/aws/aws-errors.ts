/** AWS error responses in each protocol's wire format, so the real SDK parses them into the named exception. */
import { randomUUID } from 'node:crypto';
import type { Protocol } from './classify.js';
import type { Reply } from './http.js';

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function awsError(
  protocol: Protocol,
  service: string,
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): Reply {
  const requestId = randomUUID();
  switch (protocol) {
    case 'ec2':
      return {
        status,
        headers: { 'content-type': 'text/xml;charset=UTF-8' },
        body: Buffer.from(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${xmlEscape(code)}</Code>` +
            `<Message>${xmlEscape(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
        ),
      };
    case 'query':
      return {
        status,
        headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
        body: Buffer.from(
          `<ErrorResponse><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${xmlEscape(code)}</Code>` +
            `<Message>${xmlEscape(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
        ),
      };
    case 'json':
      return {
        status,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId },
        body: Buffer.from(JSON.stringify({ __type: code, message, ...extra })),
      };
    case 'rest-json': {
      // Lambda's error shapes spell it Type/Message; EKS's (and most others') use message.
      const body =
        service === 'lambda'
          ? { Type: status >= 500 ? 'Service' : 'User', Message: message, ...extra }
          : { message, ...extra };
      return {
        status,
        headers: { 'content-type': 'application/json', 'x-amzn-errortype': code, 'x-amzn-requestid': requestId },
        body: Buffer.from(JSON.stringify(body)),
      };
    }
  }
}
