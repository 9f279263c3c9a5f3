// Builds dist/latchkey.js (one minified ES module, no dependencies) and dist/latchkey.d.ts,
// then the demo app examples/spa/dist/app.js (which imports the client as /latchkey.js).
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const spa = join(here, "../../examples/spa");
rmSync(join(here, "dist"), { recursive: true, force: true });
await build({
  entryPoints: [join(here, "src/latchkey.ts")],
  outfile: join(here, "dist/latchkey.js"),
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: true,
  legalComments: "none",
});
execFileSync(process.execPath, [join(here, "node_modules/typescript/bin/tsc"), "-p", join(here, "tsconfig.json")], {
  stdio: "inherit",
});
await build({
  entryPoints: [join(spa, "src/app.ts")],
  outfile: join(spa, "dist/app.js"),
  bundle: true,
  format: "esm",
  target: "es2020",
  external: ["/latchkey.js"],
  sourcemap: true,
});
console.log("built clients/browser/dist/latchkey.js, latchkey.d.ts and examples/spa/dist/app.js");
