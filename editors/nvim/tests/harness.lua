--- A small test harness for `nvim -l`: named tests, assertions that say what differed,
--- cleanups that run whatever happens, and the closing `N passed, N failed` line.
---
--- Rule kept here: a test fails by raising; nothing counts as passed unless its function
--- returned normally and every cleanup ran.

local M = {}

local tests = {}
local cleanups = {}

---@param name string
---@param fn fun()
function M.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

--- Registers `fn` to run after the current test, last registered first.
---@param fn fun()
function M.defer(fn)
  cleanups[#cleanups + 1] = fn
end

local function out(line)
  io.stdout:write(line, '\n')
  io.stdout:flush()
end
M.out = out

local function show(value)
  if type(value) == 'string' then
    return ('%q'):format(value)
  end
  return vim.inspect(value)
end

function M.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(('%s: expected %s, got %s'):format(what or 'value', show(expected), show(actual)), 2)
  end
end

function M.truthy(value, what)
  if not value then
    error(('%s: expected a true value, got %s'):format(what or 'value', show(value)), 2)
  end
  return value
end

function M.contains(haystack, needle, what)
  if type(haystack) == 'table' then
    if not vim.tbl_contains(haystack, needle) then
      error(('%s: %s not in %s'):format(what or 'list', show(needle), show(haystack)), 2)
    end
    return
  end
  if type(haystack) ~= 'string' or not haystack:find(needle, 1, true) then
    error(('%s: %s not found in %s'):format(what or 'text', show(needle), show(haystack)), 2)
  end
end

function M.not_contains(haystack, needle, what)
  if type(haystack) == 'string' and haystack:find(needle, 1, true) then
    error(('%s: %s unexpectedly in %s'):format(what or 'text', show(needle), show(haystack)), 2)
  end
end

--- Runs every test whose name contains `filter` (all when nil); answers the failure count.
---@param filter string|nil
---@return integer passed, integer failed
function M.run(filter)
  local passed, failed = 0, 0
  for _, t in ipairs(tests) do
    if filter == nil or t.name:find(filter, 1, true) then
      cleanups = {}
      local started = vim.uv.hrtime()
      local ok, err = xpcall(t.fn, debug.traceback)
      for i = #cleanups, 1, -1 do
        local cok, cerr = pcall(cleanups[i])
        if not cok and ok then
          ok, err = false, 'cleanup failed: ' .. tostring(cerr)
        end
      end
      local ms = (vim.uv.hrtime() - started) / 1e6
      if ok then
        passed = passed + 1
        out(('ok   %s (%.0f ms)'):format(t.name, ms))
      else
        failed = failed + 1
        out(('FAIL %s (%.0f ms)'):format(t.name, ms))
        for line in tostring(err):gmatch('[^\n]+') do
          out('     ' .. line)
        end
      end
    end
  end
  return passed, failed
end

return M
