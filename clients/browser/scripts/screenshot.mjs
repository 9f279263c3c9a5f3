// Takes the README's screenshot of the demo app (signed in, two files, two sessions):
//   node clients/browser/scripts/screenshot.mjs docs/spa.png
import { resolve } from "node:path";

import { launch, login, register, startStack } from "../test/support/stack.mjs";

const out = resolve(process.argv[2] ?? "docs/spa.png");
const stack = await startStack();
const browser = await launch();
try {
  const phone = await browser.newContext({ userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile Safari" });
  const context = await browser.newContext({ viewport: { width: 760, height: 600 } });
  const page = await context.newPage();
  await page.goto(stack.app);
  await register(page, "olive");
  for (const [name, content] of [["plan.txt", "step one"], ["notes.md", "# notes"]]) {
    await page.locator("#upload-form [name=name]").fill(name);
    await page.locator("#upload-form [name=content]").fill(content);
    await page.locator("#upload-form button").click();
    await page.locator("#files li", { hasText: name }).waitFor();
  }
  const other = await phone.newPage();
  await other.goto(stack.app);
  await login(other, "olive");
  await other.locator("body[data-state=signed-in]").waitFor();
  await page.reload();
  await page.locator("#sessions li").nth(1).waitFor();
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await stack.stop();
}
