// Scientists: registration (the API key is returned once and only its hash is stored) and
// authentication of `Authorization: Bearer sk_<id>_<secret>`. Registration takes a lease on the
// email, so two registrations of one address cannot both pass the uniqueness check.

import { randomBytes, timingSafeEqual } from "node:crypto";
import type { ClusterLease, ClusterPort } from "./cluster.ts";
import { ApiError, clusterError } from "./errors.ts";
import type { SchedulerLogger as Logger } from "./logging.ts";
import { type AuditRecord, keys, type Scientist, sha256Hex } from "./records.ts";

const apiKeyPattern = /^sk_(sci_[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
/** scientistIdPattern: the ids register() makes. Anything else names no scientist, and is not looked up. */
const scientistIdPattern = /^sci_[0-9a-f]{12}$/;

export interface ScientistsOptions {
  readonly cluster: ClusterPort;
  readonly serviceName: string;
  readonly leaseTtlMs: number;
  readonly nowMs: () => number;
  /** cachedMax bounds the cache of scientist records (they never change once written). */
  readonly cachedMax: number;
}

export class Scientists {
  private readonly options: ScientistsOptions;
  private readonly cache = new Map<string, Scientist>();

  constructor(options: ScientistsOptions) {
    this.options = options;
  }

  /**
   * register makes a scientist and their API key: the key is answered once, and only its hash is
   * stored. Under a lease on the email, it checks that no scientist has the email yet, then writes
   * the scientist, the email's index and the audit record in one fenced txn that ends the lease.
   */
  async register(
    input: { name: string; email: string; institution?: string | undefined },
    log: Logger,
    requestId: string,
  ): Promise<{ scientist: Scientist; apiKey: string; order: number }> {
    const { scientist, secret } = this.newScientist(input);
    const lease = await this.takeEmailLease(scientist.email, requestId);
    let released = false;
    try {
      const existing = await this.options.cluster.get(keys.scientistEmail(scientist.email), requestId);
      if (existing !== undefined) throw new ApiError("email_taken", `a scientist with the email ${scientist.email} is already registered`);
      const { index, audit } = await this.store(scientist, lease, requestId);
      released = true;
      log.info({ event: "scientist_registered", scientistId: scientist.id, order: index }, `scientist ${scientist.id} registered`);
      log.audit({ ...audit, audit: true, order: index }, "audit");
      this.remember(scientist);
      return { scientist, apiKey: `sk_${scientist.id}_${secret}`, order: index };
    } catch (error) {
      throw clusterError(error, "registering a scientist");
    } finally {
      if (!released)
        await lease.release(requestId).catch((error: unknown) => log.warn({ event: "lock_release_failed", err: error }, "release failed"));
    }
  }

  /** newScientist: the record of a new scientist (a new id; the email in lower case) and the secret of their key. */
  private newScientist(input: { name: string; email: string; institution?: string | undefined }): { scientist: Scientist; secret: string } {
    const id = `sci_${randomBytes(6).toString("hex")}`;
    const secret = randomBytes(32).toString("base64url");
    const scientist: Scientist = {
      id,
      name: input.name,
      email: input.email.toLowerCase(),
      ...(input.institution === undefined || input.institution === "" ? {} : { institution: input.institution }),
      keyHash: sha256Hex(secret),
      createdAtUtc: new Date(this.options.nowMs()).toISOString(),
    };
    return { scientist, secret };
  }

  /** takeEmailLease: the email's lease, so two registrations of one address cannot both pass the uniqueness check. */
  private async takeEmailLease(email: string, requestId: string): Promise<ClusterLease> {
    const resource = `scientist-email_${sha256Hex(email).slice(0, 32)}`;
    try {
      return await this.options.cluster.acquire([resource], { ttlMs: this.options.leaseTtlMs, waitMs: 2000, requestId });
    } catch (error) {
      const mapped = clusterError(error, "registering a scientist");
      // Another registration of this email holds its lease right now.
      if (mapped.code === "slot_busy")
        throw new ApiError("email_busy", `${email} is being registered by another request right now; try again`);
      throw mapped;
    }
  }

  /** store writes the scientist, the email's index and SCIENTIST_REGISTERED in one txn fenced by the email's lease, which it ends. */
  private async store(scientist: Scientist, lease: ClusterLease, requestId: string): Promise<{ index: number; audit: AuditRecord }> {
    const audit: AuditRecord = {
      timestamp_utc: scientist.createdAtUtc,
      level: "AUDIT",
      event_type: "SCIENTIST_REGISTERED",
      service: this.options.serviceName,
      request_id: requestId,
      details: { scientist_id: scientist.id, ...(scientist.institution === undefined ? {} : { institution: scientist.institution }) },
    };
    const { index } = await lease.txn(
      [
        { op: "put", key: keys.scientist(scientist.id), value: JSON.stringify(scientist) },
        { op: "put", key: keys.scientistEmail(scientist.email), value: scientist.id },
        { op: "append", chain: keys.auditChain, value: JSON.stringify(audit) },
      ],
      requestId,
      { release: true },
    );
    return { index, audit };
  }

  /** authenticate returns the scientist the bearer key belongs to, or throws 401. */
  async authenticate(authorization: string | undefined, requestId: string): Promise<Scientist> {
    // The scheme is case-insensitive and may be followed by more than one space (RFC 9110 §11.1, §11.4).
    const match = /^bearer +(\S+)$/i.exec(authorization ?? "");
    const parsed = match === null ? null : apiKeyPattern.exec(match[1] as string);
    if (authorization === undefined) {
      throw new ApiError("unauthorized", "an API key is required: Authorization: Bearer sk_… (register with POST /scientists)");
    }
    if (parsed === null) throw new ApiError("unauthorized", "the API key is malformed: expected Authorization: Bearer sk_<id>_<secret>");
    const [, id, secret] = parsed as unknown as [string, string, string];
    const scientist = await this.find(id, requestId);
    const expected = Buffer.from(scientist?.keyHash ?? "0".repeat(64), "hex");
    const actual = Buffer.from(sha256Hex(secret), "hex");
    if (scientist === undefined || !timingSafeEqual(expected, actual)) throw new ApiError("unauthorized", "unknown or wrong API key");
    return scientist;
  }

  /**
   * find returns the scientist with this id, if there is one. An id that register() could not have
   * made is answered at once, without asking the cluster: a caller's path segment never reaches
   * the cluster unchecked (a long one used to exceed its key limit and come back as a 500).
   */
  async find(id: string, requestId: string): Promise<Scientist | undefined> {
    if (!scientistIdPattern.test(id)) return undefined;
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached;
    let item: Awaited<ReturnType<ClusterPort["get"]>>;
    try {
      item = await this.options.cluster.get(keys.scientist(id), requestId);
    } catch (error) {
      throw clusterError(error, "reading a scientist");
    }
    if (item === undefined) return undefined;
    const scientist = JSON.parse(item.value) as Scientist;
    this.remember(scientist);
    return scientist;
  }

  private remember(scientist: Scientist): void {
    if (this.cache.size >= this.options.cachedMax) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(scientist.id, scientist);
  }
}
