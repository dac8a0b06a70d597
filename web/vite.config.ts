import { defineConfig } from "vite";
import tailwindcss from "@tailwindcss/vite";

// The UI is served by the harmony binary (built into it from dist/); in development, `npx vite`
// proxies the API to a node running on 127.0.0.1:8080.
export default defineConfig({
  plugins: [tailwindcss()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      onwarn(warning, warn) {
        // TanStack Query's "use client" markers mean nothing outside React Server Components.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } },
  },
});
