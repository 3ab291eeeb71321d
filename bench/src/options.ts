import { parseArgs } from 'node:util';

export interface BenchOptions {
  mode: 'quick' | 'full';
  /** Redis `hz` of the run's own redis-server (10 is Redis's default). */
  hz: number;
  postSeconds: number;
  postRounds: number;
  connections: number;
  deliveries: number;
  latenessSeconds: number;
  latenessRates: number[];
  /** Redis hz values the lateness scenario runs at (CONFIG SET on the bench's server). */
  latenessHz: number[];
  scheduled: number;
  /** Distinct recipients of the at-scale messages (default: one each). */
  recipients: number;
  samples: number;
  wsClients: number;
  /** Items of the batch scenario's batch (and single POSTs it is compared with), and its rounds. */
  batchItems: number;
  batchRounds: number;
  /** Runs the product's processes under `node --cpu-prof` and prints their top frames. */
  profile: boolean;
  only?: string[];
  /** Runs only the Redis Cluster scenario (1 vs 6 partitions on a local three-master cluster). */
  cluster: boolean;
  out: string;
}

const PRESETS: Record<BenchOptions['mode'], Omit<BenchOptions, 'mode' | 'hz' | 'profile' | 'only' | 'cluster' | 'out' | 'recipients'>> = {
  quick: {
    postSeconds: 4,
    postRounds: 3,
    connections: 50,
    deliveries: 5_000,
    latenessSeconds: 8,
    latenessRates: [1_000],
    latenessHz: [100, 10],
    scheduled: 100_000,
    samples: 500,
    wsClients: 1_000,
    batchItems: 1_000,
    batchRounds: 3,
  },
  full: {
    postSeconds: 10,
    postRounds: 5,
    connections: 50,
    deliveries: 50_000,
    latenessSeconds: 30,
    latenessRates: [100, 1_000],
    latenessHz: [100, 10],
    scheduled: 1_000_000,
    samples: 2_000,
    wsClients: 1_000,
    batchItems: 1_000,
    batchRounds: 7,
  },
};

export const USAGE = `pnpm bench [--quick | --full] [--flag=value …]
  --quick               default: finishes in under 3 minutes
  --full                the large sizes (1,000,000 scheduled, 50,000 deliveries, 30 s of lateness at 100 and 1,000/s)
  --hz=10               hz of the benchmark's own redis-server (10 = Redis's default)
  --post-seconds=N --post-rounds=N --connections=N     POST throughput (autocannon)
  --deliveries=N        messages due at once for delivery throughput
  --lateness-seconds=N --lateness-rates=1000 --lateness-hz=100,10   due per second, for N seconds, at each Redis hz
  --scheduled=N         messages scheduled for PUT/DELETE/GET, pages, Redis bytes (RSS sampled at N/2 and N)
  --recipients=N        distinct recipients of those messages (default: a different one each)
  --samples=N           requests per latency figure
  --ws-clients=N        WebSocket clients of the fan-out (e.g. 10000)
  --batch-items=N --batch-rounds=N   a batch of N (≤ 1,000) against N single POSTs
  --only=post,delivery,lateness,scale,ws,batch,receipts,pacing   run some scenarios only
  --cluster             only delivery throughput on a local 3-master Redis Cluster, 1 vs 6 partitions
  --profile             run the product under node --cpu-prof and print its top frames
  --out=PATH            where the JSON goes (bench/results/latest.json)`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--'),
    options: {
      quick: { type: 'boolean' },
      full: { type: 'boolean' },
      hz: { type: 'string' },
      'post-seconds': { type: 'string' },
      'post-rounds': { type: 'string' },
      connections: { type: 'string' },
      deliveries: { type: 'string' },
      'lateness-seconds': { type: 'string' },
      'lateness-rates': { type: 'string' },
      'lateness-hz': { type: 'string' },
      scheduled: { type: 'string' },
      recipients: { type: 'string' },
      samples: { type: 'string' },
      'ws-clients': { type: 'string' },
      'batch-items': { type: 'string' },
      'batch-rounds': { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean' },
      cluster: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const mode = values.full ? 'full' : 'quick';
  const preset = PRESETS[mode];
  const int = (name: string, value: string | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    const n = Number(value.replaceAll('_', ''));
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer (got "${value}")`);
    return n;
  };
  const scheduled = int('scheduled', values.scheduled, preset.scheduled);
  return {
    mode,
    hz: int('hz', values.hz, 10),
    postSeconds: int('post-seconds', values['post-seconds'], preset.postSeconds),
    postRounds: int('post-rounds', values['post-rounds'], preset.postRounds),
    connections: int('connections', values.connections, preset.connections),
    deliveries: int('deliveries', values.deliveries, preset.deliveries),
    latenessSeconds: int('lateness-seconds', values['lateness-seconds'], preset.latenessSeconds),
    latenessRates: values['lateness-rates']
      ? values['lateness-rates'].split(',').map((r) => int('lateness-rates', r, 0))
      : preset.latenessRates,
    latenessHz: values['lateness-hz'] ? values['lateness-hz'].split(',').map((h) => int('lateness-hz', h, 0)) : preset.latenessHz,
    scheduled,
    recipients: int('recipients', values.recipients, scheduled),
    samples: int('samples', values.samples, preset.samples),
    wsClients: int('ws-clients', values['ws-clients'], preset.wsClients),
    batchItems: Math.min(1000, int('batch-items', values['batch-items'], preset.batchItems)),
    batchRounds: int('batch-rounds', values['batch-rounds'], preset.batchRounds),
    profile: values.profile ?? false,
    only: values.cluster ? ['cluster'] : values.only?.split(','),
    cluster: values.cluster ?? false,
    out: values.out ?? 'bench/results/latest.json',
  };
}
