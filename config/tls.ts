// TLS settings shared by the lock node and the booking API: the certificate, key and CA files a
// process serves with, read and checked at startup (and again on SIGHUP, by TlsReloader), and the
// rule that a process listening beyond loopback must use TLS unless told `--insecure`.
//
// The files are read whole and checked before anything uses them: the certificate and the CA
// parse, the key is the certificate's, the certificate was issued by the CA and is valid now. A
// reload that fails any check keeps what is served (and says why), so a half-copied file never
// takes a node off the air.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SecureContextOptions } from "node:tls";

/** TlsFiles names the PEM files a process serves with: its certificate, its key, and the CA that issued its peers' (and its own) certificates. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** TlsMaterial is the checked contents of TlsFiles, with the parsed certificate. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly certificate: X509Certificate;
}

/** TlsMaterialError says which file is wrong and how; `code` is stable. */
export class TlsMaterialError extends Error {
  readonly code = "invalid_tls_files";
}

/**
 * readTlsMaterial reads the three files and checks them together; it throws TlsMaterialError
 * naming the file and the problem (never a key's contents).
 */
export function readTlsMaterial(
  files: TlsFiles,
  options: { readonly readFile?: (path: string) => string; readonly nowMs?: number } = {},
): TlsMaterial {
  const read = options.readFile ?? ((path: string) => readFileSync(path, "utf8"));
  const text = (path: string, what: string): string => {
    try {
      return read(path);
    } catch (error) {
      throw new TlsMaterialError(`cannot read the ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  const cert = text(files.certFile, "certificate");
  const key = text(files.keyFile, "private key");
  const ca = text(files.caFile, "CA certificate");
  const certificate = parse(cert, `the certificate ${files.certFile}`);
  // A CA file may hold several CA certificates (while the CA is being rotated): any may have issued it.
  const authorities = pemBlocksOf(ca).map((block, position) => parse(block, `CA certificate ${position + 1} in ${files.caFile}`));
  if (authorities.length === 0) throw new TlsMaterialError(`the CA file ${files.caFile} holds no PEM certificate`);
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TlsMaterialError(`the private key ${files.keyFile} is not a PEM private key: ${(error as Error).message}`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TlsMaterialError(`the private key ${files.keyFile} is not the key of the certificate ${files.certFile}`);
  }
  if (!authorities.some((authority) => certificate.checkIssued(authority) && certificate.verify(authority.publicKey))) {
    throw new TlsMaterialError(`the certificate ${files.certFile} (${certificate.subject}) was not issued by a CA in ${files.caFile}`);
  }
  const nowMs = options.nowMs ?? Date.now();
  if (Date.parse(certificate.validTo) <= nowMs || Date.parse(certificate.validFrom) > nowMs) {
    throw new TlsMaterialError(
      `the certificate ${files.certFile} is valid from ${certificate.validFrom} to ${certificate.validTo}, not now`,
    );
  }
  return { cert, key, ca, certificate };
}

/** pemBlocksOf splits a PEM bundle into its certificates. */
function pemBlocksOf(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

function parse(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new TlsMaterialError(`${what} is not a PEM certificate: ${(error as Error).message}`);
  }
}

/**
 * serverTlsOptions: how a process serves TLS with `material`. TLS 1.2 at least. With
 * `requestClientCertificates`, a client is asked for a certificate signed by the CA, but one
 * without is still served (browsers, the booking API and the CLI authenticate with bearer tokens);
 * whoever needs a verified client (the peer link, node/transport) checks `socket.authorized`.
 */
export function serverTlsOptions(
  material: Pick<TlsMaterial, "cert" | "key" | "ca">,
  options: { readonly requestClientCertificates: boolean },
): SecureContextOptions & {
  requestCert: boolean;
  rejectUnauthorized: boolean;
} {
  return {
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    minVersion: "TLSv1.2",
    requestCert: options.requestClientCertificates,
    rejectUnauthorized: false,
  };
}

/** ReloadableServer is what TlsReloader swaps the certificate of: a tls.Server (https included). */
export interface ReloadableServer {
  setSecureContext(options: SecureContextOptions): void;
}

/**
 * TlsReloader holds a process's current TLS material and reloads it on demand (SIGHUP): it reads
 * and checks the files again, and only if they pass, swaps the server's secure context
 * (`tls.Server.setSecureContext`): new connections get the new certificate, open ones keep theirs,
 * so nothing is dropped. Listeners hear of the new material (the node redials its peers with it).
 */
export class TlsReloader {
  private currentMaterial: TlsMaterial;
  private readonly files: TlsFiles;
  private readonly listeners: ((material: TlsMaterial) => void)[] = [];

  constructor(files: TlsFiles, material: TlsMaterial = readTlsMaterial(files)) {
    this.files = files;
    this.currentMaterial = material;
  }

  /** current: the material served now. */
  current(): TlsMaterial {
    return this.currentMaterial;
  }

  /** onReload hears of every successful reload. */
  onReload(listener: (material: TlsMaterial) => void): void {
    this.listeners.push(listener);
  }

  /**
   * reload reads and checks the files again and, if they pass, serves them on `server`; it returns
   * the new material, or throws TlsMaterialError and keeps the old.
   */
  reload(server: ReloadableServer, options: { readonly requestClientCertificates: boolean }): TlsMaterial {
    const material = readTlsMaterial(this.files);
    server.setSecureContext(serverTlsOptions(material, options));
    this.currentMaterial = material;
    for (const listener of this.listeners) listener(material);
    return material;
  }
}

/** isLoopbackHost says whether a listen host is reachable from this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare);
}

/**
 * plainListenProblem: why a process may not listen on `host` in the clear, or undefined. Beyond
 * loopback, tokens and bookings would cross the network unencrypted: that needs TLS, or the
 * operator's explicit `--insecure` (a private network they trust, a TLS proxy in front).
 */
export function plainListenProblem(
  host: string,
  options: { readonly tls: boolean; readonly insecure: boolean; readonly tlsSettings: string; readonly insecureSetting: string },
): string | undefined {
  if (options.tls || options.insecure || isLoopbackHost(host)) return undefined;
  return `listens on ${host}, beyond loopback, without TLS: set ${options.tlsSettings}, or ${options.insecureSetting} to serve in the clear on purpose`;
}
