// Configuration: flags override the environment, defaults fill the rest, and every problem is
// reported at once with the variable and flag to fix.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadNodeConfig } from "./config.ts";

const env = {
  SCTEC_NODE_ID: "n1",
  SCTEC_LISTEN: "127.0.0.1:7001",
  SCTEC_PEERS: "n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003",
  SCTEC_DATA_DIR: "./data/n1",
  SCTEC_CLUSTER_SECRET: "a-long-enough-secret",
  SCTEC_API_TOKEN: "a-long-enough-token",
};

describe("loadNodeConfig", () => {
  it("reads the environment and fills the defaults", () => {
    const config = loadNodeConfig([], env);
    expect(config.nodeId).toBe("n1");
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 7001 });
    expect([...config.peers.keys()]).toEqual(["n1", "n2", "n3"]);
    expect(config.tickIntervalMs).toBe(10);
    expect(config.electionTimeoutTicks).toBe(15);
    expect(config.watchEventsMax).toBe(10_000);
    expect(config.watchBytesMax).toBe(64 * 1024 * 1024);
    expect(config.watchersMax).toBe(1000);
  });

  it("validates the watch limits", () => {
    expect(loadNodeConfig(["--watch-events-max", "500"], env).watchEventsMax).toBe(500);
    expect(() => loadNodeConfig([], { ...env, SCTEC_WATCH_EVENTS_MAX: "0" })).toThrow(/SCTEC_WATCH_EVENTS_MAX \/ --watch-events-max/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_WATCH_EVENTS_MAX: "many" })).toThrow(/SCTEC_WATCH_EVENTS_MAX/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_WATCH_BYTES_MAX: "1000" })).toThrow(/SCTEC_WATCH_BYTES_MAX/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_WATCHERS_MAX: "0" })).toThrow(/SCTEC_WATCHERS_MAX/);
  });

  it("reads and validates the admission limit and its Retry-After", () => {
    const config = loadNodeConfig([], env);
    expect(config.requestQueueMax).toBe(1024);
    expect(config.overloadRetryAfterMs).toBe(250);
    expect(loadNodeConfig(["--request-queue-max", "64"], env).requestQueueMax).toBe(64);
    expect(() => loadNodeConfig([], { ...env, SCTEC_REQUEST_QUEUE_MAX: "0" })).toThrow(/SCTEC_REQUEST_QUEUE_MAX \/ --request-queue-max/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_REQUEST_QUEUE_MAX: "lots" })).toThrow(/SCTEC_REQUEST_QUEUE_MAX/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_OVERLOAD_RETRY_AFTER_MS: "-1" })).toThrow(/SCTEC_OVERLOAD_RETRY_AFTER_MS/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_OVERLOAD_RETRY_AFTER_MS: "600000" })).toThrow(/SCTEC_OVERLOAD_RETRY_AFTER_MS/);
  });

  it("reads and validates the graceful stop's bounds", () => {
    const config = loadNodeConfig([], env);
    expect([config.stopTransferMs, config.stopDrainMs]).toEqual([2000, 3000]);
    expect(loadNodeConfig(["--stop-transfer-ms", "0"], env).stopTransferMs).toBe(0);
    expect(() => loadNodeConfig([], { ...env, SCTEC_STOP_TRANSFER_MS: "61000" })).toThrow(/SCTEC_STOP_TRANSFER_MS \/ --stop-transfer-ms/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_STOP_DRAIN_MS: "-5" })).toThrow(/SCTEC_STOP_DRAIN_MS/);
  });

  it("reads the status page and metrics settings, with bounds", () => {
    const config = loadNodeConfig([], env);
    expect(config.bookingUrl).toBe("http://127.0.0.1:8080/");
    expect(config.statusViewersMax).toBe(100);
    expect(config.statusTimelineEventsMax).toBe(200);
    expect(config.statusLeasesMax).toBe(200);
    expect(config.statusPushMs).toBe(500);
    expect(config.statusPeerPollMs).toBe(1000);
    expect(loadNodeConfig(["--booking-url", "http://booking.local:9000/"], env).bookingUrl).toBe("http://booking.local:9000/");
    expect(() => loadNodeConfig([], { ...env, SCTEC_BOOKING_URL: "ftp://x" })).toThrow(/SCTEC_BOOKING_URL \/ --booking-url/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_STATUS_VIEWERS_MAX: "0" })).toThrow(/SCTEC_STATUS_VIEWERS_MAX/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_STATUS_TIMELINE_EVENTS_MAX: "5" })).toThrow(/SCTEC_STATUS_TIMELINE_EVENTS_MAX/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_STATUS_PUSH_MS: "10" })).toThrow(/SCTEC_STATUS_PUSH_MS/);
  });

  it("reads the status page's links to the members, which must be peers", () => {
    expect(loadNodeConfig([], env).statusLinks).toBeUndefined();
    const links = loadNodeConfig([], { ...env, SCTEC_STATUS_LINKS: "n1=http://127.0.0.1:9001,n3=http://127.0.0.1:9003" }).statusLinks;
    expect([...(links ?? [])]).toEqual([
      ["n1", "http://127.0.0.1:9001"],
      ["n3", "http://127.0.0.1:9003"],
    ]);
    expect(() => loadNodeConfig([], { ...env, SCTEC_STATUS_LINKS: "n9=http://127.0.0.1:9009" })).toThrow(
      /SCTEC_STATUS_LINKS \/ --status-links: n9 is not in the peer list/,
    );
    expect(() => loadNodeConfig(["--status-links", "n1=ftp://x"], env)).toThrow(/SCTEC_STATUS_LINKS/);
  });

  it("puts the peers' Raft connections on the HTTP port + 100 unless told otherwise", () => {
    const config = loadNodeConfig([], env);
    expect(config.raftListen).toEqual({ host: "127.0.0.1", port: 7101 });
    expect([...config.raftPeerUrls]).toEqual([
      ["n1", "ws://127.0.0.1:7101/raft"],
      ["n2", "ws://127.0.0.1:7102/raft"],
      ["n3", "ws://127.0.0.1:7103/raft"],
    ]);
    // Beyond loopback without TLS only with --insecure (issue 20: the peer port follows the API port's rule).
    const told = loadNodeConfig(["--raft-listen", "0.0.0.0:9100", "--insecure"], {
      ...env,
      SCTEC_RAFT_PEERS: "n2=10.0.0.2:9200, n3=node3:9300",
    });
    expect(told.raftListen).toEqual({ host: "0.0.0.0", port: 9100 });
    expect([...told.raftPeerUrls]).toEqual([
      ["n1", "ws://127.0.0.1:7101/raft"],
      ["n2", "ws://10.0.0.2:9200/raft"],
      ["n3", "ws://node3:9300/raft"],
    ]);
    expect(() => loadNodeConfig([], { ...env, SCTEC_RAFT_PEERS: "n9=127.0.0.1:9009" })).toThrow(
      /SCTEC_RAFT_PEERS \/ --raft-peers: n9 is not in the peer list/,
    );
    expect(() => loadNodeConfig([], { ...env, SCTEC_RAFT_PEERS: "n2=http://127.0.0.1:9002" })).toThrow(/is not id=host:port/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_RAFT_LISTEN: "nowhere" })).toThrow(/SCTEC_RAFT_LISTEN \/ --raft-listen/);
    // Port + 100 would leave the port range: the address must then be given.
    const high = { ...env, SCTEC_LISTEN: "127.0.0.1:65500", SCTEC_PEERS: "n1=http://127.0.0.1:65500" };
    expect(() => loadNodeConfig([], high)).toThrow(/SCTEC_RAFT_LISTEN \/ --raft-listen: is required/);
    expect(loadNodeConfig([], env).raftRealtime).toBe(false);
    expect(loadNodeConfig(["--raft-realtime", "true"], env).raftRealtime).toBe(true);
    expect(() => loadNodeConfig([], { ...env, SCTEC_RAFT_REALTIME: "yes" })).toThrow(/SCTEC_RAFT_REALTIME \/ --raft-realtime/);
    expect(
      loadNodeConfig([], { ...high, SCTEC_RAFT_LISTEN: "127.0.0.1:9000", SCTEC_RAFT_PEERS: "n1=127.0.0.1:9000" }).raftListen.port,
    ).toBe(9000);
  });

  it("lets flags override the environment", () => {
    const config = loadNodeConfig(["--election-ticks", "20", "--node-id", "n2"], env);
    expect(config.electionTimeoutTicks).toBe(20);
    expect(config.nodeId).toBe("n2");
  });

  it("reports every problem at once, naming the variable and the flag", () => {
    const bad = { ...env, SCTEC_CLUSTER_SECRET: "short", SCTEC_PEERS: "n2=http://127.0.0.1:7002", SCTEC_TICK_MS: "0" };
    let message = "";
    try {
      loadNodeConfig([], bad);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toContain("SCTEC_CLUSTER_SECRET / --cluster-secret");
    expect(message).toContain("must include this node (n1)");
    expect(message).toContain("SCTEC_TICK_MS / --tick-ms");
  });

  it("rejects unknown flags and malformed peers", () => {
    expect(() => loadNodeConfig(["--no-such-flag", "x"], env)).toThrow(ConfigError);
    expect(() => loadNodeConfig([], { ...env, SCTEC_PEERS: "n1:7001" })).toThrow(/is not id=http/);
    expect(() => loadNodeConfig([], { ...env, SCTEC_ELECTION_TICKS: "3", SCTEC_HEARTBEAT_TICKS: "3" })).toThrow(
      /must exceed heartbeatIntervalTicks/,
    );
  });

  it("reads the cluster secret and the API token from files (Docker secrets), and refuses a secret beside its file", () => {
    const directory = mkdtempSync(join(tmpdir(), "sctec-config-"));
    try {
      writeFileSync(join(directory, "secret"), "a-cluster-secret-from-a-file\n");
      writeFileSync(join(directory, "token"), "an-api-token-from-a-file\n");
      const { SCTEC_CLUSTER_SECRET: _secret, SCTEC_API_TOKEN: _token, ...rest } = env;
      const config = loadNodeConfig(["--api-token-file", join(directory, "token")], {
        ...rest,
        SCTEC_CLUSTER_SECRET_FILE: join(directory, "secret"),
      });
      expect(config.clusterSecret).toBe("a-cluster-secret-from-a-file");
      expect(config.apiToken).toBe("an-api-token-from-a-file");
      expect(() => loadNodeConfig([], { ...env, SCTEC_API_TOKEN_FILE: join(directory, "token") })).toThrow(
        /SCTEC_API_TOKEN and SCTEC_API_TOKEN_FILE: give the value or its file, not both/,
      );
      expect(() =>
        loadNodeConfig([], { ...rest, SCTEC_API_TOKEN: "a-long-enough-token", SCTEC_CLUSTER_SECRET_FILE: "/nonexistent/secret" }),
      ).toThrow(/SCTEC_CLUSTER_SECRET_FILE: cannot read \/nonexistent\/secret: ENOENT/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("serves TLS with the certificate, key and CA together, https:// peers with them, and refuses a plain listen beyond loopback", () => {
    const https = { ...env, SCTEC_PEERS: env.SCTEC_PEERS.replaceAll("http://", "https://") };
    const tlsFiles = { SCTEC_TLS_CERT_FILE: "/tls/n1.pem", SCTEC_TLS_KEY_FILE: "/tls/n1-key.pem", SCTEC_TLS_CA_FILE: "/tls/ca.pem" };
    expect(loadNodeConfig([], env).tls).toBeUndefined();
    expect(loadNodeConfig([], { ...https, ...tlsFiles }).tls).toEqual({
      certFile: "/tls/n1.pem",
      keyFile: "/tls/n1-key.pem",
      caFile: "/tls/ca.pem",
    });
    expect(() => loadNodeConfig([], { ...https, SCTEC_TLS_CERT_FILE: "/tls/n1.pem" })).toThrow(
      /SCTEC_TLS_KEY_FILE \/ --tls-key-file: TLS needs the certificate, the key and the CA file/,
    );
    expect(() => loadNodeConfig([], { ...env, ...tlsFiles })).toThrow(/SCTEC_PEERS \/ --peers: n1 must be an https:\/\/ URL with TLS/);
    expect(() => loadNodeConfig([], https)).toThrow(/n1 must be an http:\/\/ URL without TLS/);
    expect(() => loadNodeConfig(["--listen", "0.0.0.0:7001"], env)).toThrow(
      /SCTEC_LISTEN \/ --listen: listens on 0.0.0.0, beyond loopback, without TLS: set SCTEC_TLS_CERT_FILE.*--insecure/,
    );
    expect(loadNodeConfig(["--listen", "0.0.0.0:7001", "--insecure"], env).insecure).toBe(true);
    // The peer port (the raft thread's) follows the same rule, and with TLS its URLs are wss://.
    expect(() => loadNodeConfig(["--raft-listen", "0.0.0.0:7101"], env)).toThrow(
      /SCTEC_RAFT_LISTEN \/ --raft-listen: listens on 0.0.0.0, beyond loopback, without TLS/,
    );
    expect([...loadNodeConfig([], env).raftPeerUrls.values()].every((url) => url.startsWith("ws://"))).toBe(true);
    expect([...loadNodeConfig([], { ...https, ...tlsFiles }).raftPeerUrls.values()].every((url) => url.startsWith("wss://"))).toBe(true);
    expect(loadNodeConfig([], { ...https, ...tlsFiles, SCTEC_LISTEN: "0.0.0.0:7001" }).listen.host).toBe("0.0.0.0");
  });
});
