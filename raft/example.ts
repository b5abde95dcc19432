// The example of raft/README.md, verbatim (scripts/docs.test.ts checks that they match, and
// runs it): three cores over MemoryStorage, a network that is just an array, and the Ready loop.

import { createSeededRandom, MemoryStorage, nodeId, type RaftMessage, RawNode, raftConfigDefaults } from "./index.ts";

export function runThreeNodeExample(): string[] {
  const ids = ["n1", "n2", "n3"].map(nodeId);
  const storages = new Map(ids.map((id) => [id, MemoryStorage.bootstrap(ids)]));
  const nodes = new Map(
    ids.map((id, seed) => [
      id,
      new RawNode({ ...raftConfigDefaults, id, random: createSeededRandom(seed) }, storages.get(id) as MemoryStorage),
    ]),
  );
  const network: RaftMessage[] = [];
  const applied: string[] = [];

  // The host's loop: for every Ready, persist, then send, then apply, then advance.
  const drain = (): void => {
    for (const [id, node] of nodes) {
      for (let ready = node.ready(); ready !== undefined; ready = node.ready()) {
        const storage = storages.get(id) as MemoryStorage;
        if (ready.snapshot) storage.applySnapshot(ready.snapshot); // 1. persist (fsync, on a real disk)
        storage.append(ready.entries);
        if (ready.hardState) storage.setHardState(ready.hardState);
        network.push(...ready.messages); // 2. send, only after persisting
        for (const entry of ready.committedEntries) {
          if (entry.kind === "normal") applied.push(`${id} applied ${new TextDecoder().decode(entry.data)} at ${entry.index}`); // 3. apply
        }
        node.advance(ready); // 4. done
      }
    }
  };

  // Tick everyone until somebody wins an election, delivering messages as they come.
  for (let tick = 0; tick < 100 && ![...nodes.values()].some((node) => node.status().role === "leader"); tick++) {
    for (const node of nodes.values()) node.tick();
    drain();
    for (let message = network.shift(); message !== undefined; message = network.shift()) {
      nodes.get(message.to)?.step(message);
      drain();
    }
  }
  const leader = [...nodes.values()].find((node) => node.status().role === "leader");
  if (leader === undefined) throw new Error("no leader elected");
  leader.propose(new TextEncoder().encode("hello"));
  // Two heartbeat rounds carry the new commit index to the followers.
  for (let tick = 0; tick < 4; tick++) {
    leader.tick();
    drain();
    for (let message = network.shift(); message !== undefined; message = network.shift()) {
      nodes.get(message.to)?.step(message);
      drain();
    }
  }
  return applied;
}
