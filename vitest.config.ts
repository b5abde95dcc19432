import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{raft,node,client,scheduler,simulations,scripts,tests,chaos}/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
