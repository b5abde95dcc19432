// `sctec` (npm run cli -- …): what etcdctl does for etcd, for this cluster. Every command prints
// JSON on stdout; errors print `error <code>: <message>` on stderr and exit 1 (2 for bad usage).
//
//   status [--node URL]            a node's view: role, term, leader, indexes, members
//   members                        voters and learners, as the leader sees them
//   leases                         the current leases (linearizable)
//   lock RESOURCE... [--ttl MS] [--wait MS] [--hold MS]
//                                  acquire (all or none), print the token, hold (renewing) then release
//   unlock RESOURCE... --token T   release a lease
//   renew RESOURCE... --token T    renew a lease
//   get KEY | range PREFIX         read keys (linearizable)
//   put KEY VALUE --lease RESOURCE:TOKEN
//                                  a fenced write under a lease
//   transfer NODE_ID [--timeout MS]
//                                  hand leadership to NODE_ID and wait until it leads
//   member add|promote|remove NODE_ID
//   credential create NAME --role reader|locker|admin
//   credential list | rotate NAME | revoke NAME
//   whoami                         the credential and role of the token in use
//   restart NODE_URL               restart one node (graceful; its supervisor starts it again)
//   rolling-restart [--timeout MS] restart every member in turn, the leader last, each caught up
//                                  before the next (progress on stderr, the report on stdout)
//
// Connection: --nodes URL,URL (or SCTEC_NODES), --api-token (or SCTEC_API_TOKEN), or the token's
// file: --api-token-file (or SCTEC_API_TOKEN_FILE), which keeps it out of the shell's history;
// https:// nodes with a private CA: --ca-file (or SCTEC_CA_FILE).

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { MemberRequest } from "../protocol/api.ts";
import { LockClient, LockError } from "./lock-client.ts";
import { RollingRestartError, rollingRestart } from "./rolling-restart.ts";
import { TransferLeadershipError, transferLeadership } from "./transfer-leadership.ts";

const usage = `usage: sctec [--nodes URL,…] [--api-token T] <status|members|leases|lock|unlock|renew|get|range|put|transfer|member|restart|rolling-restart|credential|whoami> …`;

const help = `sctec: the SCTEC lock cluster from the shell. Every command prints JSON on stdout; errors print
"error <code>: <message>" on stderr and exit 1 (2 for bad usage).

${usage}

commands:
  status [--node URL]            a node's view: role, term, leader, indexes, members
  members                        voters and learners, as the leader sees them
  leases                         the current leases (linearizable)
  lock RESOURCE... [--ttl MS] [--wait MS] [--hold MS]
                                 acquire (all or none), print the token; with --hold, keep it
                                 (renewing) that long, then release
  unlock RESOURCE... --token T   release a lease
  renew RESOURCE... --token T    renew a lease
  get KEY                        read one key (linearizable)
  range PREFIX                   read every key under PREFIX (linearizable)
  put KEY VALUE --lease RESOURCE:TOKEN
                                 a fenced write under a lease
  transfer NODE_ID [--timeout MS] hand leadership to NODE_ID and wait until it leads (asking
                                 again each second: the leader abandons a transfer its
                                 transferee cannot finish within an election timeout); at most
                                 MS, default 10000; exit 1 if it does not lead by then
  member add|promote|remove NODE_ID
                                 change the membership, one server at a time
  restart NODE_URL               restart one node: it stops gracefully (a leader hands its
                                 leadership over first) and its supervisor starts it again
                                 (npm start, compose, systemd; without one it just stops)
  rolling-restart [--timeout MS] restart every member in turn, followers first and the leader
                                 last, waiting for each to come back and catch up (at most MS
                                 each, default 60000) before the next; --nodes must reach every
                                 member. Progress on stderr, a JSON report on stdout
  credential create NAME --role reader|locker|admin [--token-out FILE]
                                 a new credential; prints its token, which is shown this once
                                 (with --token-out, writes it to FILE instead: a Docker secret)
  credential list                every credential: name, role, when created and issued (no tokens)
  credential rotate NAME [--token-out FILE]
                                 a new token for NAME (printed once); the old one is refused at once
  credential revoke NAME         NAME's token is refused by every node from now on
  whoami                         the credential and role of the token in use

roles: reader (reads, watch, leases), locker (also lock, unlock, renew, put),
       admin (also transfer, member, restart, rolling-restart, credential);
       credential, restart and rolling-restart need an admin token

connection:
  --nodes URL,URL                lock nodes (or SCTEC_NODES; default http://127.0.0.1:7001,7002,7003)
  --api-token T                  the cluster's API token (or SCTEC_API_TOKEN; npm start prints it)
  --api-token-file PATH          read the token from a file instead (or SCTEC_API_TOKEN_FILE)
  --ca-file PATH                 the CA of https:// nodes (or SCTEC_CA_FILE; npm start -- --tls: data/tls/ca.pem)
  -h, --help                     this text
`;

