-- wrk script for ci/bench: one file, one scenario per run, chosen by the
-- BENCH_MODE environment variable (create, get, list, since, patch, batch,
-- search).
--
-- Every response goes through response(), which counts answers below 400 as
-- "ok" and keeps a histogram of statuses; done() prints one line starting
-- with "BENCHJSON " that the Python driver parses. For a batch, a response is
-- ok only if every sub-response is below 400, and the number of sub-requests
-- answered 2xx is counted as "records".
--
-- Environment:
--   BENCH_MODE          scenario
--   BENCH_AUTH          value of the Authorization header
--   BENCH_PATH          records collection path (e.g. /v1/articles)
--   BENCH_QUERY         querystring for list and since (without "?")
--   BENCH_IDS_FILE      file with one record id per line (get, patch)
--   BENCH_BATCH_PATH    sub-request path inside a batch (e.g. /articles)
--   BENCH_BATCH_SIZE    sub-requests per batch (default 25)
--   BENCH_THREADS       number of wrk threads (to split records for patch)
--   BENCH_SEARCH_FILE   search: one JSON query body a line, sent in turn
--   BENCH_ACK_DIR       if set, every answer below 400 is appended, one body
--                       per line, to <dir>/<mode>-<thread>.jsonl (soak mode)
--
-- Mode "soak" creates records and PATCHes (If-Match) the ones it created,
-- alternately; each record is only ever patched by the thread that created
-- it, one PATCH at a time, so a 412 or a 409 is a failure of the server.

local mode = os.getenv("BENCH_MODE") or "get"
local auth = os.getenv("BENCH_AUTH") or ""
local path = os.getenv("BENCH_PATH") or "/v1/articles"
local query = os.getenv("BENCH_QUERY") or ""
local ids_file = os.getenv("BENCH_IDS_FILE")
local batch_path = os.getenv("BENCH_BATCH_PATH") or "/articles"
local batch_size = tonumber(os.getenv("BENCH_BATCH_SIZE") or "25")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local ack_dir = os.getenv("BENCH_ACK_DIR")
local search_file = os.getenv("BENCH_SEARCH_FILE")
local searches = {}
local ack_file

-- ---------------------------------------------------------------- main state
local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

-- -------------------------------------------------------------- thread state
local ids = {}
-- Globals, not locals: done() reads them with thread:get().
ok, bad, records, subfailed, gets = 0, 0, 0, 0, 0
statuses = {}
first_error = ""       -- body of the first answer >= 400, for the report
local ready = {}        -- patch: FIFO of {id, etag} pairs waiting for their PATCH
local ready_head = 1    -- explicit indices: # is unreliable once the head is nil
local ready_tail = 0
local cursor = 1
local seq = 0
local headers_json = {}
local create_body
local batch_body

local function read_ids()
   if not ids_file then return end
   local f = assert(io.open(ids_file, "r"))
   for line in f:lines() do
      if #line > 0 then table.insert(ids, line) end
   end
   f:close()
end

local function article(n)
   return string.format(
      '{"title":"bench article %d","url":"http://example.com/%d",' ..
      '"tags":["bench","wrk"],"score":%d.5,"published":%s}',
      n, n, n % 1000, (n % 2 == 0) and "true" or "false")
end

function init(args)
   math.randomseed(os.time() + (tid or 0) * 7919)
   headers_json = {
      ["Authorization"] = auth,
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
   }
   if mode == "get" or mode == "patch" then
      read_ids()
      if #ids == 0 then error("no ids in " .. tostring(ids_file)) end
   end
   if mode == "search" then
      local f = assert(io.open(search_file, "r"))
      for line in f:lines() do
         if #line > 0 then table.insert(searches, line) end
      end
      f:close()
   end
   if mode == "patch" then
      -- Each thread patches its own records, so no 412 comes from two
      -- threads racing on one record: any 412 is a real failure.
      local mine = {}
      for i, id in ipairs(ids) do
         if (i - 1) % nthreads == tid then table.insert(mine, id) end
      end
      ids = mine
   end
   create_body = '{"data":' .. article((tid or 0) * 100000) .. '}'
   if ack_dir then
      ack_file = assert(io.open(ack_dir .. "/" .. mode .. "-" .. tid .. ".jsonl", "w"))
      ack_file:setvbuf("line")
   end
   local parts = {}
   for i = 1, batch_size do
      parts[i] = '{"method":"POST","path":"' .. batch_path ..
         '","body":{"data":' .. article(i) .. '}}'
   end
   batch_body = '{"requests":[' .. table.concat(parts, ",") .. ']}'
end

local function header(headers, name)
   for k, v in pairs(headers) do
      if string.lower(k) == name then return v end
   end
   return nil
end

