// CredentialTable: the callers' credentials, part of the replicated lock state (as etcd keeps its
// users and roles in Raft). Each credential is a name, a role and the SHA-256 of its current
// token; the token itself never enters the log, a snapshot or a disk. Pure and deterministic, like
// the rest of the machine: creating, rotating and revoking are log entries, so every node knows the
// same credentials at the same index, and a revocation holds on every node from its own entry on.
//
// Why a plain SHA-256 and not a slow password hash (bcrypt, scrypt, Argon2): a slow hash protects
// secrets that people choose, which are few enough to guess one by one against a stolen hash. A
// token here is 256 random bits from the OS generator; nobody can enumerate 2^256 candidates, at
// any speed of hash, so the hash's one job is to be one-way, which SHA-256 is. A slow hash would
// instead cost every request its price (tens of milliseconds at bcrypt's usual settings, against
// the 2,500 lock cycles a second the cluster serves), and buy nothing.

import type { Role } from "../protocol/roles.ts";
import { roleIncludes } from "../protocol/roles.ts";
import type { Credential, LockResult } from "./types.ts";

/** CredentialRefusal says why a token may not do something: it is no longer valid, or its role is too low. */
export interface CredentialRefusal {
  readonly code: "unauthorized" | "forbidden";
  readonly message: string;
}

/** CredentialChange is what a create, rotate or revoke produced, and the token it retired (by issuedIndex), if any. */
export interface CredentialChange {
  readonly result: LockResult;
  readonly retiredIndex?: number;
}

export class CredentialTable {
  private readonly credentialsMax: number;
  private readonly byName = new Map<string, Credential>();
  private readonly byHash = new Map<string, Credential>();
  /** byIssued: each credential by the index that issued its current token, which commands name. */
  private readonly byIssued = new Map<number, Credential>();

  constructor(credentialsMax: number) {
    this.credentialsMax = credentialsMax;
  }

  /** byTokenHash finds the credential whose current token has this SHA-256 (hex). */
  byTokenHash(tokenHash: string): Credential | undefined {
    return this.byHash.get(tokenHash);
  }

  /** byIssuedIndex finds the credential whose current token was issued at this index. */
  byIssuedIndex(issuedIndex: number): Credential | undefined {
    return this.byIssued.get(issuedIndex);
  }

  /** list returns every credential, by name. */
  list(): Credential[] {
    return [...this.byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * check says whether a command sent with the token issued at `credentialIndex` may do what needs
   * `needed`: undefined if so. A command without one came with the bootstrap admin token.
   */
  check(credentialIndex: number | undefined, needed: Role): CredentialRefusal | undefined {
    if (credentialIndex === undefined) return undefined;
    const credential = this.byIssued.get(credentialIndex);
    if (credential === undefined) {
      return { code: "unauthorized", message: `the token issued at index ${credentialIndex} was revoked or rotated` };
    }
    if (!roleIncludes(credential.role, needed)) {
      return { code: "forbidden", message: `this needs the ${needed} role; credential ${credential.name} has ${credential.role}` };
    }
    return undefined;
  }

  create(index: number, name: string, role: Role, tokenHash: string): CredentialChange {
    if (this.byName.has(name)) return { result: refused("credential_exists", `a credential named ${name} exists already`) };
    // Two tokens with one hash would be the same token: only a repeated token can do that.
    if (this.byHash.has(tokenHash)) return { result: refused("credential_exists", "that token belongs to another credential") };
    if (this.byName.size >= this.credentialsMax) {
      return { result: refused("too_many_credentials", `the cluster keeps at most ${this.credentialsMax} credentials; revoke one first`) };
    }
    const credential: Credential = { name, role, tokenHash, createdIndex: index, issuedIndex: index };
    this.add(credential);
    return { result: issued(credential) };
  }

  /** rotate gives a credential a new token at once: the old token is refused from this entry on. */
  rotate(index: number, name: string, tokenHash: string): CredentialChange {
    const old = this.byName.get(name);
    if (old === undefined) return { result: refused("unknown_credential", `no credential named ${name}`) };
    if (this.byHash.has(tokenHash)) return { result: refused("credential_exists", "that token belongs to a credential already") };
    this.remove(old);
    const credential: Credential = { ...old, tokenHash, issuedIndex: index };
    this.add(credential);
    return { result: issued(credential), retiredIndex: old.issuedIndex };
  }

  revoke(index: number, name: string): CredentialChange {
    const old = this.byName.get(name);
    if (old === undefined) return { result: refused("unknown_credential", `no credential named ${name}`) };
    this.remove(old);
    return { result: { status: "credential_revoked", name, index }, retiredIndex: old.issuedIndex };
  }

  /** snapshot lists every credential, by name (a deterministic order for the snapshot). */
  snapshot(): Credential[] {
    return this.list().map((credential) => ({ ...credential }));
  }

  static restore(credentials: readonly Credential[], credentialsMax: number): CredentialTable {
    const table = new CredentialTable(credentialsMax);
    for (const credential of credentials) table.add({ ...credential });
    return table;
  }

  private add(credential: Credential): void {
    this.byName.set(credential.name, credential);
    this.byHash.set(credential.tokenHash, credential);
    this.byIssued.set(credential.issuedIndex, credential);
  }

  private remove(credential: Credential): void {
    this.byName.delete(credential.name);
    this.byHash.delete(credential.tokenHash);
    this.byIssued.delete(credential.issuedIndex);
  }
}

function issued(credential: Credential): LockResult {
  const { name, role, createdIndex, issuedIndex } = credential;
  return { status: "credential_issued", name, role, createdIndex, issuedIndex };
}

function refused(code: "credential_exists" | "unknown_credential" | "too_many_credentials", message: string): LockResult {
  return { status: "rejected", code, message };
}
