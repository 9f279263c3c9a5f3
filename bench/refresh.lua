-- POST /auth/refresh with refresh-token rotation. Run it with one connection per thread
-- (wrk -tN -cN): each thread carries its own refresh family, taken from line `i` of the file
-- named by LKBENCH_COOKIES (one refresh-token value per line, from N separate logins),
-- and always presents the newest token, read from the Set-Cookie of the previous answer.
dofile(os.getenv("LKBENCH_DIR") .. "/report.lua")

local PREFIX = "refresh_token="
local tokens = {}
for line in io.lines(os.getenv("LKBENCH_COOKIES")) do
   if line ~= "" then tokens[#tokens + 1] = line end
end

-- Main state: hand each thread its own token.
local threads = {}
function setup(thread)
   local i = #threads + 1
   if tokens[i] == nil then
      error("refresh.lua: more wrk threads than tokens in LKBENCH_COOKIES")
   end
   thread:set("token", tokens[i])
   thread:set("id", i)
   threads[i] = thread
end

-- Thread states.
non200 = 0
rotated = 0
unrotated = 0
first_bad = ""

function request()
   return wrk.format("POST", "/auth/refresh", { ["Cookie"] = PREFIX .. token }, "")
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
   end
   local set = headers["set-cookie"] or headers["Set-Cookie"]
   local pair = set and string.match(set, "^([^;]*)")
   if status == 200 and pair and string.sub(pair, 1, #PREFIX) == PREFIX and #pair > #PREFIX then
      local new = string.sub(pair, #PREFIX + 1)
      if new ~= token then rotated = rotated + 1 else unrotated = unrotated + 1 end
      token = new
   elseif status == 200 then
      unrotated = unrotated + 1
   end
end

function done(summary, latency, requests)
   local bad, rot, unrot = 0, 0, 0
   for i, t in ipairs(threads) do
      local n = t:get("non200")
      bad, rot, unrot = bad + n, rot + t:get("rotated"), unrot + t:get("unrotated")
      if n > 0 then
         io.write(string.format("thread %d: %d non-200 answers, first: %s\n", i, n, t:get("first_bad")))
      end
   end
   io.write(string.format("refresh: %d threads, %d rotations, %d answers without a new token, %d non-200\n",
      #threads, rot, unrot, bad))
   bench_report(summary, latency, string.format(" non200=%d rotated=%d unrotated=%d", bad, rot, unrot))
end
