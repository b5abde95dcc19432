// `npm run compose:secrets`: the files docker-compose.yml mounts as Docker secrets, made once under
// ./docker/secrets (or --out DIR, which the compose file reads from SCTEC_SECRETS_DIR): a local CA
// and a certificate per node (node1..node5) and for the schedulers (also valid as `lb`, the load
// balancer, which serves it), the cluster secret, the bootstrap admin token, and an empty
// `scheduler_token`, which the booking API's own `locker` token replaces once the nodes run:
//
//   npm run compose:secrets
//   docker compose up -d node1 node2 node3
//   npm run cli -- --nodes https://127.0.0.1:7001 --ca-file docker/secrets/ca.pem \
//     --api-token-file docker/secrets/admin_token \
//     credential create scheduler --role locker --token-out docker/secrets/scheduler_token
//   docker compose up -d --scale scheduler=3
//
// (`npm run demo:compose` does all of this itself, in a directory of its own.) What exists is kept.
//
// Compose without Swarm mounts a secret file as it is on the host, owner and mode included, and the
// image's processes run as the user `node` (uid 1000). So, run as root, this makes every key and
// token owned by uid 1000 with mode 0600; run as another user, it cannot, and makes them 0644
// inside a directory only its owner may enter (0700). Either way only the containers and the
// directory's owner can read them.

import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { makeCertificates } from "../harness/certificates.ts";

/** containerUid: the image's `node` user (Dockerfile `USER node`; uid 1000 in the official and the offline-built base images). */
const containerUid = 1000;

/** composeNodes and composeSchedulers: the names docker-compose.yml gives them (hostnames and member ids). */
export const composeNodes = ["node1", "node2", "node3", "node4", "node5"] as const;

/** makeComposeSecrets makes what is missing in `out` and returns the paths of the CA and the token files. */
export async function makeComposeSecrets(
  out: string,
  log: (line: string) => void,
): Promise<{ ca: string; adminToken: string; schedulerToken: string }> {
  mkdirSync(out, { recursive: true, mode: 0o700 });
  chmodSync(out, 0o700);
  const { ca, files } = await makeCertificates({
    out,
    nodes: [...composeNodes],
    schedulers: ["scheduler"],
    hosts: ["lb"],
    renew: [],
    force: false,
    log,
  });
  const tokens = {
    cluster_secret: randomBytes(32).toString("hex"),
    admin_token: randomBytes(32).toString("hex"),
    scheduler_token: "", // The booking API's credential, made through the running cluster.
  };
  for (const [name, value] of Object.entries(tokens)) {
    const path = join(out, name);
    if (existsSync(path)) continue;
    writeFileSync(path, value, { mode: 0o600 });
    log(`${name}: made ${path}${value === "" ? " (empty until the scheduler's credential is made)" : ""}`);
  }
  const secretFiles = [...[...files.values()].map((pair) => pair.key), ...Object.keys(tokens).map((name) => join(out, name))];
  for (const path of secretFiles) handToContainers(path);
  return { ca, adminToken: join(out, "admin_token"), schedulerToken: join(out, "scheduler_token") };
}

/** handToContainers makes a key or token readable by the containers' user, and by no one else that does not own the directory. */
export function handToContainers(path: string): void {
  if (process.getuid?.() === 0) {
    chownSync(path, containerUid, containerUid);
    chmodSync(path, 0o600);
  } else {
    chmodSync(path, 0o644);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const out = resolve(values.out ?? "docker/secrets");
  await makeComposeSecrets(out, (line) => console.log(line));
  console.log(`done: ${out}${values.out === undefined ? "" : ` (export SCTEC_SECRETS_DIR=${out} for docker compose)`}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]).endsWith(join("scripts", "compose-secrets.ts"))) {
  main().catch((error: unknown) => {
    console.error(`compose:secrets: ${(error as Error).message}`);
    process.exit(1);
  });
}