function fail(message: string, exitCode: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(exitCode);
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function integerOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) fail(`--${name} must be a non-negative integer, got "${value}"`, 2);
  return parsed;
}

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      nodes: { type: "string" },
      "api-token": { type: "string" },
      "api-token-file": { type: "string" },
      "ca-file": { type: "string" },
      node: { type: "string" },
      ttl: { type: "string" },
      wait: { type: "string" },
      hold: { type: "string" },
      token: { type: "string" },
      lease: { type: "string" },
      role: { type: "string" },
      "token-out": { type: "string" },
      timeout: { type: "string" },
    },
  });
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (error) {
    // parseArgs refuses unknown options and missing values with a TypeError: that is bad usage, not a crash.
    fail(`${(error as Error).message}\n${usage}\n(sctec --help for every command)`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help === true || positionals[0] === "help") {
    process.stdout.write(help);
    return;
  }
  const [command, ...args] = positionals;
  if (command === undefined) fail(`${usage}\n(sctec --help for every command)`, 2);
  const nodes = (values.nodes ?? process.env["SCTEC_NODES"] ?? "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003").split(
    ",",
  );
  const apiToken = apiTokenOf(values);
  const caFile = values["ca-file"] ?? process.env["SCTEC_CA_FILE"];
  let ca: string | undefined;
  try {
    ca = caFile === undefined ? undefined : readFileSync(caFile, "utf8");
  } catch (error) {
    fail(`cannot read the CA file ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
  }
  const client = new LockClient({ nodes, apiToken, retriesMax: 4, ...(ca === undefined ? {} : { tls: { ca } }) });
  switch (command) {
    case "status":
      print(await client.status(values.node));
      return;
    case "members": {
      const status = await client.status(values.node);
      print({ leader: status.leaderId, voters: status.voters, learners: status.learners, progress: status.progress });
      return;
    }
    case "leases":
      print(await client.leases());
      return;
    case "lock":
      await lock(client, args, values);
      return;
    case "unlock":
    case "renew": {
      if (args.length === 0 || values.token === undefined) fail(`usage: sctec ${command} RESOURCE... --token T`, 2);
      print((await client.mutate(command === "unlock" ? "/unlock" : "/renew", { resources: args, token: values.token })).body);
      return;
    }
    case "get": {
      if (args[0] === undefined) fail("usage: sctec get KEY", 2);
      const value = await client.get(args[0]);
      if (value === undefined) fail(`error not_found: no key ${args[0]}`, 1);
      print(value);
      return;
    }
    case "range": {
      // Every page: the keys run in order, so the last key of a page is where the next one starts.
      const items = [];
      let page = await client.range(args[0] ?? "", { limit: 1000 });
      items.push(...page.items);
      while (page.more) {
        page = await client.range(args[0] ?? "", { limit: 1000, after: page.items.at(-1)?.key ?? "" });
        items.push(...page.items);
      }
      print(items);
      return;
    }
    case "put": {
      const [key, value] = args;
      const [resource, token] = (values.lease ?? "").split(":");
      if (key === undefined || value === undefined || !resource || !token) fail("usage: sctec put KEY VALUE --lease RESOURCE:TOKEN", 2);
      print((await client.mutate("/txn", { guards: [{ resource, token }], operations: [{ op: "put", key, value }] })).body);
      return;
    }
    case "transfer": {
      if (args[0] === undefined) fail("usage: sctec transfer NODE_ID [--timeout MS]", 2);
      const timeoutMs = integerOption(values.timeout, "timeout", 10_000);
      if (timeoutMs === 0) fail("--timeout must be at least 1 ms", 2);
      try {
        print(await transferLeadership({ client, nodes, to: args[0], timeoutMs }));
      } catch (error) {
        if (error instanceof TransferLeadershipError) fail(`error ${error.code}: ${error.message}`, 1);
        throw error;
      }
      return;
    }
    case "member": {
      const actions = new Map<string, MemberRequest["action"]>([
        ["add", "add_learner"],
        ["promote", "promote_learner"],
        ["remove", "remove_node"],
      ]);
      const action = actions.get(args[0] ?? "");
      if (action === undefined || args[1] === undefined) fail("usage: sctec member add|promote|remove NODE_ID", 2);
      print(await client.admin("/admin/members", { action, nodeId: args[1] }));
      return;
    }
    case "credential":
      await credential(client, args, values.role, values["token-out"]);
      return;
    case "whoami":
      print(await client.whoami());
      return;
    case "restart":
      if (args[0] === undefined) fail("usage: sctec restart NODE_URL", 2);
      print(await client.restartNode(args[0]));
      return;
    case "rolling-restart": {
      const timeoutMs = integerOption(values.timeout, "timeout", 60_000);
      try {
        print(
          await rollingRestart({
            client,
            nodes,
            restartTimeoutMs: timeoutMs,
            catchUpTimeoutMs: timeoutMs,
            onProgress: (message) => process.stderr.write(`${message}\n`),
          }),
        );
      } catch (error) {
        if (error instanceof RollingRestartError) fail(`error ${error.code}: ${error.message}`, 1);
        throw error;
      }
      return;
    }
    default:
      fail(`unknown command "${command}"\n${usage}`, 2);
  }
}

/** credential creates, lists, rotates or revokes a credential; a new token goes to stdout once, with a warning to keep it on stderr. */
async function credential(client: LockClient, args: string[], role: string | undefined, tokenOut: string | undefined): Promise<void> {
  const [action, name] = args;
  const roles = ["reader", "locker", "admin"] as const;
  const shownOnce = () => process.stderr.write("the token is shown this once: store it now (the cluster keeps only its hash)\n");
  /** issued prints a new credential; with --token-out its token goes to that file instead (an existing file keeps its owner and mode). */
  const issued = (answer: { token: string }) => {
    if (tokenOut === undefined) {
      print(answer);
      shownOnce();
      return;
    }
    const { token, ...rest } = answer;
    writeFileSync(tokenOut, token, existsSync(tokenOut) ? {} : { mode: 0o600 });
    print({ ...rest, tokenFile: tokenOut });
  };
  switch (action) {
    case "create": {
      const chosen = roles.find((each) => each === role);
      if (name === undefined || chosen === undefined)
        fail("usage: sctec credential create NAME --role reader|locker|admin [--token-out FILE]", 2);
      issued(await client.createCredential({ name, role: chosen }));
      return;
    }
    case "list":
      print(await client.listCredentials());
      return;
    case "rotate":
      if (name === undefined) fail("usage: sctec credential rotate NAME [--token-out FILE]", 2);
      issued(await client.rotateCredential(name));
      return;
    case "revoke":
      if (name === undefined) fail("usage: sctec credential revoke NAME", 2);
      print(await client.revokeCredential(name));
      return;
    default:
      fail("usage: sctec credential create|list|rotate|revoke …", 2);
  }
}

/**
 * apiTokenOf reads the token: a flag (the value or its file) beats the environment (likewise);
 * a value and its file at the same level are refused, as the node and scheduler refuse them.
 */
function apiTokenOf(values: { "api-token"?: string | undefined; "api-token-file"?: string | undefined }): string {
  const levels = [
    { value: values["api-token"], file: values["api-token-file"], names: "--api-token and --api-token-file" },
    { value: process.env["SCTEC_API_TOKEN"], file: process.env["SCTEC_API_TOKEN_FILE"], names: "SCTEC_API_TOKEN and SCTEC_API_TOKEN_FILE" },
  ];
  for (const level of levels) {
    if (level.value !== undefined && level.file !== undefined) fail(`${level.names}: give the token or its file, not both`, 2);
    let token = level.value;
    if (level.file !== undefined) {
      try {
        token = readFileSync(level.file, "utf8").replace(/[\r\n]+$/, "");
      } catch (error) {
        fail(`cannot read the API token file ${level.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
      }
    }
    if (token !== undefined && token.length > 0) return token;
  }
  return fail("an API token is needed: --api-token(-file) or SCTEC_API_TOKEN(_FILE) (npm start prints it)", 2);
}

