--- Pure formatting: everything the plugin shows a person, computed from the sidecar's
--- answers and nothing else. No module state, no Neovim side effects, so the tests can
--- feed it any answer.
---
--- Rule kept here: a state, reason or error kind this version does not know is shown by
--- its neutral fallback, never an error, because the protocol only ever grows.

local M = {}

--- Words for account states in lists and the picker.
M.state_words = {
  ok = 'ok',
  expiring = 'expiring',
  expired = 'expired',
  needsLogin = 'needs login',
  unknown = 'unknown',
}

---@param list table|nil an `account/list` result or `account/didChange` params
---@return table|nil account the active account, when a managed one is active
function M.active_account(list)
  if not list or not list.active then
    return nil
  end
  for _, account in ipairs(list.accounts or {}) do
    if account.alias == list.active then
      return account
    end
  end
  return nil
end

--- The status line text.
---@param model { sidecar: string, list: table|nil, shadowed_by: string[]|nil, error: string|nil }
---@param marks table<string, string>
---@param prefix string|nil
---@return string
function M.statusline(model, marks, prefix)
  prefix = prefix or ''
  if model.sidecar == 'missing' then
    return prefix .. (marks.missing or '')
  end
  if model.sidecar == 'down' then
    return prefix .. (marks.down or '')
  end
  local list = model.list
  if not list and model.error then
    return prefix .. (marks.error or '')
  end
  if not list then
    return prefix .. (marks.starting or '')
  end
  local shadow = ''
  if model.shadowed_by and #model.shadowed_by > 0 then
    shadow = marks.shadowed or ''
  end
  local account = M.active_account(list)
  if account then
    return prefix .. account.alias .. (marks[account.state] or '') .. shadow
  end
  local unmanaged = list.unmanaged
  if unmanaged then
    local who = unmanaged.email or unmanaged.organizationName or 'unknown login'
    return prefix .. who .. (marks.unmanaged or '') .. shadow
  end
  return prefix .. (marks.none or '')
end

