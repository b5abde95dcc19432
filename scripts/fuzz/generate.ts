// Request generation: request N of a run is a pure function of (seed, N, fixtures). A template
// (targets.ts) builds a valid request; then it goes out as it is, or spoiled in one way: one field
// replaced, dropped or added, the whole body replaced, odd headers, an odd path, another method,
// or written as raw bytes. Credentials vary on their own axis: valid, none, or wrong in one of
// several ways, so every endpoint is tried with and without them.

import { type Built, type Fixtures, nodeTemplates, rawTemplates, schedulerTemplates, type Template } from "./targets.ts";
import { hostileBodyText, hostileString, hostileValue, Rng } from "./values.ts";

/** FuzzRequest is one request to send: an HTTP request, or raw bytes. */
export interface FuzzRequest {
  readonly index: number;
  /** endpoint names the row in the table: service, method and route (or the raw request's name). */
  readonly endpoint: string;
  /** mutation says how the valid request was spoiled ("valid" when it was not). */
  readonly mutation: string;
  /** credentials says what the Authorization header holds. */
  readonly credentials: string;
  /** baseUrl: the node or booking API it goes to. */
  readonly baseUrl: string;
  readonly service: "node" | "scheduler";
  readonly method: string;
  /** path: the path and query, encoded as sent. */
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string | Uint8Array | undefined;
  /** raw: bytes to write to a socket instead (the method, path and headers above are then for the record only). */
  readonly raw?: { readonly bytes: string | Uint8Array; readonly halfClose: boolean };
}

const allTemplates: readonly Template[] = [...nodeTemplates, ...schedulerTemplates];

