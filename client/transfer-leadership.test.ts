// transferLeadership against a scripted cluster on a virtual clock (its sleep moves time; nothing
// here takes time). The scripted leader abandons the first `abandon` transfers it is asked for,
// as the core does when the transferee cannot finish within an election timeout. Shown: a
// transfer abandoned twice is asked for again each askAgainMs until the chosen node leads; a
// node that already leads is not asked for; a transfer that never finishes fails with
// transfer_timed_out naming the leader, within its bound; a member that does not answer is left
// out; the leader's refusal (not a voter) comes through as it was.

import { describe, expect, it } from "vitest";
import type { NodeStatus } from "../protocol/status.ts";
import { LockError } from "./errors.ts";
import { TransferLeadershipError, transferLeadership } from "./transfer-leadership.ts";

const ids = ["n1", "n2", "n3"];
const urlOf = (id: string) => `http://${id}.test:7000`;

class ScriptedCluster {
  leader = "n1";
  term = 2;
  /** abandon: how many more transfers the leader starts and then gives up. */
  abandon = 0;
  down = new Set<string>();
  notVoters = new Set<string>();
  readonly asked: string[] = [];
  nowMs = 0;

  readonly client = {
    admin: async (_path: "/admin/transfer", body: { to: string }) => {
      if (this.notVoters.has(body.to)) throw new LockError("invalid_request", "transfer refused: not_a_voter");
      this.asked.push(body.to);
      if (this.abandon > 0) this.abandon--;
      else if (this.leader !== body.to) {
        this.leader = body.to;
        this.term++;
      }
      return { transferringTo: body.to };
    },
    status: async (url?: string) => {
      const id = ids.find((each) => urlOf(each) === url) as string;
      if (this.down.has(id)) throw new LockError("unavailable", `${id} does not answer`);
      return { nodeId: id, role: id === this.leader ? "leader" : "follower", term: this.term } as unknown as NodeStatus;
    },
  } as never;

  options(to: string, timeoutMs: number) {
    return {
      client: this.client,
      nodes: ids.map(urlOf),
      to,
      timeoutMs,
      askAgainMs: 1000,
      pollMs: 50,
      now: () => this.nowMs,
      sleep: async (ms: number) => {
        this.nowMs += ms;
      },
    };
  }
}

describe("transferLeadership", () => {
  it("asks again each second while the leader abandons the transfer, until the chosen node leads", async () => {
    const cluster = new ScriptedCluster();
    cluster.abandon = 2;
    const report = await transferLeadership(cluster.options("n3", 10_000));
    expect(report).toMatchObject({ leader: "n3", term: 3, requests: 3 });
    expect(cluster.asked).toEqual(["n3", "n3", "n3"]);
    expect(report.ms).toBeGreaterThanOrEqual(2000); // Asked at 0, 1000 and 2000 ms of virtual time.
    expect(report.ms).toBeLessThan(3000);
  });

  it("does not ask when the chosen node leads already", async () => {
    const cluster = new ScriptedCluster();
    expect(await transferLeadership(cluster.options("n1", 10_000))).toMatchObject({ leader: "n1", requests: 0, ms: 0 });
    expect(cluster.asked).toEqual([]);
  });

  it("fails with transfer_timed_out, naming the leader, when the transfer never finishes", async () => {
    const cluster = new ScriptedCluster();
    cluster.abandon = Number.POSITIVE_INFINITY;
    const failed = await transferLeadership(cluster.options("n2", 5000)).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(TransferLeadershipError);
    expect((failed as TransferLeadershipError).code).toBe("transfer_timed_out");
    expect((failed as Error).message).toBe("n2 did not lead within 5000 ms (transfer asked 5 time(s)); n1 leads in term 2");
    expect(cluster.nowMs).toBeGreaterThanOrEqual(5000);
    expect(cluster.nowMs).toBeLessThan(5100);
  });

  it("leaves out a member that does not answer, and passes the leader's refusal on", async () => {
    const cluster = new ScriptedCluster();
    cluster.down.add("n3");
    expect(await transferLeadership(cluster.options("n2", 10_000))).toMatchObject({ leader: "n2", requests: 1 });
    cluster.notVoters.add("n4");
    await expect(transferLeadership(cluster.options("n4", 10_000))).rejects.toThrow("not_a_voter");
  });
});
