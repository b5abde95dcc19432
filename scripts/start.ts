// `npm start`: runs the system locally. The lock node process (node/, issue 3) does not exist
// yet, so for now this runs the real Raft core as a three-node cluster in this one process, on
// an in-memory network, in real time: it elects a leader, replicates a command every half
// second, and every ten seconds crashes the leader to show a failover. It says so when it starts.
//
//   npm start                  until Ctrl-C
//   npm start -- --seconds 10  stop by itself after 10 seconds

import { parseArgs } from "node:util";
import { TestCluster } from "../raft/test-cluster.ts";

const tickIntervalMs = 20;
const { values } = parseArgs({ options: { seconds: { type: "string" } } });
const secondsMax = values.seconds === undefined ? Number.POSITIVE_INFINITY : Number(values.seconds);
if (!(secondsMax > 0)) {
  console.error(`start: --seconds must be a positive number, got "${values.seconds}"`);
  process.exit(2);
}

const log = (message: string): void => console.log(`${new Date().toISOString()} ${message}`);
log("SCTEC: the lock node process is not built yet (issue 3); running a simulated local cluster instead:");
log(`three real Raft cores in this process on an in-memory network, ticking every ${tickIntervalMs} ms (election timeout 10-20 ticks).`);

const cluster = new TestCluster({
  size: 3,
  seed: Date.now() % 0x7fff_ffff,
  config: { electionTimeoutTicks: 10, heartbeatIntervalTicks: 2 },
});
const startedMs = Date.now();
let tickCount = 0;
let commandCount = 0;
let lastLeader = "";
let crashedId: string | undefined;

const timer = setInterval(() => {
  tickCount++;
  cluster.tick();
  cluster.stabilize();
  const leader = cluster.leader();
  const leaderDescription = leader === undefined ? "" : `${leader.id} in term ${leader.rawNode.status().term}`;
  if (leaderDescription !== lastLeader && leader !== undefined) {
    lastLeader = leaderDescription;
    log(`leader elected: ${leaderDescription}`);
  }
  if (leader !== undefined && tickCount % 25 === 0) {
    commandCount++;
    const outcome = cluster.propose(leader.id, `command-${commandCount}`);
    cluster.stabilize();
    if (outcome.kind === "accepted")
      log(`proposed command-${commandCount} at index ${outcome.index}; commit index now ${leader.rawNode.status().commitIndex}`);
  }
  if (tickCount % 500 === 0 && leader !== undefined && crashedId === undefined) {
    crashedId = leader.id;
    log(`crashing the leader ${leader.id} (its durable log survives)`);
    cluster.crash(leader.id);
  } else if (tickCount % 500 === 150 && crashedId !== undefined) {
    log(`restarting ${crashedId}`);
    cluster.restart(crashedId);
    crashedId = undefined;
  }
  if (Date.now() - startedMs >= secondsMax * 1000) stop();
}, tickIntervalMs);

function stop(): void {
  clearInterval(timer);
  const applied = cluster.ids().map((id) => `${id}=${cluster.node(id).rawNode.status().appliedIndex}`);
  log(`stopping; applied index per node: ${applied.join(" ")}`);
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
