-- GET with whatever headers wrk was given on its command line (-H); no response() hook, so
-- wrk does not parse bodies and both routes (/healthz and /auth/me) are measured alike.
dofile(os.getenv("LKBENCH_DIR") .. "/report.lua")

function done(summary, latency, requests)
   bench_report(summary, latency)
end
