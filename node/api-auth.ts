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
import type { Credential } from "../lock/types.ts";
import type { Role } from "../protocol/roles.ts";

/** Identity is who a request comes from: a credential's name and role, and the index that issued its token (none for the bootstrap token). */
export interface Identity {
  readonly name: string;
  readonly role: Role;
  /** credentialIndex: the index of the entry that issued the token; commands carry it, so the state machine can refuse a revoked one. */
  readonly credentialIndex: number | undefined;
}

/**
 * CallerCheck: the token a read or a watch is made under (its credentialIndex; undefined for the
 * bootstrap admin token) and the role it needs. The Raft side checks it inside the read, as of the
 * state the read sees (raft-host.ts), so a token revoked before the read began is refused.
 */
export interface CallerCheck {
  readonly credentialIndex: number | undefined;
  readonly role: Role;
}

/**
 * CredentialRefusedError: the Raft side refused a caller's token (revoked or rotated away:
 * `unauthorized`; a role too low: `forbidden`). It crosses from the raft thread with its code.
 */
export class CredentialRefusedError extends Error {
  readonly code: "unauthorized" | "forbidden";
  /** role: the role the refused call needed. */
  readonly role: Role;
  constructor(code: "unauthorized" | "forbidden", message: string, role: Role) {
    super(message);
    this.name = "CredentialRefusedError";
    this.code = code;
    this.role = role;
  }
}

/** CredentialIdentity: what the API needs of a credential to let a request in (never its token's hash). */
export type CredentialIdentity = Pick<Credential, "name" | "role" | "issuedIndex">;

/**
 * CredentialLookup: where the authenticator finds credentials: at once in this node's applied
 * state (on the HTTP thread, a copy the raft thread keeps up to date), or after a ReadIndex round.
 */
export interface CredentialLookup {
  credentialByTokenHash(tokenHash: string): CredentialIdentity | undefined;
  findCredential(tokenHash: string): Promise<CredentialIdentity | undefined>;
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
  private readonly host: CredentialLookup;

  constructor(options: { readonly bootstrapToken: string; readonly host: CredentialLookup }) {
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
    const credential = this.host.credentialByTokenHash(tokenHash);
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
    const credential = await this.host.findCredential(tokenHash);
    return credential === undefined ? undefined : { name: credential.name, role: credential.role, credentialIndex: credential.issuedIndex };
  }
}
