-- Tile paths for wrk: warm cycles over a fixed set of cached tiles; cold asks
-- for a tile nobody asked for before (zoom 20, one row per run); mapnik asks for
-- the Mapnik layer's zoom-10 tiles of one row per run (load.py's mapnik_path).
-- Arguments: prefix, mode ("warm", "cold" or "mapnik"), warm grid side or row.
local prefix, mode, n
local counter = 0

function init(args)
  prefix = args[1]
  mode = args[2]
  n = tonumber(args[3])
end

function request()
  local path
  if mode == "warm" then
    local i = counter % (n * n)
    path = string.format("%s/demo/8/%d/%d.png", prefix, i % n, math.floor(i / n))
  elseif mode == "mapnik" then
    path = string.format("%s/world/10/%d/%d.png", prefix, counter % 1024, n)
  else
    path = string.format("%s/demo/20/%d/%d.png", prefix, counter, n)
  end
  counter = counter + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d status=%d\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
