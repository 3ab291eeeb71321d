/** BullMQ queue names shared by producer (API) and consumer (worker). Renaming one strands its jobs. */
export const QUEUE_NAMES = {
  /** One delayed job per message; job id = message id. */
  deliveries: 'deliveries',
  /** Carries no jobs: its BullMQ events stream is the live feed. */
  feed: 'feed',
} as const;

export interface DeliveryJobData {
  id: string;
}
export const DELIVERY_JOB_NAME = 'deliver';