--- One line describing an account, for the picker and `:Switchboard list`.
---@param account table
---@return string
function M.account_label(account)
  local parts = { (account.active and '* ' or '  ') .. account.alias }
  parts[#parts + 1] = account.email or '(no email)'
  parts[#parts + 1] = account.organizationName or '(no organization)'
  parts[#parts + 1] = M.state_words[account.state] or tostring(account.state or 'unknown')
  return table.concat(parts, '  ')
end

--- The lines of `:Switchboard list`.
---@param list table an `account/list` result
---@return string
function M.list_text(list)
  local lines = {}
  for _, account in ipairs(list.accounts or {}) do
    lines[#lines + 1] = M.account_label(account)
  end
  if #lines == 0 then
    lines[1] = 'no accounts yet: log in with `claude /login`, then :Switchboard add NAME'
  end
  if list.unmanaged then
    lines[#lines + 1] = ('  the login in Claude Code (%s) is not managed: :Switchboard add NAME adopts it'):format(
      list.unmanaged.email or 'unknown account'
    )
  end
  return table.concat(lines, '\n')
end

local function when(ms)
  if type(ms) ~= 'number' then
    return 'never'
  end
  return os.date('%Y-%m-%d %H:%M:%S', math.floor(ms / 1000))
end

--- The lines of `:Switchboard status`.
---@param status table an `account/status` result
---@return string
function M.status_text(status)
  local lines = {}
  local account = status.account
  if account then
    lines[#lines + 1] = M.account_label(account)
    lines[#lines + 1] = ('  token expires %s, validated %s, synced %s, fingerprint %s'):format(
      when(account.expiresAt),
      when(account.validatedAt),
      when(account.syncedAt),
      account.fingerprint or 'none'
    )
  elseif status.unmanaged then
    lines[#lines + 1] = ('the login in Claude Code (%s) is not managed: :Switchboard add NAME adopts it'):format(
      status.unmanaged.email or 'unknown account'
    )
  else
    lines[#lines + 1] = 'no managed account is active'
  end
  local store = status.store or {}
  if store.kind == 'keychain' then
    lines[#lines + 1] = ('  store: keychain %s / %s'):format(store.service or '?', store.account or '?')
  elseif store.kind then
    lines[#lines + 1] = ('  store: %s %s'):format(store.kind, store.path or '')
  end
  if status.shadowedBy and #status.shadowedBy > 0 then
    lines[#lines + 1] = '  shadowed by ' .. table.concat(status.shadowedBy, ', ') .. ': Claude Code ignores the stored login while that is set'
  end
  return table.concat(lines, '\n')
end

--- What to tell a person after a switch, and at which level.
---@param result table an `account/use` result
---@return string message, integer level
function M.use_notice(result)
  local account = result.active or {}
  local who = account.alias or '?'
  local detail = {}
  if account.email then
    detail[#detail + 1] = account.email
  end
  if account.organizationName then
    detail[#detail + 1] = account.organizationName
  end
  if #detail > 0 then
    who = ('%s (%s)'):format(who, table.concat(detail, ', '))
  end
  local sessions = result.sessions or {}
  local follow = sessions.message or 'running Claude Code sessions pick up the new login on their own'
  local shadowed = result.shadowedBy or {}
  if #shadowed > 0 then
    return ('Switchboard: stored login switched to %s, but %s overrides it: %s'):format(
      who,
      table.concat(shadowed, ', '),
      follow
    ),
      vim.log.levels.WARN
  end
  return ('Switchboard: now using %s; %s'):format(who, follow), vim.log.levels.INFO
end

--- Turns a JSON-RPC error from the sidecar into a message a person can act on.
---@param err table|string the error object (`code`, `message`, `data`)
---@param context { alias: string|nil }|nil what the request was about
---@return string message, integer level
function M.error_notice(err, context)
  context = context or {}
  if type(err) ~= 'table' then
    return 'Switchboard: ' .. tostring(err), vim.log.levels.ERROR
  end
  local data = type(err.data) == 'table' and err.data or {}
  local kind = data.kind
  local alias = data.alias or context.alias or 'NAME'
  local said = err.message or 'unknown error'
  local ERROR, WARN = vim.log.levels.ERROR, vim.log.levels.WARN
  local text
  if kind == 'needsLogin' then
    text = ("the login of '%s' has expired for good. Log in again with `claude /login` as that account, then run :Switchboard add %s"):format(
      alias,
      alias
    )
  elseif kind == 'unknownAccount' then
    if alias == '-' then
      text = 'there is no previous account to go back to yet'
    else
      text = ("no account is named '%s': :Switchboard list shows the accounts"):format(alias)
    end
  elseif kind == 'noLogin' then
    text = 'Claude Code has no usable login: log in with `claude /login` first, then run :Switchboard add ' .. alias
  elseif kind == 'busy' then
    local wait = data.retryAfterMs and (' in %d ms'):format(data.retryAfterMs) or ''
    return ('Switchboard: another switch or refresh is running; try again%s'):format(wait), WARN
  elseif kind == 'network' then
    text = "Anthropic's login service could not be reached and nothing changed; check the network and try again"
  elseif kind == 'rateLimited' then
    local wait = data.retryAfterMs and (' (about %d s)'):format(math.ceil(data.retryAfterMs / 1000)) or ''
    return ('Switchboard: the login service asked to slow down; try again later%s'):format(wait), WARN
  elseif kind == 'storeUnavailable' then
    text = ('the login store could not be read or written%s: %s'):format(
      data.store and (' (' .. tostring(data.store.path or data.store.kind or data.store) .. ')') or '',
      said
    )
  elseif kind == 'shadowed' then
    local names = type(data.shadowedBy) == 'table' and table.concat(data.shadowedBy, ', ') or 'an environment variable'
    text = ('%s overrides the stored login; unset it and restart Claude Code: %s'):format(names, said)
  elseif kind == 'aliasTaken' then
    text = ("another account is already named '%s'; pick another name or :Switchboard remove it first"):format(alias)
  elseif kind == 'alreadyManaged' then
    text = ("this login's account is already managed as '%s'; :Switchboard use %s switches to it"):format(alias, alias)
  elseif kind == 'identityMismatch' then
    text = said .. '; log in again with `claude /login` as that account and add it again'
  elseif kind == 'sidecarDown' or kind == 'sidecarMissing' then
    return 'Switchboard: ' .. said, WARN
  else
    text = said
  end
  return 'Switchboard: ' .. text, ERROR
end

return M
