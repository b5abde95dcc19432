// A local certificate authority for SCTEC: one CA, and a certificate per lock node and per booking
// API, made with @peculiar/x509 over the platform's WebCrypto (ECDSA P-256, SHA-256; no ASN.1 of
// our own). `npm run certs` (scripts/certs.ts) writes them as PEM files; tests make throwaway ones
// here (a second CA, another member's certificate) to show what a TLS cluster refuses.
//
// A node's certificate names its member id as its subject's CN, which the peer link checks in both
// directions, and carries serverAuth and clientAuth (it serves its API and dials its peers with
// the same one). A scheduler's carries serverAuth only: it can never stand in for a node on the
// peer link, whose servers ask for a clientAuth certificate.

import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

// @peculiar/x509 is typed for the DOM's WebCrypto; node:crypto's is the same API under its own types.
type DomCrypto = Parameters<typeof x509.cryptoProvider.set>[0];
type CryptoKey = webcrypto.CryptoKey;
x509.cryptoProvider.set(webcrypto as unknown as DomCrypto);

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const dayMs = 86_400_000;

/** CertificateAuthority is a CA's certificate and key, in PEM, and what it needs to sign. */
export interface CertificateAuthority {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certificate: x509.X509Certificate;
  readonly privateKey: CryptoKey;
}

/** IssuedCertificate is a leaf certificate and its key, in PEM. */
export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** LeafOptions say what a certificate is for: its CN, the names it is valid for, and whether it may be a TLS client. */
export interface LeafOptions {
  /** commonName: a node's member id, or the scheduler's name. */
  readonly commonName: string;
  /** dnsNames and ipAddresses: where it is reached (its SAN). */
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  /** client: it may also authenticate as a TLS client (a node on the peer link). */
  readonly client: boolean;
  /** validDays: from now. @default 825 (what browsers accept for a leaf at most) */
  readonly validDays?: number;
  /** notBeforeMs: when it starts to be valid. @default now, less a minute for clocks a little behind */
  readonly notBeforeMs?: number;
}

async function keyPairOf(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
}

/** dom: a node:crypto key as @peculiar/x509's types name it (the same object). */
function dom<T>(value: unknown): T {
  return value as T;
}

async function keyPemOf(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

function serialNumber(): string {
  // A positive 16-byte serial: RFC 5280 allows 20 octets; the top bit cleared keeps it positive.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

/** createAuthority makes a self-signed CA that may issue leaf certificates only (path length 0). */
export async function createAuthority(options: { readonly name: string; readonly validDays?: number }): Promise<CertificateAuthority> {
  const keys = await keyPairOf();
  const notBefore = new Date(Date.now() - 60_000);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${options.name}`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.validDays ?? 3650) * dayMs),
    signingAlgorithm: algorithm,
    keys: dom(keys),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(dom(keys.publicKey)),
    ],
  });
  return { certPem: certificate.toString("pem"), keyPem: await keyPemOf(keys.privateKey), certificate, privateKey: keys.privateKey };
}

/** loadAuthority reads a CA back from its PEM certificate and key (to issue more certificates from it). */
export async function loadAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  const privateKey = await webcrypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(keyPem), algorithm, true, ["sign"]);
  return { certPem, keyPem, certificate, privateKey };
}

/** issueCertificate makes a leaf certificate signed by `authority`. */
export async function issueCertificate(authority: CertificateAuthority, options: LeafOptions): Promise<IssuedCertificate> {
  const keys = await keyPairOf();
  const notBefore = new Date(options.notBeforeMs ?? Date.now() - 60_000);
  const names = [
    ...options.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...options.ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  const usages = options.client ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${options.commonName}`,
    issuer: authority.certificate.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.validDays ?? 825) * dayMs),
    signingAlgorithm: algorithm,
    publicKey: dom(keys.publicKey),
    signingKey: dom(authority.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.AuthorityKeyIdentifierExtension.create(authority.certificate, false),
      await x509.SubjectKeyIdentifierExtension.create(dom(keys.publicKey)),
    ],
  });
  return { certPem: certificate.toString("pem"), keyPem: await keyPemOf(keys.privateKey) };
}

/** CertsOptions: where to write, and what to make. */
export interface CertsOptions {
  readonly out: string;
  readonly nodes: readonly string[];
  readonly schedulers: readonly string[];
  /** hosts: further DNS names every certificate is valid for. */
  readonly hosts: readonly string[];
  /** renew: names whose certificate is made again even if it exists. */
  readonly renew: readonly string[];
  /** force: a new CA, and every certificate made again. */
  readonly force: boolean;
  readonly log: (line: string) => void;
}

/** makeCertificates writes what is missing (or asked for) and returns the paths of the CA and of each name's certificate and key. */
export async function makeCertificates(options: CertsOptions): Promise<{ ca: string; files: Map<string, { cert: string; key: string }> }> {
  mkdirSync(options.out, { recursive: true });
  const caPath = join(options.out, "ca.pem");
  const caKeyPath = join(options.out, "ca-key.pem");
  let authority: CertificateAuthority;
  let newAuthority = false;
  if (!options.force && existsSync(caPath) && existsSync(caKeyPath)) {
    authority = await loadAuthority(readFileSync(caPath, "utf8"), readFileSync(caKeyPath, "utf8"));
    options.log(`CA: kept ${caPath}`);
  } else {
    authority = await createAuthority({ name: "SCTEC local CA" });
    writeSecret(caKeyPath, authority.keyPem);
    writeFileSync(caPath, authority.certPem);
    newAuthority = true;
    options.log(`CA: made ${caPath} (its key: ${caKeyPath}; keep it off the servers)`);
  }
  const files = new Map<string, { cert: string; key: string }>();
  const wanted = [...options.nodes.map((name) => ({ name, client: true })), ...options.schedulers.map((name) => ({ name, client: false }))];
  for (const { name, client } of wanted) {
    const cert = join(options.out, `${name}.pem`);
    const key = join(options.out, `${name}-key.pem`);
    files.set(name, { cert, key });
    const make = newAuthority || options.renew.includes(name) || !existsSync(cert) || !existsSync(key);
    if (!make) {
      options.log(`${name}: kept ${cert}`);
      continue;
    }
    const issued = await issueCertificate(authority, {
      commonName: name,
      dnsNames: [...new Set([name, "localhost", ...options.hosts])],
      ipAddresses: ["127.0.0.1"],
      client,
    });
    writeSecret(key, issued.keyPem);
    writeFileSync(cert, issued.certPem);
    options.log(`${name}: made ${cert} (${client ? "node: server and peer client" : "server"})`);
  }
  return { ca: caPath, files };
}

/** writeSecret writes a key: a new file readable by its owner only; an existing one in place, keeping its owner and mode (a mounted Docker secret stays readable). */
function writeSecret(path: string, text: string): void {
  if (existsSync(path)) {
    writeFileSync(path, text);
    return;
  }
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600); // Whatever the umask.
}
