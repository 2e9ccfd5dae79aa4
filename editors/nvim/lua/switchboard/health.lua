--- `:checkhealth switchboard`: is the binary there, which version, can the store be read
--- through the sidecar (or the CLI when no sidecar runs), and does anything shadow the
--- stored login.
---
--- Rule kept here: a health check may wait, briefly and boundedly, but never spends a
--- token: it asks for status without validation, which uses no network.

local M = {}

local SHADOWING_ENV = {
  'CLAUDE_CODE_OAUTH_TOKEN',
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR',
}

local WAIT_MS = 5000

local function status_through_sidecar()
  local client = require('switchboard.client')
  local done, err, result = false, nil, nil
  client.request('account/status', {}, function(e, r)
    done, err, result = true, e, r
  end)
  if not vim.wait(WAIT_MS, function()
    return done
  end, 20) then
    return nil, ('the sidecar did not answer account/status within %d ms'):format(WAIT_MS)
  end
  if err then
    return nil, err
  end
  return result, nil
end

local function status_through_cli(binary)
  local ok, obj = pcall(function()
    return vim.system({ binary, '--json', 'status' }, { text = true }):wait(WAIT_MS)
  end)
  if not ok then
    return nil, tostring(obj)
  end
  if obj.code ~= 0 then
    local said = vim.trim(obj.stderr or '')
    return nil, ('`switchboard --json status` exited with %d: %s'):format(obj.code, said)
  end
  local decoded_ok, decoded = pcall(vim.json.decode, obj.stdout or '', { luanil = { object = true } })
  if not decoded_ok or type(decoded) ~= 'table' then
    return nil, '`switchboard --json status` printed something that is not JSON'
  end
  return decoded, nil
end

--- Reports what shadows the stored login: the sidecar's answer when there is one, and the
--- variables of this Neovim, which every Claude Code started from it inherits.
---@param status table|nil an `account/status` result
local function check_shadowing(status)
  local health = vim.health
  health.start('switchboard: shadowing')
  local shadowed = {}
  for _, name in ipairs(status and status.shadowedBy or {}) do
    shadowed[name] = true
  end
  for _, name in ipairs(SHADOWING_ENV) do
    local value = vim.env[name]
    if value ~= nil and value ~= '' then
      shadowed[name] = true
    end
  end
  local names = vim.tbl_keys(shadowed)
  table.sort(names)
  if #names == 0 then
    health.ok('nothing shadows the stored login')
  else
    for _, name in ipairs(names) do
      health.warn(('%s is set: Claude Code uses it instead of the stored login, so switching has no effect there'):format(name), {
        ('Unset %s in the environment Claude Code starts from, then restart it'):format(name),
      })
    end
  end
end

function M.check()
  local health = vim.health
  local config = require('switchboard.config')
  local client = require('switchboard.client')
  local view = require('switchboard.view')

  health.start('switchboard: binary')
  local binary = config.binary()
  local path = vim.fn.exepath(binary)
  if path == '' then
    health.error(('%s not found'):format(binary), {
      'Build and install it: cargo install --path server',
      "Or point the plugin at it: require('switchboard').setup({ cmd = '/path/to/switchboard' })",
    })
    -- A shadowing variable is worth knowing about before the binary is even installed.
    check_shadowing(nil)
    return
  end
  health.ok('found ' .. path)
  local ok, obj = pcall(function()
    return vim.system({ path, '--version' }, { text = true }):wait(WAIT_MS)
  end)
  if ok and obj.code == 0 then
    health.ok('version: ' .. vim.trim(obj.stdout or ''))
  else
    health.warn('`switchboard --version` failed: ' .. (ok and vim.trim(obj.stderr or '') or tostring(obj)))
  end

  health.start('switchboard: sidecar')
  local info = client.info()
  health.info('log file: ' .. info.log_file)
  local status, err
  if info.status == 'starting' or info.status == 'running' then
    health.ok(('sidecar %s, pid %s, %d restart(s)'):format(info.status, tostring(info.pid or '?'), info.restarts))
    status, err = status_through_sidecar()
  else
    if info.status == 'down' then
      health.warn(('sidecar down, restarting in %d ms; see the log file'):format(info.restart_in_ms or 0))
    else
      health.info('sidecar ' .. info.status .. ': asking the CLI instead')
    end
    status, err = status_through_cli(path)
  end

  health.start('switchboard: login store')
  if not status then
    local message = type(err) == 'table' and select(1, view.error_notice(err)) or tostring(err)
    health.error('store not reachable: ' .. message)
  else
    local store = status.store or {}
    local where = store.path or (store.service and (store.service .. ' / ' .. (store.account or '?'))) or '?'
    health.ok(('store reachable: %s %s'):format(store.kind or '?', where))
    if status.configDir then
      health.info('Claude config folder: ' .. status.configDir)
    end
    if status.account then
      local account = status.account
      local line = 'active account: ' .. (view.account_label(account):gsub('^[* ] ', ''))
      if account.state == 'needsLogin' or account.state == 'expired' then
        health.warn(line)
      else
        health.ok(line)
      end
    elseif status.unmanaged then
      health.warn(
        ('the login in Claude Code (%s) is not managed'):format(status.unmanaged.email or 'unknown account'),
        { ':Switchboard add NAME adopts it' }
      )
    else
      health.info('no managed account is active')
    end
  end

  check_shadowing(status)
end

return M
