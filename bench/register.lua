-- POST /auth/register with a new username on every request: the registration flood of
-- bench/flood.sh. Names are "flood-<run>-<thread>-<n>": <run> comes from LKBENCH_RUN (one tag
-- per run), <thread> is the wrk thread number handed out in setup(), <n> a counter of the
-- thread's own, so no name repeats within a run (a repeat would show as a 409 below). The
-- password comes from LKBENCH_PASSWORD.
--
-- done() prints how the answers were spread ("flood: ... 201=... 503_overloaded=..."), then
-- the BENCH line of report.lua with those counts appended.
dofile(os.getenv("LKBENCH_DIR") .. "/report.lua")

local run = os.getenv("LKBENCH_RUN") or tostring(os.time())
local password = os.getenv("LKBENCH_PASSWORD")

-- Main state: number the threads.
local threads = {}
function setup(thread)
   local i = #threads + 1
   thread:set("tid", i)
   threads[i] = thread
end

-- Thread states (tid is set by setup() before the thread starts).
counter = 0
created = 0      -- 201
overloaded = 0   -- 503 with the "overloaded" problem code
retry_after = 0  -- of those, how many carried Retry-After
other503 = 0     -- 503 without "overloaded" in the body
throttled = 0    -- 429
taken = 0        -- 409 (a repeated name: must stay 0)
other = 0        -- anything else
first_other = ""

local headers = { ["Content-Type"] = "application/json" }

function request()
   counter = counter + 1
   local body = string.format('{"username":"flood-%s-%d-%d","password":"%s"}',
      run, tid, counter, password)
   return wrk.format("POST", "/auth/register", headers, body)
end

function response(status, hdrs, body)
   if status == 201 then
      created = created + 1
   elseif status == 503 then
      if body and string.find(body, "overloaded", 1, true) then
         overloaded = overloaded + 1
         if hdrs["Retry-After"] or hdrs["retry-after"] then retry_after = retry_after + 1 end
      else
         other503 = other503 + 1
      end
   elseif status == 429 then
      throttled = throttled + 1
   elseif status == 409 then
      taken = taken + 1
   else
      other = other + 1
      if first_other == "" then first_other = status .. " " .. string.sub(body or "", 1, 200) end
   end
end

function done(summary, latency, requests)
   local c, o, ra, o5, t, tk, ot, sent = 0, 0, 0, 0, 0, 0, 0, 0
   for i, th in ipairs(threads) do
      c = c + th:get("created")
      o = o + th:get("overloaded")
      ra = ra + th:get("retry_after")
      o5 = o5 + th:get("other503")
      t = t + th:get("throttled")
      tk = tk + th:get("taken")
      ot = ot + th:get("other")
      sent = sent + th:get("counter")
      local first = th:get("first_other")
      if first ~= "" then io.write(string.format("thread %d: first other answer: %s\n", i, first)) end
   end
   io.write(string.format(
      "flood: %d names generated, %d answers: 201=%d 503_overloaded=%d (with Retry-After %d) 503_other=%d 429=%d 409=%d other=%d\n",
      sent, c + o + o5 + t + tk + ot, c, o, ra, o5, t, tk, ot))
   bench_report(summary, latency, string.format(
      " created=%d overloaded=%d retry_after=%d other503=%d throttled=%d taken=%d other=%d",
      c, o, ra, o5, t, tk, ot))
end
