--- The sidecar process: starting `switchboard serve` on first need, sending requests over
--- LSP framing through `vim.lsp.rpc`, feeding its notifications to the view model, and
--- restarting it with a growing delay when it dies.
---
--- Rules kept here: the sidecar starts lazily and never on the drawing path itself; its
--- stderr goes to a log file, never into the message area; a request whose sidecar died
--- is answered with an error instead of being left hanging; answers from an earlier
--- sidecar are never mistaken for answers from the current one.

local config = require('switchboard.config')
local state = require('switchboard.state')

local uv = vim.uv or vim.loop

local M = {}

local S = {
  rpc = nil, -- vim.lsp.rpc.PublicClient of the current sidecar
  generation = 0, -- bumped on every spawn; callbacks of older sidecars are ignored
  pidfile = nil,
  started_at = nil, -- uv.now() at spawn
  restarts = 0, -- restarts since the plugin loaded
  attempt = 0, -- consecutive quick deaths, for the backoff
  timer = nil, -- pending restart
  restart_at = nil,
  pending = {}, -- request key -> callback
  next_key = 0,
  missing_told = nil, -- the command last told missing, so that each is told once
}

-- A sidecar that stayed up this long is healthy; its death starts the backoff afresh.
local STABLE_MS = 30000

local is_windows = vim.fn.has('win32') == 1

--- Writes one line to the sidecar log, for events the sidecar cannot log itself.
---@param line string
local function log_line(line)
  local path = config.log_file()
  vim.fn.mkdir(vim.fn.fnamemodify(path, ':h'), 'p')
  local f = io.open(path, 'a')
  if f then
    f:write(os.date('%Y-%m-%dT%H:%M:%S '), 'switchboard.nvim: ', line, '\n')
    f:close()
  end
end

local function fail_pending(message, kind)
  local pending = S.pending
  S.pending = {}
  for _, cb in pairs(pending) do
    cb({ code = -32099, message = message, data = { kind = kind } }, nil)
  end
end

local function clear_timer()
  if S.timer then
    S.timer:stop()
    if not S.timer:is_closing() then
      S.timer:close()
    end
    S.timer = nil
    S.restart_at = nil
  end
end

local spawn

local function schedule_restart()
  S.attempt = S.attempt + 1
  local delay = config.restart_delay(S.attempt)
  clear_timer()
  S.timer = uv.new_timer()
  S.restart_at = uv.now() + delay
  S.timer:start(
    delay,
    0,
    vim.schedule_wrap(function()
      clear_timer()
      if state.sidecar() == 'down' then
        S.restarts = S.restarts + 1
        spawn()
      end
    end)
  )
  log_line(('sidecar stopped; restarting in %d ms'):format(delay))
end

---@param generation integer
---@param code integer
---@param signal integer
local function on_exit(generation, code, signal)
  if generation ~= S.generation then
    return
  end
  S.rpc = nil
  S.pidfile = nil
  local uptime = S.started_at and (uv.now() - S.started_at) or 0
  if uptime >= STABLE_MS then
    S.attempt = 0
  end
  log_line(('sidecar exited with code %s, signal %s'):format(tostring(code), tostring(signal)))
  state.set_sidecar('down')
  fail_pending(
    ('the switchboard sidecar stopped; it restarts on its own (log: %s)'):format(config.log_file()),
    'sidecarDown'
  )
  schedule_restart()
end

--- Wraps the sidecar command so that its stderr is appended to the log file and its pid
--- is written where `info()` can read it. `exec` keeps the pid the sidecar's own.
---@param cmd string[]
---@param pidfile string
---@param logfile string
---@return string[]
local function wrap(cmd, pidfile, logfile)
  local script = 'printf "%s\\n" "$$" >"$1"; log=$2; shift 2; exec "$@" 2>>"$log"'
  local wrapped = { 'sh', '-c', script, 'switchboard-sidecar', pidfile, logfile }
  vim.list_extend(wrapped, cmd)
  return wrapped
end

local function refresh_view(generation)
  M.request('account/list', {}, function(err, result)
    if generation ~= S.generation then
      return
    end
    if err or type(result) ~= 'table' then
      local message = err and tostring(err.message) or 'no result'
      log_line('account/list failed: ' .. message)
      if err and err.data and (err.data.kind == 'sidecarDown' or err.data.kind == 'sidecarMissing') then
        return
      end
      -- The sidecar answered, so it is up; the status line says the list is unreadable.
      state.set_sidecar('running')
      state.set_error(message)
      return
    end
    state.set_sidecar('running')
    state.set_list(result, 'list', false)
  end)
  M.request('account/status', {}, function(err, result)
    if generation == S.generation and not err and type(result) == 'table' then
      state.set_status(result)
    end
  end)
end

