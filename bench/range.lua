-- wrk script: random 64 KiB ranges within the first SIZE bytes (fixed seed, so both servers get
-- the same sequence of offsets).
local size = tonumber(os.getenv("SIZE"))
local chunk = 65536
math.randomseed(42)
request = function()
  local start = math.random(0, size - chunk)
  return wrk.format("GET", nil, { ["Range"] = "bytes=" .. start .. "-" .. (start + chunk - 1) })
end
