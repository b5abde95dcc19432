// When `npm start` may say "cluster ready": only when its own processes answer. A port can be
// answered by another process (an older npm start that still runs, a container that publishes the
// port), so every answer is matched to the child npm start started, by the pid the answer names
// (a node's GET /status, the scheduler's GET /healthz both carry `pid`).

/** StatusAnswer: the part of a node's GET /status that readiness reads. */
export interface StatusAnswer {
  readonly nodeId: string;
  readonly pid: number;
  readonly role: string;
  readonly term: number;
}

/** OwnNode: a node npm start started: its id, where it listens, and its child's pid. */
export interface OwnNode {
  readonly id: string;
  readonly url: string;
  readonly pid: number | undefined;
}

/** Foreign: an answer on one of our ports from a process that is not ours. */
export interface Foreign {
  readonly id: string;
  readonly url: string;
  readonly pid: number;
}

/**
 * ownLeader: the node that leads among ours, if one does: it says so, in the highest term any of
 * our nodes reports, and the answer comes from our own child (its pid). Answers from processes
 * that are not ours are listed in `foreign`, so the caller can say what holds the port.
 */
export function ownLeader(
  nodes: readonly OwnNode[],
  answers: ReadonlyMap<string, StatusAnswer | undefined>,
): { leader: { nodeId: string; term: number } | undefined; foreign: Foreign[] } {
  const ours: StatusAnswer[] = [];
  const foreign: Foreign[] = [];
  for (const node of nodes) {
    const answer = answers.get(node.id);
    if (answer === undefined) continue;
    if (node.pid !== undefined && answer.pid === node.pid && answer.nodeId === node.id) ours.push(answer);
    else foreign.push({ id: node.id, url: node.url, pid: answer.pid });
  }
  const highestTerm = Math.max(...ours.map((answer) => answer.term));
  const leader = ours.find((answer) => answer.role === "leader" && answer.term === highestTerm);
  return { leader: leader === undefined ? undefined : { nodeId: leader.nodeId, term: leader.term }, foreign };
}

/** HealthAnswer: the scheduler's GET /healthz. */
export interface HealthAnswer {
  readonly ok: boolean;
  readonly pid?: number;
}

/** schedulerIsOurs: the scheduler answered healthy, and the answer is from our own child. */
export function ownHealthyScheduler(pid: number | undefined, status: number, answer: HealthAnswer | undefined): boolean {
  return status === 200 && answer?.ok === true && pid !== undefined && answer.pid === pid;
}
