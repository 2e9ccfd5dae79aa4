--- The plugin's view model: the last account list the sidecar reported, the shadowing
--- variables from its last status answer, and whether the sidecar is up. Owns the cached
--- status line text and the announcement of every change (status line redraw and the
--- `User SwitchboardChanged` autocommand).
---
--- Rule kept here: the status line only ever reads this cache. Nothing on the drawing path
--- waits for the sidecar, so a slow or dead sidecar can never freeze the editor.

local config = require('switchboard.config')
local view = require('switchboard.view')

local M = {}

local model = {
  -- idle (not started), starting, running, down (restart pending), missing (no binary).
  sidecar = 'idle',
  list = nil,
  shadowed_by = nil,
  -- Why the last account list could not be read, while no list is known.
  error = nil,
}
local text = nil

local function recompute()
  local cfg = config.get()
  local marks = vim.tbl_extend('force', config.default_marks, cfg.marks or {})
  text = view.statusline(model, marks, cfg.prefix)
end

local function redraw()
  -- Redrawing is only a hint; it fails harmlessly in contexts that forbid it.
  pcall(vim.cmd, 'redrawstatus!')
  local lualine = package.loaded['lualine']
  if lualine and type(lualine.refresh) == 'function' then
    pcall(lualine.refresh, { place = { 'statusline' } })
  end
end

--- Recomputes the text and tells everyone that something changed.
---@param reason string
---@param external boolean|nil
local function announce(reason, external)
  recompute()
  redraw()
  local list = model.list or {}
  pcall(vim.api.nvim_exec_autocmds, 'User', {
    pattern = 'SwitchboardChanged',
    modeline = false,
    data = {
      reason = reason,
      external = external == true,
      sidecar = model.sidecar,
      active = list.active,
      previous = list.previous,
      accounts = vim.deepcopy(list.accounts or {}),
      unmanaged = vim.deepcopy(list.unmanaged),
      shadowedBy = vim.deepcopy(model.shadowed_by or {}),
      statusline = text,
    },
  })
end

---@param status string
function M.set_sidecar(status)
  if model.sidecar == status then
    return
  end
  model.sidecar = status
  announce('sidecar', false)
end

---@return string
function M.sidecar()
  return model.sidecar
end

--- Stores a full account list, from `account/list` or `account/didChange`.
---@param list table
---@param reason string
---@param external boolean|nil
function M.set_list(list, reason, external)
  model.error = nil
  model.list = {
    active = list.active,
    previous = list.previous,
    accounts = list.accounts or {},
    unmanaged = list.unmanaged,
  }
  announce(reason, external)
end

--- Stores what an `account/status` answer says about shadowing.
--- Records that the sidecar answered `account/list` with an error.
---@param message string
function M.set_error(message)
  model.error = message
  announce('error', false)
end

--- Why the account list is unknown, if it is.
---@return string|nil
function M.error()
  return model.error
end

---@param status table
function M.set_status(status)
  local shadowed = status.shadowedBy or {}
  if vim.deep_equal(shadowed, model.shadowed_by or {}) and model.shadowed_by ~= nil then
    return
  end
  model.shadowed_by = shadowed
  announce('status', false)
end

---@param params table `account/didChange` params
function M.on_did_change(params)
  if type(params) ~= 'table' then
    return
  end
  M.set_list(params, params.reason or 'unknown', params.external)
end

--- The cached list, or nil before the first answer.
---@return table|nil
function M.list()
  return model.list
end

---@return string[]
function M.aliases()
  local aliases = {}
  for _, account in ipairs(model.list and model.list.accounts or {}) do
    aliases[#aliases + 1] = account.alias
  end
  return aliases
end

--- The cached status line text.
---@return string
function M.text()
  if text == nil then
    recompute()
  end
  return text
end

--- Recomputes the text after the options changed.
function M.refresh()
  announce('config', false)
end

--- Forgets everything; for tests and `:Switchboard` restarts.
function M.reset()
  model = { sidecar = 'idle', list = nil, shadowed_by = nil, error = nil }
  text = nil
end

return M
