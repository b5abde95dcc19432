# One image for both processes: the lock node (the default command) and the scheduler
# (`node dist/scheduler/main.js`); docker-compose.yml runs both from it. docker/README.md says why
# it is built this way. No `# syntax=` line: under BuildKit it would pull a frontend image, and
# machines without a registry build with the classic builder (DOCKER_BUILDKIT=0).

# Build: every dependency (TypeScript among them), compile to dist/, then drop the dev dependencies.
FROM node:22-bookworm-slim AS build
# The classic builder leaves this stage behind as an untagged image; the label lets the demo prune it alone.
LABEL sctec.stage=build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the native modules (classic-level, msgpackr-extract) ship prebuilt binaries for
# linux-x64 and load them at run time; no install script needs to run (nor may one, unreviewed).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY protocol ./protocol
COPY config ./config
COPY raft ./raft
COPY lock ./lock
COPY node ./node
COPY client ./client
COPY scheduler ./scheduler
# The status page and the booking page are plain files that the processes serve from beside their code.
# The planted bugs come along only as types (raft/config.ts names them); their code stays out of the image.
RUN npx tsc -p tsconfig.build.json \
 && cp -r node/status/page dist/node/status/page \
 && mkdir -p dist/scheduler/web \
 && cp scheduler/web/*.html scheduler/web/*.css scheduler/web/*.js dist/scheduler/web/ \
 && rm -f dist/raft/planted-bugs.js* dist/lock/planted-bugs.js* \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# Run: Node, the production dependencies and the compiled code; no compiler, no tsx, no sources.
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
# /data: a lock node's LevelDB (an empty named volume mounted here takes this owner);
# /app/logs: a scheduler's app.log. Everything else is read-only to the process.
RUN mkdir -p /data /app/logs && chown node:node /data /app/logs
USER node
# 7000: a node's HTTP (SCTEC_LISTEN); 7100: its peers' Raft connections (the HTTP port + 100); 8080: a scheduler.
EXPOSE 7000 7100 8080
# GET /healthz on this process's own port (SCTEC_LISTEN for a node, SCHEDULER_LISTEN for a scheduler).
HEALTHCHECK --interval=2s --timeout=3s --start-period=10s --retries=10 CMD ["node", "docker/healthcheck.mjs"]
# Exec form: node gets SIGTERM itself (both processes stop cleanly on it); compose adds `init: true`.
CMD ["node", "--enable-source-maps", "dist/node/main.js"]
