-- wrk script: POST /v1/volunteers with a new valid person each time.
-- Each wrk thread numbers its requests from its own base, so no two collide.
local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = "10X98765432"
local counter = 0
local nthreads = 0
local threads = {}
-- Set in each thread's own state by setup (a global: thread:set writes globals).
thread_base = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("thread_base", nthreads * 1000000)
  table.insert(threads, thread)
end

-- Answers other than 201, by status, so the summary says what they were.
c409, c429, c5xx, cother = 0, 0, 0, 0

function response(status, headers, body)
  if status == 409 then c409 = c409 + 1
  elseif status == 429 then c429 = c429 + 1
  elseif status >= 500 then c5xx = c5xx + 1
  elseif status ~= 201 then cother = cother + 1 end
end

function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c409"); b = b + t:get("c429"); c = c + t:get("c5xx"); d = d + t:get("cother")
  end
  io.write(string.format("sign-up answers besides 201: 409=%d 429=%d 5xx=%d other=%d\n", a, b, c, d))
end

-- Unique per thread (the district digits) and per request (year and sequence).
local function id_number(n)
  local thread = math.floor(n / 1000000)
  local c = n % 1000000
  local body = string.format("4201%02d%04d0101%03d", 10 + thread, 1950 + math.floor(c / 1000) % 50,
                             c % 1000)
  local sum = 0
  for i = 1, 17 do sum = sum + tonumber(body:sub(i, i)) * weights[i] end
  local c = (sum % 11) + 1
  return body .. checks:sub(c, c)
end

function request()
  counter = counter + 1
  local n = thread_base + counter
  local body = string.format(
    '{"name":"压测","id_number":"%s","phone":"13%09d","password":"bench-pass-1",' ..
    '"community":"420102001001","skills":["repair"]}', id_number(n), n)
  return wrk.format("POST", "/v1/volunteers", {["Content-Type"] = "application/json"}, body)
end
