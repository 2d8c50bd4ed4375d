-- wrk script: each request redeems a different code through the signed open
-- API. REQUESTS_FILE holds one pre-signed request per line:
-- timestamp \t nonce \t signature \t idempotency key \t body.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local n_threads = tonumber(os.getenv("WRK_THREADS") or "2")
  key_id = os.getenv("KEY_ID")
  lines = {}
  local index = 0
  for line in io.lines(os.getenv("REQUESTS_FILE")) do
    if index % n_threads == id then
      table.insert(lines, line)
    end
    index = index + 1
  end
  next_line = 1
  failures = 0
end

function request()
  local line = lines[next_line]
  next_line = next_line + 1
  if line == nil then
    line = lines[1]
  end
  local ts, nonce, signature, key, body = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t(.+)")
  return wrk.format("POST", "/open/v1/redemptions", {
    ["Content-Type"] = "application/json",
    ["X-Kaquan-Key"] = key_id,
    ["X-Kaquan-Timestamp"] = ts,
    ["X-Kaquan-Nonce"] = nonce,
    ["X-Kaquan-Signature"] = signature,
    ["Idempotency-Key"] = key,
  }, body)
end

function response(status, headers, body)
  if status ~= 201 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("failures")
  end
  io.write(string.format("NON201 %d\n", total))
end
