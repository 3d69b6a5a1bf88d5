-- wrk script: POST /v1/volunteers with a new valid person each time.
-- Each wrk thread numbers its requests from its own base, so no two collide.
local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = "10X98765432"
local counter = 0
local base = 0

function setup(thread)
  base = base + 1
  thread:set("base", base * 1000000)
end

local function id_number(n)
  local body = string.format("420102%04d0101%03d", 1950 + math.floor(n / 1000) % 50, n % 1000)
  local sum = 0
  for i = 1, 17 do sum = sum + tonumber(body:sub(i, i)) * weights[i] end
  local c = (sum % 11) + 1
  return body .. checks:sub(c, c)
end

function request()
  counter = counter + 1
  local n = base + counter
  local body = string.format(
    '{"name":"压测","id_number":"%s","phone":"13%09d","password":"bench-pass-1",' ..
    '"community":"420102001001","skills":["repair"]}', id_number(n), n)
  return wrk.format("POST", "/v1/volunteers", {["Content-Type"] = "application/json"}, body)
end
