-- wrk script: each request redeems a different code through the signed open
-- API (or, with REQUEST_PATH, makes another signed POST: a coupon issue or
-- verification). REQUESTS_FILE holds one pre-signed request per line:
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
  local key_id = os.getenv("KEY_ID")
  local path = os.getenv("REQUEST_PATH") or "/open/v1/redemptions"
  -- Every request is formatted here, before the run: the load generator
  -- shares the machine's cores with the server, and whatever it spends per
  -- request is taken from the server.
  requests = {}
  local index = 0
  for line in io.lines(os.getenv("REQUESTS_FILE")) do
    if index % n_threads == id then
      local ts, nonce, signature, key, body = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t(.+)")
      table.insert(requests, wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["X-Kaquan-Key"] = key_id,
        ["X-Kaquan-Timestamp"] = ts,
        ["X-Kaquan-Nonce"] = nonce,
        ["X-Kaquan-Signature"] = signature,
        ["Idempotency-Key"] = key,
      }, body))
    end
    index = index + 1
  end
  next_request = 1
  failures = 0
end

-- Past the last one, the first is sent again: its nonce is used, so the
-- answer is not 201 and does not count as a redemption.
function request()
  local request = requests[next_request] or requests[1]
  next_request = next_request + 1
  return request
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
