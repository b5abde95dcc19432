// The image's health check (Dockerfile HEALTHCHECK): GET /healthz on the port this container's
// process serves, a lock node's (SCTEC_LISTEN) or a scheduler's (SCHEDULER_LISTEN). Healthy on a
// 200 within 2 s: a node answers as soon as it serves; a scheduler once it reaches the lock cluster.
const listen = process.env.SCTEC_LISTEN ?? process.env.SCHEDULER_LISTEN ?? "0.0.0.0:7000";
const port = listen.slice(listen.lastIndexOf(":") + 1);
fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  () => process.exit(1),
);
