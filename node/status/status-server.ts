// createNodeFront puts the node's open observability routes in front of its API: the status page
// at `/` (files in status-page/), its view as JSON (GET /status/view), and GET /metrics; every
// other request goes on to the API (http-api.ts), which keeps /status, /healthz and the rest.
// Every request, API or not, is counted and timed by route for /metrics.

import { fileURLToPath } from "node:url";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import type { FrontMetrics } from "../front-metrics.ts";
import type { StatusFeed } from "./status-feed.ts";

export const statusPageRoot = fileURLToPath(new URL("./page/", import.meta.url));

export interface NodeFrontOptions {
  readonly api: express.Express;
  readonly metrics: FrontMetrics;
  readonly feed: StatusFeed;
  readonly logger: Logger;
}

export function createNodeFront(options: NodeFrontOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(options.metrics.httpMiddleware());
  app.get("/", (_request: Request, response: Response) => {
    response.sendFile("index.html", { root: statusPageRoot, headers: { "cache-control": "no-cache" } });
  });
  // Browsers ask for /favicon.ico on their own (a page opened directly, /metrics): answer "none"
  // here, before the API, which would refuse it with a 401 for want of a token.
  app.get("/favicon.ico", (_request: Request, response: Response) => {
    response.status(204).setHeader("cache-control", "max-age=86400").end();
  });
  app.use("/status-page", express.static(statusPageRoot, { index: false, maxAge: 0, fallthrough: true }));
  app.get("/status/view", async (_request: Request, response: Response, next: NextFunction) => {
    try {
      const view = await options.feed.view();
      response.setHeader("cache-control", "no-store");
      response.json(view);
    } catch (error) {
      next(error);
    }
  });
  app.get("/metrics", async (_request: Request, response: Response, next: NextFunction) => {
    try {
      const text = await options.metrics.text();
      response.setHeader("content-type", options.metrics.contentType);
      response.setHeader("cache-control", "no-store");
      response.send(text);
    } catch (error) {
      options.logger.error({ err: error }, "metrics could not be rendered");
      next(error);
    }
  });
  app.use(options.api);
  return app;
}
