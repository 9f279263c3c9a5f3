-- POST /auth/login with a JSON body; the credentials come from the environment.
dofile(os.getenv("LKBENCH_DIR") .. "/report.lua")

local username = os.getenv("LKBENCH_USER")
local password = os.getenv("LKBENCH_PASSWORD")
local body = string.format('{"username":"%s","password":"%s"}', username, password)

function request()
   return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
   bench_report(summary, latency)
end
