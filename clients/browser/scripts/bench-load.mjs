// Time from page load to signed-in user, on a warm server: the demo app is loaded RUNS times
// in one signed-in browser context; each load restores the session (one POST /auth/refresh)
// and the app marks `latchkey:signed-in` when it shows the user. Reports milliseconds since
// navigation start (performance.timeOrigin), and the refresh request's own duration.
//   RUNS (default 30)
import { launch, register, startStack } from "../test/support/stack.mjs";

const runs = Number(process.env.RUNS ?? 30);
const stack = await startStack();
const browser = await launch();
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `median ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, min ${s[0].toFixed(1)} ms`;
};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(stack.app);
  await register(page, "bench");
  const signedIn = [];
  const refresh = [];
  for (let i = 0; i < runs + 3; i++) {
    await page.reload();
    await page.locator("body[data-state=signed-in]").waitFor();
    const t = await page.evaluate(() => {
      const mark = performance.getEntriesByName("latchkey:signed-in")[0];
      const request = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/auth/refresh"));
      return { mark: mark.startTime, refresh: request ? request.duration : NaN };
    });
    if (i < 3) continue; // warm-up
    signedIn.push(t.mark);
    refresh.push(t.refresh);
  }
  console.log(`page load to signed-in user (${runs} loads): ${stats(signedIn)}`);
  console.log(`  of which POST /auth/refresh:        ${stats(refresh)}`);
} finally {
  await browser.close();
  await stack.stop();
}
