// The TLS files a process serves with are checked together before anything uses them: a
// certificate with its own key, issued by the CA (or by one of the CAs of a bundle, as during a CA
// rotation), valid now; every other combination is refused naming the file, never echoing a key.
// And the listen rule: beyond loopback, TLS or an explicit --insecure.

import { describe, expect, it } from "vitest";
import { createAuthority, issueCertificate } from "../harness/certificates.ts";
import { isLoopbackHost, plainListenProblem, readTlsMaterial, TlsMaterialError } from "./tls.ts";

const files = { certFile: "/tls/n1.pem", keyFile: "/tls/n1-key.pem", caFile: "/tls/ca.pem" };

function readerOf(contents: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = contents[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return text;
  };
}

function problemOf(contents: Record<string, string>, nowMs?: number): string {
  try {
    readTlsMaterial(files, { readFile: readerOf(contents), ...(nowMs === undefined ? {} : { nowMs }) });
  } catch (error) {
    expect(error).toBeInstanceOf(TlsMaterialError);
    return (error as Error).message;
  }
  throw new Error("expected the files to be refused");
}

describe("readTlsMaterial", () => {
  it("takes a certificate with its key from the CA, also from a bundle of CAs; refuses every other combination", async () => {
    const ca = await createAuthority({ name: "test CA" });
    const other = await createAuthority({ name: "other CA" });
    const leaf = await issueCertificate(ca, { commonName: "n1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], client: true });
    const stranger = await issueCertificate(other, { commonName: "n1", dnsNames: ["localhost"], ipAddresses: [], client: true });
    const good = { [files.certFile]: leaf.certPem, [files.keyFile]: leaf.keyPem, [files.caFile]: ca.certPem };

    const material = readTlsMaterial(files, { readFile: readerOf(good) });
    expect(material.certificate.subject).toContain("CN=n1");
    expect(readTlsMaterial(files, { readFile: readerOf({ ...good, [files.caFile]: `${other.certPem}${ca.certPem}` }) }).cert).toBe(
      leaf.certPem,
    );

    expect(problemOf({ ...good, [files.keyFile]: stranger.keyPem })).toBe(
      `the private key ${files.keyFile} is not the key of the certificate ${files.certFile}`,
    );
    expect(problemOf({ ...good, [files.caFile]: other.certPem })).toContain("was not issued by a CA in /tls/ca.pem");
    expect(problemOf({ ...good, [files.caFile]: "no certificate here" })).toContain("holds no PEM certificate");
    expect(problemOf({ ...good, [files.certFile]: "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n" })).toContain(
      "is not a PEM certificate",
    );
    const keyProblem = problemOf({ ...good, [files.keyFile]: "not a key" });
    expect(keyProblem).toContain("is not a PEM private key");
    const { [files.keyFile]: _key, ...withoutKey } = good;
    expect(problemOf(withoutKey)).toBe(`cannot read the private key ${files.keyFile}: ENOENT`);
    expect(problemOf(good, Date.now() + 900 * 86_400_000)).toContain("not now");
    expect(problemOf({ ...good, [files.keyFile]: stranger.keyPem })).not.toContain(stranger.keyPem.slice(40, 80));
  }, 30_000);
});

describe("listening in the clear", () => {
  it("is loopback only, unless TLS or --insecure", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "10.0.0.5", "node1", "128.0.0.1"]) expect(isLoopbackHost(host), host).toBe(false);
    const names = { tlsSettings: "X_TLS_FILES", insecureSetting: "--insecure" };
    expect(plainListenProblem("127.0.0.1", { tls: false, insecure: false, ...names })).toBeUndefined();
    expect(plainListenProblem("0.0.0.0", { tls: true, insecure: false, ...names })).toBeUndefined();
    expect(plainListenProblem("0.0.0.0", { tls: false, insecure: true, ...names })).toBeUndefined();
    expect(plainListenProblem("0.0.0.0", { tls: false, insecure: false, ...names })).toBe(
      "listens on 0.0.0.0, beyond loopback, without TLS: set X_TLS_FILES, or --insecure to serve in the clear on purpose",
    );
  });
});