async function lock(
  client: LockClient,
  resources: string[],
  values: { ttl?: string | undefined; wait?: string | undefined; hold?: string | undefined },
): Promise<void> {
  if (resources.length === 0) fail("usage: sctec lock RESOURCE... [--ttl MS] [--wait MS] [--hold MS]", 2);
  const ttlMs = integerOption(values.ttl, "ttl", 10_000);
  const holdMs = integerOption(values.hold, "hold", 0);
  const lease = await client.acquire(resources, { ttlMs, waitMs: integerOption(values.wait, "wait", 0), autoRenew: holdMs > 0 });
  print({ resources: lease.resources, token: lease.token, ttlMs: lease.ttlMs });
  if (holdMs === 0) return; // Leave it held: it expires after its TTL unless unlocked.
  lease.on("jeopardy", (error) => process.stderr.write(`lease in jeopardy: ${error?.message ?? "renewals are failing"}\n`));
  lease.on("safe", () => process.stderr.write("lease safe again: a renewal succeeded\n"));
  // Holding ends at --hold, at Ctrl-C, or at once when the lease is lost (exit 1: it was not held to the end).
  const ended = await new Promise<"held" | "lost">((resolve) => {
    const timer = setTimeout(() => resolve("held"), holdMs);
    process.once("SIGINT", () => {
      clearTimeout(timer);
      resolve("held");
    });
    lease.on("lost", (error) => {
      clearTimeout(timer);
      process.stderr.write(`lease lost: ${error?.message ?? "expired"}\n`);
      resolve("lost");
    });
  });
  await lease.release().catch((error: unknown) => {
    if (ended === "held") throw error; // A lost lease's release may find it gone already.
  });
  if (ended === "lost") fail(`error lease_expired: lost the lease on ${lease.resources.join(", ")} before --hold ended`, 1);
  print({ released: lease.resources, token: lease.token });
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof LockError) fail(`error ${error.code}: ${error.message}`, 1);
  fail(`error: ${(error as Error).stack ?? String(error)}`, 1);
});
