// Who is calling the node's HTTP API: a bearer token becomes an Identity, a credential's name and
// role. Two kinds of token are known: the bootstrap admin token from the node's configuration
// (SCTEC_API_TOKEN or its file: the operator's key to create the first credentials, never in the
// log), and the credentials in the replicated lock state (lock/credentials.ts), found by the
// token's SHA-256.
//
// The lookup here only lets a request in; it is not what makes a revocation hold. A node may not
// have applied the revoking entry yet, so every call is checked again where it takes effect: a
// command by the state machine when its entry applies (it names its token's `credentialIndex`),
// a read after its ReadIndex round, which waits until this node has applied everything committed
// before the read began (docs/SECURITY.md). A token this node does not know is looked up once
// more after a ReadIndex round too, so a credential created a moment ago on the leader works at
// once on a follower.

import { createHash, randomBytes } from "node:crypto";
import type { Role } from "../protocol/roles.ts";
import type { LockService } from "./lock-service.ts";

/** Identity is who a request comes from: a credential's name and role, and the index that issued its token (none for the bootstrap token). */
export interface Identity {
  readonly name: string;
  readonly role: Role;
  /** credentialIndex: the index of the entry that issued the token; commands carry it, so the state machine can refuse a revoked one. */
  readonly credentialIndex: number | undefined;
}

/** bootstrapAdminName names the bootstrap admin token in logs and answers (`GET /auth/whoami`). */
export const bootstrapAdminName = "bootstrap-admin";

/** tokenPrefix starts every token the cluster issues, so a secret scanner can find one pasted where it should not be. */
export const tokenPrefix = "sctec_";

/** tokenHashOf is what the cluster keeps of a token: its SHA-256, lower-case hex. */
export function tokenHashOf(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** newToken makes a token: 256 random bits from the OS generator, base64url, after tokenPrefix. */
export function newToken(): string {
  return `${tokenPrefix}${randomBytes(32).toString("base64url")}`;
}

/** bearerTokenOf takes the token out of an `Authorization: Bearer <token>` header; undefined for anything else. */
export function bearerTokenOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined || !authorization.startsWith("Bearer ")) return undefined;
  const token = authorization.slice("Bearer ".length);
  // A token is printable ASCII without spaces, and short: a longer header is not worth hashing.
  return token.length > 0 && token.length <= 512 && /^[\x21-\x7e]+$/.test(token) ? token : undefined;
}

/**
 * ApiAuthenticator finds the Identity behind a request's Authorization header: at once from this
 * node's applied state (`local`, for the hot path), or after a ReadIndex round when that finds
 * nothing (`resolve`).
 */
export class ApiAuthenticator {
  private readonly bootstrapHash: string;
  private readonly host: LockService;

  constructor(options: { readonly bootstrapToken: string; readonly host: LockService }) {
    // Kept as its hash, and compared as one: how long a comparison of two SHA-256 values takes
    // can only tell how many leading hex digits of the hashes agree, which says nothing useful
    // about the token (finding a token whose hash starts a certain way is as hard as ever).
    this.bootstrapHash = tokenHashOf(options.bootstrapToken);
    this.host = options.host;
  }

  /** local finds the identity in this node's applied state, without waiting; undefined if the token is unknown here. */
  local(authorization: string | undefined): Identity | undefined {
    const token = bearerTokenOf(authorization);
    if (token === undefined) return undefined;
    const tokenHash = tokenHashOf(token);
    if (tokenHash === this.bootstrapHash) return { name: bootstrapAdminName, role: "admin", credentialIndex: undefined };
    const credential = this.host.localState().credentialByTokenHash(tokenHash);
    return credential === undefined ? undefined : { name: credential.name, role: credential.role, credentialIndex: credential.issuedIndex };
  }

  /**
   * resolve is `local`, and for a token unknown here, the same lookup after a ReadIndex round: a
   * credential whose creation committed before this request arrived is found on any node. It
   * rejects with the read's DriverError when no leader can be reached.
   */
  async resolve(authorization: string | undefined): Promise<Identity | undefined> {
    const known = this.local(authorization);
    const token = bearerTokenOf(authorization);
    if (known !== undefined || token === undefined) return known;
    const tokenHash = tokenHashOf(token);
    const credential = await this.host.linearizableRead((state) => state.credentialByTokenHash(tokenHash));
    return credential === undefined ? undefined : { name: credential.name, role: credential.role, credentialIndex: credential.issuedIndex };
  }
}