spawn = function()
  local cmd = config.sidecar_command()
  if vim.fn.executable(cmd[1]) ~= 1 then
    state.set_sidecar('missing')
    if S.missing_told ~= cmd[1] then
      S.missing_told = cmd[1]
      vim.notify(
        ("Switchboard: cannot run '%s'; install it (cargo install --path server) or set setup({ cmd = '/path/to/switchboard' })"):format(
          cmd[1]
        ),
        vim.log.levels.WARN
      )
    end
    return false
  end
  S.missing_told = nil
  S.generation = S.generation + 1
  local generation = S.generation
  local logfile = config.log_file()
  log_line('starting ' .. table.concat(cmd, ' '))
  local full = cmd
  local pidfile = nil
  if not is_windows then
    pidfile = vim.fn.tempname() .. '.switchboard.pid'
    full = wrap(cmd, pidfile, logfile)
  end
  local ok, rpc_or_err = pcall(vim.lsp.rpc.start, full, {
    notification = function(method, params)
      if generation == S.generation and method == 'account/didChange' then
        state.on_did_change(params)
      end
    end,
    on_error = function(code, err)
      if generation == S.generation then
        log_line(('rpc error %s: %s'):format(tostring(code), vim.inspect(err)))
      end
    end,
    on_exit = function(code, signal)
      -- vim.lsp.rpc calls this from the process callback; Neovim's API waits for the loop.
      vim.schedule(function()
        on_exit(generation, code, signal)
      end)
    end,
  }, { env = config.sidecar_env() })
  if not ok then
    log_line('could not start the sidecar: ' .. tostring(rpc_or_err))
    state.set_sidecar('down')
    schedule_restart()
    return false
  end
  S.rpc = rpc_or_err
  S.pidfile = pidfile
  S.started_at = uv.now()
  -- After a death the status line keeps saying down until the new sidecar has answered,
  -- rather than showing the old list as if nothing had happened.
  if state.sidecar() ~= 'down' then
    state.set_sidecar('starting')
  end
  refresh_view(generation)
  return true
end

--- Starts the sidecar unless it is running, starting, or waiting for its restart.
---@return boolean started_or_running
function M.ensure()
  if S.rpc then
    return true
  end
  if S.timer then
    return false
  end
  return spawn()
end

--- Sends a request; `callback(err, result)` runs on the main loop exactly once.
---@param method string
---@param params table|nil
---@param callback fun(err: table|nil, result: any)
function M.request(method, params, callback)
  if not S.rpc then
    M.ensure()
  end
  if not S.rpc then
    local status = state.sidecar()
    local message, kind
    if status == 'missing' then
      message = ("the switchboard binary '%s' was not found"):format(config.binary())
      kind = 'sidecarMissing'
    else
      local wait = S.restart_at and math.max(0, S.restart_at - uv.now()) or 0
      message = ('the switchboard sidecar is down and restarts in %.0f s (log: %s)'):format(
        math.ceil(wait / 1000),
        config.log_file()
      )
      kind = 'sidecarDown'
    end
    vim.schedule(function()
      callback({ code = -32099, message = message, data = { kind = kind } }, nil)
    end)
    return
  end
  S.next_key = S.next_key + 1
  local key = S.next_key
  S.pending[key] = callback
  local sent = S.rpc.request(method, params or vim.empty_dict(), function(err, result)
    local cb = S.pending[key]
    if cb then
      S.pending[key] = nil
      cb(err, result)
    end
  end)
  if not sent then
    S.pending[key] = nil
    vim.schedule(function()
      callback({ code = -32099, message = 'the switchboard sidecar is not accepting requests', data = { kind = 'sidecarDown' } }, nil)
    end)
  end
end

--- Ends the current sidecar, if any, so that nothing it does later counts: bumping the
--- generation makes its exit and its answers irrelevant. Deciding here rather than when
--- the exit arrives means a stop followed at once by a start cannot be mistaken, later, for
--- a stop of the new sidecar.
---@param why string
local function discard(why)
  clear_timer()
  S.attempt = 0
  if S.rpc then
    local old = S.rpc
    S.generation = S.generation + 1
    S.rpc = nil
    S.pidfile = nil
    fail_pending(why, 'sidecarDown')
    old.terminate()
  end
  state.set_sidecar('idle')
end

--- Stops the sidecar on purpose: no restart follows.
function M.stop()
  discard('the switchboard sidecar was stopped')
end

--- Stops the sidecar and starts a new one, for example after `setup()` changed its command.
function M.restart()
  discard('the switchboard sidecar was restarted')
  spawn()
end

--- Facts about the sidecar, for `:checkhealth` and scripts.
---@return { status: string, pid: integer|nil, log_file: string, cmd: string[], restarts: integer, restart_in_ms: integer|nil }
function M.info()
  local pid = nil
  if S.rpc and S.pidfile then
    local f = io.open(S.pidfile, 'r')
    if f then
      pid = tonumber(f:read('*l') or '')
      f:close()
    end
  end
  return {
    status = state.sidecar(),
    pid = pid,
    log_file = config.log_file(),
    cmd = config.sidecar_command(),
    restarts = S.restarts,
    restart_in_ms = S.restart_at and math.max(0, S.restart_at - uv.now()) or nil,
  }
end

return M
