-- Shared by the other scripts (loaded with dofile from the path in LKBENCH_DIR):
-- prints one machine-readable line that bench/run.sh parses.
--   BENCH rps=... requests=... p50_ms=... p99_ms=... max_ms=... non2xx=... socket_errors=... timeouts=...
function bench_report(summary, latency, extra)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH rps=%.1f requests=%d seconds=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d timeouts=%d%s\n",
      summary.requests / seconds, summary.requests, seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      e.status, e.connect + e.read + e.write, e.timeout, extra or ""))
end
