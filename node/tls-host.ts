// The lock node's TLS, when configured (SCTEC_TLS_CERT_FILE, SCTEC_TLS_KEY_FILE, SCTEC_TLS_CA_FILE):
// one HTTPS server for the API, the status page, /metrics and the peer link (which asks for client
// certificates: node/transport checks them), the material the transport dials its peers with, and
// an HTTPS dispatcher that trusts the cluster's CA for the node's own requests to its peers
// (forwarding to the leader, the status page's polls). SIGHUP reloads the three files: new
// connections use the new certificate, open ones keep theirs, so the cluster is not dropped.

import type { RequestListener } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
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

  /** createServer serves `listener` over HTTPS, asking clients for a certificate (only the peer link requires one). */
  createServer(listener: RequestListener): HttpsServer {
    return createHttpsServer(serverTlsOptions(this.reloader.current(), { requestClientCertificates: true }), listener);
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

  /** reload reads the files again and serves them on `server`; a failure is logged and the old ones are kept. */
  reload(server: HttpsServer): void {
    try {
      const material = this.reloader.reload(server, { requestClientCertificates: true });
      this.logger.info({ event: "tls_reloaded", certificate: this.describe(material) }, "TLS certificate and key reloaded");
    } catch (error) {
      if (!(error instanceof TlsMaterialError)) throw error;
      this.logger.error(
        { event: "tls_reload_failed", err: error },
        `TLS reload refused, still serving the old certificate: ${error.message}`,
      );
    }
  }
}

function agentOf(material: TlsMaterial): Agent {
  return new Agent({ connect: { ca: material.ca, minVersion: "TLSv1.2" } });
}