/** isPlainAscii: only printable ASCII (a value that can stand in a request line as it is). */
export function isPlainAscii(text: string): boolean {
  for (let position = 0; position < text.length; position++) {
    const code = text.charCodeAt(position);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return true;
}

/** encodeComponent percent-encodes a string's UTF-8 bytes (lone surrogates become U+FFFD), and never throws. */
export function encodeComponent(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const character = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(character) ? character : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function pathOf(route: string, params: Readonly<Record<string, string>> | undefined, raw: ReadonlySet<string>): string {
  return route.replace(/:(\w+)/g, (_match, name: string) => {
    const value = params?.[name] ?? "";
    return raw.has(name) ? value : encodeComponent(value);
  });
}

function queryOf(query: Readonly<Record<string, unknown>> | undefined): string {
  if (query === undefined) return "";
  const parts = Object.entries(query).map(
    ([name, value]) => `${encodeComponent(name)}=${encodeComponent(typeof value === "string" ? value : (JSON.stringify(value) ?? ""))}`,
  );
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

/** leafPaths lists the paths to every value in a JSON body (objects and arrays, a few levels deep). */
function leafPaths(value: unknown, prefix: (string | number)[] = [], depth = 0): (string | number)[][] {
  if (depth > 3 || typeof value !== "object" || value === null) return [prefix];
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((item, position) => [position, item])
    : Object.entries(value);
  const inner = entries.flatMap(([key, item]) => leafPaths(item, [...prefix, key], depth + 1));
  return prefix.length === 0 ? inner : [prefix, ...inner];
}

/** withValue returns a copy of `root` with the value at `path` replaced (undefined deletes it). */
function withValue(root: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(root)) {
    const copy = [...root];
    if (value === undefined && rest.length === 0) copy.splice(Number(head), 1);
    else copy[Number(head)] = withValue(copy[Number(head)], rest, value);
    return copy;
  }
  const copy: Record<string, unknown> = { ...(root as Record<string, unknown>) };
  if (value === undefined && rest.length === 0) delete copy[String(head)];
  else copy[String(head)] = withValue(copy[String(head)], rest, value);
  return copy;
}

interface Shaped {
  method: string;
  route: string;
  params: Record<string, string>;
  rawParams: Set<string>;
  query: Record<string, unknown> | undefined;
  body: unknown;
  bodyText: string | undefined;
  headers: [string, string][];
  pathSuffix: string;
  pathOverride: string | undefined;
}

const odd = {
  contentTypes: [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin1",
    "application/json; charset=utf-16",
    "APPLICATION/JSON",
    "application/json-patch+json",
    "application/jsonx",
    "*/*",
    "",
  ],
  encodings: ["gzip", "deflate", "br", "identity", "x-unknown", "gzip, gzip"],
  methods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "PROPFIND"],
};

/** mutate spoils the valid request in one way and says how. */
function mutate(rng: Rng, template: Template, shaped: Shaped): string {
  const kind = rng.weighted<string>([
    [22, "valid"],
    [30, "field"],
    [5, "drop"],
    [5, "add"],
    [9, "body"],
    [12, "header"],
    [9, "path"],
    [8, "method"],
  ]);
  switch (kind) {
    case "field": {
      const targets: [string, () => void][] = [];
      for (const path of shaped.body === undefined ? [] : leafPaths(shaped.body)) {
        targets.push([`body.${path.join(".")}`, () => (shaped.body = withValue(shaped.body, path, hostileValue(rng)))]);
      }
      for (const name of Object.keys(shaped.query ?? {})) {
        targets.push([`query.${name}`, () => (shaped.query = { ...shaped.query, [name]: hostileString(rng) })]);
      }
      for (const name of Object.keys(shaped.params)) {
        targets.push([
          `param.${name}`,
          () => {
            const value = hostileString(rng);
            // Sometimes as written, so %-sequences and slashes reach the router undecoded.
            if (rng.chance(0.3) && isPlainAscii(value) && !/[\s?#]/.test(value)) shaped.rawParams.add(name);
            shaped.params[name] = value;
          },
        ]);
      }
      if (targets.length === 0) return mutateQueryAdd(rng, shaped);
      const [name, apply] = rng.pick(targets);
      apply();
      return `field ${name}`;
    }
    case "drop": {
      const paths = shaped.body === undefined ? [] : leafPaths(shaped.body);
      if (paths.length === 0) return mutateQueryAdd(rng, shaped);
      const path = rng.pick(paths);
      shaped.body = withValue(shaped.body, path, undefined);
      return `drop body.${path.join(".")}`;
    }
    case "add": {
      if (shaped.body === undefined || typeof shaped.body !== "object" || shaped.body === null) return mutateQueryAdd(rng, shaped);
      const name = hostileString(rng).slice(0, 64);
      shaped.body = { ...(shaped.body as Record<string, unknown>), [name]: hostileValue(rng) };
      return "add body field";
    }
    case "body": {
      if (rng.chance(0.5)) shaped.body = hostileValue(rng);
      else shaped.bodyText = hostileBodyText(rng);
      if (!shaped.headers.some(([name]) => name === "content-type")) shaped.headers.push(["content-type", "application/json"]);
      return "body replaced";
    }
    case "header": {
      const which = rng.pick([
        "content-type",
        "content-encoding",
        "x-request-id",
        "x-sctec-forwarded",
        "idempotency-key",
        "accept",
        "x-forwarded-for",
        "origin",
      ]);
      const value =
        which === "content-type"
          ? rng.pick(odd.contentTypes)
          : which === "content-encoding"
            ? rng.pick(odd.encodings)
            : which === "x-sctec-forwarded"
              ? rng.pick(["n1", "n2", "n3", "1", "true", "n1:AAAA", hostileString(rng)])
              : hostileString(rng);
      shaped.headers = shaped.headers.filter(([name]) => name !== which);
      shaped.headers.push([which, value]);
      if (which === "content-encoding" && shaped.body === undefined) shaped.bodyText = "{}";
      return `header ${which}`;
    }
    case "path": {
      const how = rng.pick([
        "trailing slash",
        "double slash",
        "upper case",
        "dot segments",
        "encoded slash",
        "unknown",
        "matrix",
        "duplicate query",
        "long query",
        "fragment",
      ]);
      const route = shaped.route;
      if (how === "trailing slash") shaped.pathSuffix = "/";
      else if (how === "double slash") shaped.pathOverride = `/${pathOf(route, shaped.params, shaped.rawParams)}`;
      else if (how === "upper case") shaped.pathOverride = pathOf(route, shaped.params, shaped.rawParams).toUpperCase();
      else if (how === "dot segments") shaped.pathOverride = `/x/..${pathOf(route, shaped.params, shaped.rawParams)}/./`;
      else if (how === "encoded slash") shaped.pathOverride = pathOf(route, shaped.params, shaped.rawParams).replaceAll("/", "%2F");
      else if (how === "unknown")
        shaped.pathOverride = `${pathOf(route, shaped.params, shaped.rawParams)}/${encodeComponent(hostileString(rng)).slice(0, 300)}`;
      else if (how === "matrix") shaped.pathSuffix = ";jsessionid=1";
      else if (how === "duplicate query") shaped.pathSuffix = `${shaped.query === undefined ? "?" : "&"}limit=1&limit=2&limit=x`;
      else if (how === "long query") shaped.pathSuffix = `${shaped.query === undefined ? "?" : "&"}q=${"q".repeat(rng.pick([2000, 9000]))}`;
      else shaped.pathSuffix = "#fragment";
      return `path ${how}`;
    }
    case "method": {
      const method = rng.pick(odd.methods.filter((candidate) => candidate !== template.method));
      shaped.method = method;
      return `method ${method}`;
    }
    default:
      return "valid";
  }
}

function mutateQueryAdd(rng: Rng, shaped: Shaped): string {
  shaped.query = { ...shaped.query, [hostileString(rng).slice(0, 40) || "x"]: hostileString(rng) };
  return "add query parameter";
}

/** credentialsFor draws the Authorization header: valid, none, or one of the ways it can be wrong. */
function credentialsFor(rng: Rng, template: Template, fixtures: Fixtures): { label: string; value: string | undefined } {
  const valid =
    template.credentials === "node" ? fixtures.nodeToken : template.credentials === "scientist" ? fixtures.scientist.key : undefined;
  const other = template.service === "node" ? fixtures.scientist.key : fixtures.nodeToken;
  const kind = rng.weighted<string>([
    [valid === undefined ? 4 : 75, "valid"],
    [12, "none"],
    [13, "wrong"],
  ]);
  if (kind === "none") return { label: "none", value: undefined };
  const secret = valid ?? other;
  if (kind === "valid") return valid === undefined ? { label: "none", value: undefined } : { label: "valid", value: `Bearer ${valid}` };
  const wrong = rng.pick<[string, string]>([
    ["wrong token", `Bearer ${"0".repeat(secret.length)}`],
    ["other service's token", `Bearer ${other}`],
    ["lower-case scheme", `bearer ${secret}`],
    ["two spaces", `Bearer  ${secret}`],
    ["no scheme", secret],
    ["basic", `Basic ${Buffer.from(`x:${secret}`).toString("base64")}`],
    ["scheme only", "Bearer"],
    ["token with suffix", `Bearer ${secret}x`],
    ["token cut short", `Bearer ${secret.slice(0, -1)}`],
    ["tab inside", `Bearer ${secret.slice(0, 4)}\t${secret.slice(4)}`],
    ["hostile", `Bearer ${hostileString(rng)}`],
  ]);
  return { label: wrong[0], value: wrong[1] };
}

/** generate builds request `index` of the run seeded with `seed`. */
export function generate(seed: number, index: number, fixtures: Fixtures, rawShare = 0.04): FuzzRequest {
  const rng = Rng.forRequest(seed, index);
  if (rng.chance(rawShare)) return generateRaw(rng, index, fixtures);
  const template = rng.weighted(allTemplates.map((candidate) => [candidate.weight ?? 1, candidate] as const));
  const built: Built = template.build(rng, fixtures);
  const node = rng.pick(fixtures.nodes);
  const baseUrl = template.service === "node" ? node.url : fixtures.schedulerUrl;
  const shaped: Shaped = {
    method: template.method,
    route: template.route,
    params: { ...built.params },
    rawParams: new Set(),
    query: built.query === undefined ? undefined : { ...built.query },
    body: built.body,
    bodyText: undefined,
    headers: Object.entries(built.headers ?? {}).map(([name, value]) => [name, value]),
    pathSuffix: "",
    pathOverride: undefined,
  };
  if (built.body !== undefined) shaped.headers.push(["content-type", "application/json"]);
  const mutation = mutate(rng, template, shaped);
  if (template.tame !== undefined && shaped.body !== undefined) shaped.body = template.tame(shaped.body);
  const credentials = credentialsFor(rng, template, fixtures);
  if (credentials.value !== undefined) shaped.headers.push(["authorization", credentials.value]);
  const path =
    (shaped.pathOverride ?? `${pathOf(shaped.route, shaped.params, shaped.rawParams)}${queryOf(shaped.query)}`) + shaped.pathSuffix;
  const bodyText = shaped.bodyText ?? (shaped.body === undefined ? undefined : JSON.stringify(shaped.body));
  return {
    index,
    endpoint: `${template.service} ${template.method} ${template.route}`,
    mutation,
    credentials: credentials.label,
    baseUrl,
    service: template.service,
    method: shaped.method,
    path,
    headers: shaped.headers,
    body: bodyText,
  };
}

function generateRaw(rng: Rng, index: number, fixtures: Fixtures): FuzzRequest {
  const template = rng.pick(rawTemplates);
  const valid = template.service === "node" ? fixtures.nodeToken : fixtures.scientist.key;
  const credentials = rng.chance(0.8)
    ? { label: "valid", value: `Bearer ${valid}` }
    : { label: "wrong token", value: `Bearer ${"0".repeat(valid.length)}` };
  const baseUrl = template.service === "node" ? rng.pick(fixtures.nodes).url : fixtures.schedulerUrl;
  const bytes = template.build(rng, fixtures, credentials.value);
  return {
    index,
    endpoint: `${template.service} raw: ${template.name}`,
    mutation: "raw",
    credentials: credentials.label,
    baseUrl,
    service: template.service,
    method: "RAW",
    path: "",
    headers: [],
    body: undefined,
    raw: { bytes, halfClose: template.halfClose === true },
  };
}
