/**
 * EC2's pagination of DescribeSecurityGroups, which moto ignores (it answers every group at once): with
 * MaxResults, at most that many groups a page and a NextToken for the rest, so code that never follows
 * NextToken misses groups here as it would on AWS. (AWS also refuses MaxResults below 5; the front takes
 * any size from 1, so tests can paginate a handful of groups.)
 */
import type { Interceptor } from './context.js';

/** The top-level `<item>…</item>` elements inside `<tag>…</tag>` of an EC2 XML answer. */
export function topLevelItems(
  xml: string,
  tag: string,
): { before: string; items: string[]; after: string } | undefined {
  const open = xml.indexOf(`<${tag}>`);
  if (open < 0) return xml.includes(`<${tag}/>`) ? { before: xml, items: [], after: '' } : undefined;
  const start = open + tag.length + 2;
  const end = xml.indexOf(`</${tag}>`, start);
  const items: string[] = [];
  let depth = 0;
  let from = start;
  for (const m of xml.slice(start, end).matchAll(/<item\/>|<(\/?)item>/g)) {
    const at = start + m.index;
    if (m[0] === '<item/>') {
      if (depth === 0) items.push(m[0]);
      continue;
    }
    if (!m[1]) {
      if (depth === 0) from = at;
      depth++;
    } else if (--depth === 0) items.push(xml.slice(from, at + '</item>'.length));
  }
  return { before: xml.slice(0, start), items, after: xml.slice(end) };
}

export const ec2Pages: Interceptor = (call, req, forward) => {
  if (call.service !== 'ec2' || call.action !== 'DescribeSecurityGroups' || !call.params.get('MaxResults'))
    return undefined;
  const max = Math.max(1, Number(call.params.get('MaxResults')));
  const offset = Number(Buffer.from(call.params.get('NextToken') ?? '', 'base64url').toString() || 0);
  const form = new URLSearchParams(req.body.toString('utf8'));
  form.delete('MaxResults');
  form.delete('NextToken');
  const body = Buffer.from(form.toString());
  return (async () => {
    const reply = await forward({ ...req, body });
    if (reply.status !== 200) return reply;
    const xml = reply.body.toString('utf8');
    const parts = topLevelItems(xml, 'securityGroupInfo');
    if (!parts || parts.items.length === 0) return reply;
    const page = parts.items.slice(offset, offset + max);
    const next =
      offset + max < parts.items.length
        ? `<nextToken>${Buffer.from(String(offset + max)).toString('base64url')}</nextToken>`
        : '';
    return {
      ...reply,
      body: Buffer.from(
        `${parts.before}${page.join('')}${parts.after.replace('</securityGroupInfo>', `</securityGroupInfo>${next}`)}`,
      ),
    };
  })();
};
