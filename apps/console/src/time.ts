/** The value of a datetime-local input (the browser's time zone) as epoch ms; NaN when empty or invalid. */
export function localInputToEpoch(value: string): number {
  // "YYYY-MM-DDTHH:mm[:ss]" without an offset is read as local time
  return value ? new Date(value).getTime() : Number.NaN;
}

/** Epoch ms as a datetime-local input value, in the browser's time zone, to the second. */
export function epochToLocalInput(epoch: number): string {
  const date = new Date(epoch);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** Every IANA zone the browser's time-zone data knows, for picking a recipient's. */
export function timeZones(): string[] {
  return Intl.supportedValuesOf('timeZone');
}

/** Epoch ms as a datetime-local input value on the wall clock of `zone`, to the second. */
export function epochToZonedInput(epoch: number, zone: string): string {
  const format = new Intl.DateTimeFormat('sv-SE', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  return format.format(epoch).replace(' ', 'T');
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatLocal(epoch: number): string {
  return localFormat.format(epoch);
}

export function formatUtc(epoch: number): string {
  return `${new Date(epoch).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** "in 2 h 05 min", "in 42 s", or "due" once the time has come. */
export function countdown(sendAt: number, now: number): string {
  const seconds = Math.round((sendAt - now) / 1000);
  if (seconds <= 0) return 'due';
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${String(minutes).padStart(2, '0')} min`;
  if (minutes > 0) return `${minutes} min ${String(rest).padStart(2, '0')} s`;
  return `${rest} s`;
}
