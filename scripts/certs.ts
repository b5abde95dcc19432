// `npm run certs`: a local CA and a certificate per lock node and booking API, as PEM files, for
// running SCTEC over TLS (`npm start -- --tls` makes them itself; docker-compose.yml mounts them as
// Docker secrets). Keys are written readable by their owner only.
//
//   npm run certs                                  ./data/tls: ca.pem, n1..n3, scheduler
//   npm run certs -- --out DIR --nodes node1,node2 --schedulers scheduler --hosts lb
//   npm run certs -- --renew n2                    a new certificate for n2 from the same CA (then SIGHUP n2)
//   npm run certs -- --force                       a new CA and new certificates for everything
//
// An existing CA is kept (and signs whatever is missing or renewed), so adding a node's certificate
// later does not invalidate the others. Each certificate is valid for its own name, `localhost`,
// 127.0.0.1 and every --hosts name; a node's names its member id (CN), which its peers check.

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { makeCertificates } from "../harness/certificates.ts";

function listOf(text: string | undefined, fallback: readonly string[]): string[] {
  if (text === undefined) return [...fallback];
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      nodes: { type: "string" },
      schedulers: { type: "string" },
      hosts: { type: "string" },
      renew: { type: "string" },
      force: { type: "boolean" },
    },
  });
  const names = [...listOf(values.nodes, ["n1", "n2", "n3"]), ...listOf(values.schedulers, ["scheduler"])];
  const bad = names.filter((name) => !/^[a-z0-9][a-z0-9-]{0,31}$/.test(name));
  if (bad.length > 0) throw new TypeError(`names are 1 to 32 lower-case letters, digits and dashes: ${bad.join(", ")}`);
  const out = resolve(values.out ?? "data/tls");
  await makeCertificates({
    out,
    nodes: listOf(values.nodes, ["n1", "n2", "n3"]),
    schedulers: listOf(values.schedulers, ["scheduler"]),
    hosts: listOf(values.hosts, []),
    renew: listOf(values.renew, []),
    force: values.force === true,
    log: (line) => console.log(line),
  });
  console.log(`done: ${out}`);
}

main().catch((error: unknown) => {
  console.error(`certs: ${(error as Error).message}`);
  process.exit(error instanceof TypeError ? 2 : 1);
});
