// The lock node's TLS, when configured (SCTEC_TLS_CERT_FILE, SCTEC_TLS_KEY_FILE, SCTEC_TLS_CA_FILE),
// on the HTTP thread: the HTTPS server for the API, the status page and /metrics, the material the
// raft thread serves its peer port and dials its peers with (peerTls: it crosses to the thread at
// start and after each reload; node/transport checks the peers' certificates), and an HTTPS
// dispatcher that trusts the cluster's CA for the node's own requests to its peers (forwarding to
// the leader, the status page's polls). SIGHUP reloads the three files: new connections use the
// new certificate, open ones keep theirs, so the cluster is not dropped.

import type { RequestListener } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createSecureContext } from "node:tls";
import type { Logger } from "pino";
import { Agent, type Dispatcher } from "undici";
import { readTlsMaterial, serverTlsOptions, type TlsFiles, type TlsMaterial, TlsMaterialError, TlsReloader } from "../config/tls.ts";
import type { PeerTlsOptions } from "./transport/websocket-transport.ts";

/** How long a replaced dispatcher lives on, so the requests it carries can finish. */
const retiredDispatcherCloseMs = 30_000;

export class NodeTls {
  private readonly reloader: TlsReloader;
  private agent: Agent;
  private readonly logger: Logger;

  private constructor(reloader: TlsReloader, logger: Logger) {
    this.reloader = reloader;
    this.logger = logger;
    this.agent = agentOf(reloader.current());
    reloader.onReload((material) => {
      const retired = this.agent;
      this.agent = agentOf(material);
      setTimeout(() => void retired.close(), retiredDispatcherCloseMs).unref();
    });
  }

  /** load reads and checks the files (TlsMaterialError if they do not pass). */
  static load(files: TlsFiles, logger: Logger): NodeTls {
    return new NodeTls(new TlsReloader(files, readTlsMaterial(files)), logger);
  }

  /**
   * createServer serves `listener` over HTTPS. It asks no client for a certificate: API callers
   * authenticate with bearer tokens, and the peer link, which does ask, has a port of its own.
   */
  createServer(listener: RequestListener): HttpsServer {
    return createHttpsServer(serverTlsOptions(this.reloader.current(), { requestClientCertificates: false }), listener);
  }

  /** peerTls: what the transport dials its peers with, now. */
  peerTls(): PeerTlsOptions {
    const { ca, cert, key } = this.reloader.current();
    return { ca, cert, key };
  }

  /** dispatcher: for the node's own HTTPS requests to its peers, trusting the cluster's CA. */
  dispatcher(): Dispatcher {
    return this.agent;
  }

  /** subject names the certificate served now, for logs. */
  describe(material: TlsMaterial = this.reloader.current()): { subject: string; serialNumber: string; validTo: string } {
    const { subject, serialNumber, validTo } = material.certificate;
    return { subject: subject.replace(/\n/g, ", "), serialNumber, validTo };
  }

  /**
   * reload reads the files again and serves them on `server`; it answers whether it did. A failure
   * is logged and the old ones are kept.
   */
  reload(server: HttpsServer): boolean {
    try {
      const material = this.reloader.reload(server, { requestClientCertificates: false });
      this.logger.info({ event: "tls_reloaded", certificate: this.describe(material) }, "TLS certificate and key reloaded");
      return true;
    } catch (error) {
      if (!(error instanceof TlsMaterialError)) throw error;
      this.logger.error(
        { event: "tls_reload_failed", err: error },
        `TLS reload refused, still serving the old certificate: ${error.message}`,
      );
      return false;
    }
  }
}

/**
 * agentOf: the dispatcher for the node's own HTTPS requests, trusting the CA. One TLS context for
 * all its connections: given only `ca`, each connection would make (and parse the CA into) one of
 * its own, about a millisecond of CPU per connection with OpenSSL 3.
 */
function agentOf(material: TlsMaterial): Agent {
  return new Agent({ connect: { secureContext: createSecureContext({ ca: material.ca, minVersion: "TLSv1.2" }) } });
}
