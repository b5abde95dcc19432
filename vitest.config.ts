import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{protocol,config,raft,lock,node,client,scheduler,simulations,harness,scripts,tests,chaos}/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
