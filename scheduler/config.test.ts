import { describe, expect, it } from "vitest";
import { loadSchedulerConfig, SchedulerConfigError } from "./config.ts";

const token = "0123456789abcdef0123";

describe("scheduler configuration", () => {
  it("has working defaults: hubble-acad with 5-minute slots, locking on, 127.0.0.1:8080", () => {
    const config = loadSchedulerConfig({ SCTEC_API_TOKEN: token });
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(config.locking).toBe("on");
    expect(config.telescopes.find((telescope) => telescope.id === "hubble-acad")?.slotMinutes).toBe(5);
    expect(config.nodes).toHaveLength(3);
  });

  it("reports every problem at once, naming the variable", () => {
    let error: unknown;
    try {
      loadSchedulerConfig({
        SCHEDULER_LISTEN: "8080",
        SCHEDULER_LOCKING: "maybe",
        SCHEDULER_TELESCOPES: '[{"id":"x","name":"X","slotMinutes":7}]',
        SCHEDULER_LEASE_TTL_MS: "5",
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SchedulerConfigError);
    const message = (error as Error).message;
    for (const name of [
      "SCHEDULER_LISTEN",
      "SCHEDULER_LOCKING",
      "SCHEDULER_TELESCOPES",
      "SCHEDULER_LEASE_TTL_MS",
      "SCTEC_API_TOKEN: is required",
    ]) {
      expect(message).toContain(name);
    }
    expect(message).toContain("must divide a day");
  });

  it("limits registrations per address (100 an hour by default) and takes a horizon block that is whole slots dividing a day", () => {
    const config = loadSchedulerConfig({
      SCTEC_API_TOKEN: token,
      SCHEDULER_TELESCOPES: '[{"id":"day-opening","name":"Opens by the day","slotMinutes":10,"horizonBlockMinutes":1440}]',
    });
    expect(config.registrationsPerAddressPerHour).toBe(100);
    expect(config.clockOffsetMs).toBe(0);
    expect(config.telescopes[0]?.horizonBlockMinutes).toBe(1440);
    const notWhole = '[{"id":"x","name":"X","slotMinutes":10,"horizonBlockMinutes":15}]';
    expect(() => loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_TELESCOPES: notWhole })).toThrow(/whole number of slots/);
    const notDividing = '[{"id":"x","name":"X","slotMinutes":10,"horizonBlockMinutes":70}]';
    expect(() => loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_TELESCOPES: notDividing })).toThrow(/must divide a day/);
    expect(() => loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_REGISTRATIONS_PER_ADDRESS_PER_HOUR: "0" })).toThrow(
      /SCHEDULER_REGISTRATIONS_PER_ADDRESS_PER_HOUR/,
    );
  });

  it("refuses malformed telescope JSON and duplicate ids", () => {
    expect(() => loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_TELESCOPES: "[" })).toThrow(/is not JSON/);
    const twice = '[{"id":"a","name":"A","slotMinutes":5},{"id":"a","name":"B","slotMinutes":5}]';
    expect(() => loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_TELESCOPES: twice })).toThrow(/unique/);
  });

  it("serves HTTPS with the certificate, key and CA, checks https:// nodes against the CA, and refuses a plain listen beyond loopback", () => {
    const tls = { SCHEDULER_TLS_CERT_FILE: "/tls/s.pem", SCHEDULER_TLS_KEY_FILE: "/tls/s-key.pem", SCHEDULER_TLS_CA_FILE: "/tls/ca.pem" };
    expect(loadSchedulerConfig({ SCTEC_API_TOKEN: token, ...tls }).tlsCertFile).toBe("/tls/s.pem");
    expect(() =>
      loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_TLS_CERT_FILE: "/tls/s.pem", SCHEDULER_TLS_CA_FILE: "/tls/ca.pem" }),
    ).toThrow(/SCHEDULER_TLS_KEY_FILE: HTTPS needs both the certificate and the key file/);
    expect(() => loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_NODES: "https://127.0.0.1:7001" })).toThrow(
      /SCHEDULER_TLS_CA_FILE: is required to check the https:\/\/ nodes' certificates/,
    );
    expect(() => loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_LISTEN: "0.0.0.0:8080" })).toThrow(
      /SCHEDULER_LISTEN: listens on 0.0.0.0, beyond loopback, without TLS/,
    );
    expect(loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_LISTEN: "0.0.0.0:8080" }, ["--insecure"]).insecure).toBe(true);
    expect(loadSchedulerConfig({ SCTEC_API_TOKEN: token, SCHEDULER_LISTEN: "0.0.0.0:8080", ...tls }).listen.host).toBe("0.0.0.0");
  });
});