function request()
   if mode == "create" then
      return wrk.format("POST", path, headers_json, create_body)
   elseif mode == "get" then
      local id = ids[math.random(#ids)]
      return wrk.format("GET", path .. "/" .. id, headers_json)
   elseif mode == "list" or mode == "since" then
      return wrk.format("GET", path .. "?" .. query, headers_json)
   elseif mode == "batch" then
      return wrk.format("POST", "/v1/batch", headers_json, batch_body)
   elseif mode == "search" then
      -- the queries in turn, each thread starting at its own
      seq = seq + 1
      return wrk.format("POST", path, headers_json,
                        searches[(seq + (tid or 0)) % #searches + 1])
   elseif mode == "soak" then
      seq = seq + 1
      if seq % 2 == 0 and ready_head <= ready_tail then
         local item = ready[ready_head]
         ready[ready_head] = nil
         ready_head = ready_head + 1
         local h = {
            ["Authorization"] = auth,
            ["Content-Type"] = "application/json",
            ["If-Match"] = item[2],
         }
         return wrk.format("PATCH", path .. "/" .. item[1], h,
                           '{"data":{"score":' .. seq .. ',"tags":["soak","t' .. tid .. '"]}}')
      end
      return wrk.format("POST", path, headers_json,
                        '{"data":' .. article(tid * 10000000 + seq) .. '}')
   elseif mode == "patch" then
      if ready_head <= ready_tail then
         local item = ready[ready_head]
         ready[ready_head] = nil
         ready_head = ready_head + 1
         seq = seq + 1
         local h = {
            ["Authorization"] = auth,
            ["Content-Type"] = "application/json",
            ["If-Match"] = item[2],
         }
         return wrk.format("PATCH", path .. "/" .. item[1], h,
                           '{"data":{"score":' .. seq .. '}}')
      end
      local id = ids[cursor]
      cursor = cursor % #ids + 1
      gets = gets + 1
      return wrk.format("GET", path .. "/" .. id, headers_json)
   end
   error("unknown BENCH_MODE " .. mode)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if first_error == "" and status >= 400 then
      first_error = string.sub(body or "", 1, 300)
   end
   if ack_file and status < 400 then
      ack_file:write((string.gsub(body, "\n", " ")), "\n")
   end
   if mode == "batch" and status < 400 then
      local failed = 0
      for s in string.gmatch(body, '"status"%s*:%s*(%d+)') do
         if tonumber(s) >= 400 then failed = failed + 1 else records = records + 1 end
      end
      subfailed = subfailed + failed
      if failed > 0 then
         bad = bad + 1
         if first_error == "" then first_error = string.sub(body, 1, 300) end
      else
         ok = ok + 1
      end
      return
   end
   if status < 400 then ok = ok + 1 else bad = bad + 1 end
   if (mode == "create" or mode == "soak") and status == 201 then records = records + 1 end
   if (mode == "patch" or mode == "soak") and status < 400 then
      local id = string.match(body, '"id"%s*:%s*"([^"]+)"')
      local etag = header(headers, "etag")
      if not etag then
         local lm = string.match(body, '"last_modified"%s*:%s*(%d+)')
         if lm then etag = '"' .. lm .. '"' end
      end
      if id and etag then
         ready_tail = ready_tail + 1
         ready[ready_tail] = {id, etag}
      end
   end
end

-- ---------------------------------------------------------------- main state
function json_escape(text)
   text = string.gsub(text, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end)
   return text
end

function done(summary, latency, requests)
   local t_ok, t_bad, t_rec, t_sub, t_gets = 0, 0, 0, 0, 0
   local hist = {}
   local sample = ""
   for _, thread in ipairs(threads) do
      t_ok = t_ok + (thread:get("ok") or 0)
      t_bad = t_bad + (thread:get("bad") or 0)
      t_rec = t_rec + (thread:get("records") or 0)
      t_sub = t_sub + (thread:get("subfailed") or 0)
      t_gets = t_gets + (thread:get("gets") or 0)
      local fe = thread:get("first_error") or ""
      if sample == "" then sample = fe end
      local st = thread:get("statuses") or {}
      for k, v in pairs(st) do hist[k] = (hist[k] or 0) + v end
   end
   local hparts = {}
   for k, v in pairs(hist) do
      table.insert(hparts, string.format('"%d":%d', k, v))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"duration_us":%d,"requests":%d,"ok":%d,"bad":%d,' ..
      '"records":%d,"subfailed":%d,"gets":%d,"p50_us":%d,"p99_us":%d,' ..
      '"mean_us":%.1f,"max_us":%d,"errors":{"connect":%d,"read":%d,' ..
      '"write":%d,"status":%d,"timeout":%d},"statuses":{%s},' ..
      '"first_error":"%s"}\n',
      summary.duration, summary.requests, t_ok, t_bad, t_rec, t_sub, t_gets,
      latency:percentile(50), latency:percentile(99), latency.mean,
      latency.max, e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(hparts, ","), json_escape(sample)))
end
