--- Switchboard for Neovim: the public Lua API. `setup()` is optional; everything else
--- starts the sidecar on first use.
---
--- Rule kept here: requiring this module does no work. The sidecar starts on the first
--- status line call or command, and the status line only ever reads a cache.

local M = {}

local started_by_statusline = false

--- What the sidecar is started with; a change to it needs a new sidecar.
local function sidecar_options(config)
  return { config.sidecar_command(), config.sidecar_env(), config.log_file() }
end

--- Applies options; see `:help switchboard-setup`. Safe to call more than once: when a
--- sidecar was started (or could not be) and `cmd`, `log_level` or `log_file` changed, a new
--- one is started with them; a change of marks or prefix only redraws.
---@param opts table|nil
function M.setup(opts)
  local config = require('switchboard.config')
  local before = sidecar_options(config)
  local err = config.apply(opts)
  if err then
    vim.notify('Switchboard: setup: ' .. err, vim.log.levels.ERROR)
    return
  end
  local state = require('switchboard.state')
  -- 'missing' counts as started: a setup() that names the binary, run after the status line
  -- first tried the default one, must try again rather than leave "not found" up.
  if state.sidecar() ~= 'idle' and not vim.deep_equal(before, sidecar_options(config)) then
    require('switchboard.client').restart()
  else
    state.refresh()
  end
end

--- The status line text: the active account's alias and a mark for its state. Never
--- waits: the first call schedules the sidecar's start and answers what is cached.
---@return string
function M.statusline()
  local state = require('switchboard.state')
  if not started_by_statusline and state.sidecar() == 'idle' then
    started_by_statusline = true
    -- Spawning from inside a status line evaluation is not allowed everywhere, so the
    -- start waits for the main loop.
    vim.schedule(function()
      if state.sidecar() == 'idle' then
        require('switchboard.client').ensure()
      end
    end)
  end
  return state.text()
end

--- A lualine component: `sections = { lualine_x = { require('switchboard').lualine } }`.
--- `lualine_x = { 'switchboard' }` works as well, through lualine/components/switchboard.lua.
function M.lualine()
  return M.statusline()
end

--- The cached view: `{ sidecar, active, previous, accounts, unmanaged }`.
---@return table
function M.view()
  local state = require('switchboard.state')
  local list = state.list() or {}
  return vim.deepcopy({
    sidecar = state.sidecar(),
    active = list.active,
    previous = list.previous,
    accounts = list.accounts or {},
    unmanaged = list.unmanaged,
  })
end

--- Switches Claude Code to `alias` (`'-'`: the previous account), telling the user how it
--- went. `callback(err, result)` is optional.
---@param alias string
---@param callback fun(err: table|nil, result: table|nil)|nil
function M.use(alias, callback)
  require('switchboard.commands').use(alias, callback)
end

--- Sends any protocol request; see `:help switchboard-api`.
---@param method string
---@param params table|nil
---@param callback fun(err: table|nil, result: any)
function M.request(method, params, callback)
  require('switchboard.client').request(method, params, callback)
end

--- Facts about the sidecar: status, pid, log file, command, restarts.
---@return table
function M.info()
  return require('switchboard.client').info()
end

--- Stops the sidecar; the next command or status line call starts it again.
function M.stop()
  started_by_statusline = false
  require('switchboard.client').stop()
end

--- Restarts the sidecar now.
function M.restart()
  require('switchboard.client').restart()
end

return M
