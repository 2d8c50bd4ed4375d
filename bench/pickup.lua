-- wrk script: each request picks up a different card (number,password per
-- line in CARDS_FILE) through the customer's confirm form.
local cards = {}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local n_threads = tonumber(os.getenv("WRK_THREADS") or "2")
  local index = 0
  for line in io.lines(os.getenv("CARDS_FILE")) do
    if index % n_threads == id then
      local number, password = line:match("([^,]+),([^,]+)")
      table.insert(cards, { number, password })
    end
    index = index + 1
  end
  next_card = 1
  failures = 0
  goods_id = os.getenv("GOODS_ID")
  merchant = os.getenv("MERCHANT_ID") or "1"
end

function request()
  local card = cards[next_card]
  next_card = next_card + 1
  if card == nil then
    card = { "NONE", "NONE" }
  end
  local body = "number=" .. card[1] .. "&password=" .. card[2] .. "&goods_id=" .. goods_id ..
    "&consignee=%E5%BC%A0%E4%B8%89&phone=13800001234&province=p&city=c&district=d" ..
    "&address=%E6%96%87%E4%B8%89%E8%B7%AF100%E5%8F%B7&appointment_date=2099-01-05"
  return wrk.format("POST", "/m/" .. merchant .. "/redeem/confirm",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("failures")
  end
  io.write(string.format("NON200 %d\n", total))
end
