--- Options of the Switchboard plugin: their defaults, their validation, and what they turn
--- into when the sidecar starts (its command line, its `RUST_LOG`, its log file).
---
--- Rule kept here: every option has a working default, so `setup()` stays optional, and a
--- bad option is reported once with the option's name instead of failing later somewhere
--- deep in the client.

local M = {}

--- The marks the status line puts after an alias, one per account state, plus the texts
--- shown when there is no alias to show. Every entry can be replaced through `setup()`.
M.default_marks = {
  ok = '',
  expiring = ' ~',
  expired = ' !',
  needsLogin = ' !login',
  unknown = ' ?',
  unmanaged = ' (not managed)',
  shadowed = ' (shadowed)',
  none = 'no Claude login',
  starting = 'switchboard …',
  down = 'switchboard down',
  missing = 'switchboard not found',
  error = 'switchboard error',
}

M.defaults = {
  -- A binary path or name (started as `BIN serve --framing lsp`), or a whole command line
  -- as a list, used as it is.
  cmd = 'switchboard',
  -- Level of the sidecar's own log: 'error', 'warn', 'info', 'debug', 'trace', or a
  -- `vim.log.levels` value. `false` leaves an inherited `RUST_LOG` alone.
  log_level = 'info',
  -- Where the sidecar's stderr goes; `nil` means `stdpath('log')/switchboard.log`.
  log_file = nil,
  -- Text put before the status line's text, for example 'Claude: '.
  prefix = '',
  marks = M.default_marks,
  -- Restart delays after the sidecar dies: the first, then doubling up to the cap.
  restart = { initial_ms = 1000, max_ms = 30000 },
}

local current = vim.deepcopy(M.defaults)

local rust_levels = { 'trace', 'debug', 'info', 'warn', 'error', 'off' }

--- Turns a `log_level` option into the level word `RUST_LOG` understands, or nil when the
--- option says to leave `RUST_LOG` alone.
---@param level string|integer|false|nil
---@return string|nil
function M.rust_level(level)
  if level == nil or level == false then
    return nil
  end
  if type(level) == 'number' then
    -- vim.log.levels runs TRACE = 0 … OFF = 5, in the same order as the list above.
    return rust_levels[math.max(0, math.min(5, level)) + 1]
  end
  local word = tostring(level):lower()
  if word == 'warning' then
    word = 'warn'
  end
  if vim.tbl_contains(rust_levels, word) then
    return word
  end
  return nil
end

--- Checks options without applying them; answers an error message or nil.
---@param opts table
---@return string|nil
function M.check(opts)
  -- Checked by hand: vim.validate changed its calling form between 0.10 and 0.11.
  local expected = {
    cmd = { string = true, table = true },
    log_file = { string = true },
    prefix = { string = true },
    marks = { table = true },
    restart = { table = true },
  }
  for key, types in pairs(expected) do
    local value = opts[key]
    if value ~= nil and not types[type(value)] then
      local names = vim.tbl_keys(types)
      table.sort(names)
      return ('%s: expected %s, got %s'):format(key, table.concat(names, ' or '), type(value))
    end
  end
  if type(opts.cmd) == 'table' and #opts.cmd == 0 then
    return 'cmd: expected a binary path or a non-empty command list'
  end
  if opts.log_level ~= nil and opts.log_level ~= false and M.rust_level(opts.log_level) == nil then
    return ('log_level: unknown level %s'):format(vim.inspect(opts.log_level))
  end
  for key, value in pairs(opts.marks or {}) do
    if type(value) ~= 'string' then
      return ('marks.%s: expected a string'):format(key)
    end
  end
  return nil
end

--- Replaces the options in force with the defaults overlaid by `opts`.
---@param opts table|nil
---@return string|nil error
function M.apply(opts)
  opts = opts or {}
  local err = M.check(opts)
  if err then
    return err
  end
  current = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  if type(opts.cmd) == 'table' then
    -- A list replaces the default outright; deep_extend would merge it index by index.
    current.cmd = vim.deepcopy(opts.cmd)
  end
  return nil
end

---@return table
function M.get()
  return current
end

--- The Switchboard binary, for `--version` and CLI calls.
---@return string
function M.binary()
  local cmd = current.cmd
  if type(cmd) == 'table' then
    return cmd[1]
  end
  return cmd
end

--- The command line that starts the sidecar.
---@return string[]
function M.sidecar_command()
  local cmd = current.cmd
  if type(cmd) == 'table' then
    return vim.deepcopy(cmd)
  end
  return { cmd, 'serve', '--framing', 'lsp' }
end

--- Extra environment for the sidecar.
---@return table<string, string>
function M.sidecar_env()
  local level = M.rust_level(current.log_level)
  if level == nil then
    return {}
  end
  -- Dependencies stay at warn so that a debug log shows Switchboard's own decisions
  -- rather than every HTTP frame.
  return { RUST_LOG = ('warn,switchboard=%s'):format(level) }
end

---@return string
function M.log_file()
  if current.log_file then
    return current.log_file
  end
  local ok, dir = pcall(vim.fn.stdpath, 'log')
  if not ok or type(dir) ~= 'string' or dir == '' then
    dir = vim.fn.stdpath('state')
  end
  return dir .. '/switchboard.log'
end

--- The restart delay before attempt number `attempt` (1 for the first restart).
---@param attempt integer
---@return integer milliseconds
function M.restart_delay(attempt)
  local r = current.restart
  local delay = r.initial_ms * 2 ^ math.max(0, attempt - 1)
  return math.floor(math.min(delay, r.max_ms))
end

return M
