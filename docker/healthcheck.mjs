// The image's health check (Dockerfile HEALTHCHECK): GET /healthz on the port this container's
// process serves, a lock node's (SCTEC_LISTEN) or a scheduler's (SCHEDULER_LISTEN). Healthy on a
// 200 within 2 s: a node answers as soon as it serves; a scheduler once it reaches the lock cluster.
// Over HTTPS when the process serves TLS (its CA file is set), checking the certificate against it.
import { readFileSync } from "node:fs";
import { get } from "node:https";

const listen = process.env.SCTEC_LISTEN ?? process.env.SCHEDULER_LISTEN ?? "0.0.0.0:7000";
const port = listen.slice(listen.lastIndexOf(":") + 1);
const caFile = process.env.SCTEC_LISTEN === undefined ? process.env.SCHEDULER_TLS_CA_FILE : process.env.SCTEC_TLS_CA_FILE;
const servesTls = process.env.SCTEC_LISTEN === undefined ? process.env.SCHEDULER_TLS_CERT_FILE !== undefined : caFile !== undefined;
if (!servesTls) {
  fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
    (response) => process.exit(response.ok ? 0 : 1),
    () => process.exit(1),
  );
} else {
  const request = get(
    { host: "127.0.0.1", port: Number(port), path: "/healthz", ca: readFileSync(caFile, "utf8"), timeout: 2000 },
    (response) => {
      response.resume();
      process.exit(response.statusCode === 200 ? 0 : 1);
    },
  );
  request.on("error", () => process.exit(1));
  request.on("timeout", () => request.destroy());
}
