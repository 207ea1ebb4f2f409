import { createHmac } from 'node:crypto'

/**
 * The Standard Webhooks signature headers of one message: `webhook-signature` is `v1,` and the
 * base64 HMAC-SHA256, keyed by the decoded secret, of `<webhook-id>.<webhook-timestamp>.<body>`.
 */
export function signatureHeaders (secret: string, messageId: string, timestampSeconds: number, body: string): Record<string, string> {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const signature = createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64')
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${signature}`
  }
}
