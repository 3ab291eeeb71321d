/** What the reference stores of a message: the contract's record fields, plus its tenant. */
export interface ReferenceInput {
  recipient: string;
  message?: string;
  channel: string;
  sendAt: number;
}

/** The record hash of a new message, as flat strings (times as epoch ms, as the product stores them). */
export function referenceRecord(id: string, input: ReferenceInput, now: number): Record<string, string> {
  const fields: Record<string, string> = {
    id,
    tenant: 'default',
    recipient: input.recipient,
    channel: input.channel,
    sendAt: String(input.sendAt),
    status: 'scheduled',
    createdAt: String(now),
    updatedAt: String(now),
    attempts: '0',
    version: '1',
  };
  if (input.message !== undefined) fields.message = input.message;
  return fields;
}
