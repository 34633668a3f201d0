-- wrk script for bench_servers.py: the create + poll cycle of an image task.
--
--   wrk -t1 -c32 -d5s -s bench/load.lua http://127.0.0.1:PORT -- [PATH_PREFIX]
--
-- POST a text2image task, then GET /tasks/<the task_id of its answer>. A wrk thread sees no
-- connections, so the ids go through one queue: a request is a poll when an id is waiting and
-- fewer polls than creates were sent, a create otherwise (about half and half once running).
-- PATH_PREFIX is "/cn-beijing/api/v1" (the default); Prism serves the spec's paths at the root: "".
-- done() prints "cycle: creates N polls N non-200 N", which bench_servers.py reads.

threads = {}
creates, polls, failed = 0, 0, 0

local prefix = "/cn-beijing/api/v1"
local key = "Bearer sk-demoabj1-0000000000000000"
local create_body = '{"model":"qwen-image-plus","input":{"prompt":"a cat"},"parameters":{"n":1}}'
local create_headers = {["Authorization"] = key, ["X-DashScope-Async"] = "enable", ["Content-Type"] = "application/json"}
local poll_headers = {["Authorization"] = key}
local ids, first, last = {}, 1, 0

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   if args[1] ~= nil then prefix = args[1] end
end

function request()
   if last >= first and polls < creates then
      local id = ids[first]
      ids[first] = nil
      first = first + 1
      polls = polls + 1
      return wrk.format("GET", prefix .. "/tasks/" .. id, poll_headers)
   end
   creates = creates + 1
   return wrk.format("POST", prefix .. "/services/aigc/text2image/image-synthesis", create_headers, create_body)
end

function response(status, headers, body)
   if status ~= 200 then
      failed = failed + 1
      return
   end
   -- A create's answer carries the task_id and no submit_time; a poll's carries both.
   if not body:find('"submit_time"', 1, true) then
      local id = body:match('"task_id"%s*:%s*"([^"]+)"')
      if id ~= nil then
         last = last + 1
         ids[last] = id
      end
   end
end

function done(summary, latency, requests)
   local c, p, f = 0, 0, 0
   for _, thread in ipairs(threads) do
      c = c + thread:get("creates")
      p = p + thread:get("polls")
      f = f + thread:get("failed")
   end
   io.write(string.format("cycle: creates %d polls %d non-200 %d\n", c, p, f))
end
