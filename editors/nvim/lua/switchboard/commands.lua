--- The `:Switchboard` command: parsing, completion, and the requests behind each
--- subcommand, with every answer and error turned into a message for the user.
---
--- Rule kept here: completion reads only the cached account list; it never waits for the
--- sidecar. Errors are told by their `data.kind`, with the next step to take.

local client = require('switchboard.client')
local state = require('switchboard.state')
local view = require('switchboard.view')

local M = {}

local function notify(message, level)
  vim.notify(message, level or vim.log.levels.INFO)
end

local function notify_error(err, context)
  local message, level = view.error_notice(err, context)
  notify(message, level)
end

--- Switches to `alias` and reports the outcome.
---@param alias string
---@param callback fun(err: table|nil, result: table|nil)|nil
function M.use(alias, callback)
  client.request('account/use', { alias = alias }, function(err, result)
    if err then
      notify_error(err, { alias = alias })
    elseif type(result) == 'table' then
      notify(view.use_notice(result))
    end
    if callback then
      callback(err, result)
    end
  end)
end

--- Opens `vim.ui.select` over the accounts and switches to the one chosen.
function M.pick()
  local function open(list)
    local accounts = list.accounts or {}
    if #accounts == 0 then
      notify(view.list_text(list))
      return
    end
    vim.ui.select(accounts, {
      prompt = 'Switch Claude Code to',
      kind = 'switchboard',
      format_item = view.account_label,
    }, function(choice)
      if choice then
        M.use(choice.alias)
      end
    end)
  end
  client.request('account/list', {}, function(err, result)
    if err then
      local cached = state.list()
      if cached then
        open(cached)
      else
        notify_error(err)
      end
      return
    end
    open(result)
  end)
end

local function list()
  client.request('account/list', {}, function(err, result)
    if err then
      notify_error(err)
      return
    end
    notify(view.list_text(result))
  end)
end

local function status(alias)
  client.request('account/status', { alias = alias }, function(err, result)
    if err then
      notify_error(err, { alias = alias })
      return
    end
    notify(view.status_text(result))
  end)
end

local function add(alias)
  if not alias then
    notify('Switchboard: usage: :Switchboard add NAME (adopts the login now in Claude Code)', vim.log.levels.ERROR)
    return
  end
  client.request('account/add', { alias = alias }, function(err, result)
    if err then
      notify_error(err, { alias = alias })
      return
    end
    notify(('Switchboard: added %s'):format((view.account_label(result):gsub('^[* ] ', ''))))
  end)
end

local function remove(alias, confirmed)
  if not alias then
    notify('Switchboard: usage: :Switchboard remove NAME', vim.log.levels.ERROR)
    return
  end
  local function go()
    client.request('account/remove', { alias = alias }, function(err, result)
      if err then
        notify_error(err, { alias = alias })
        return
      end
      notify(("Switchboard: forgot '%s'"):format(result and result.removed or alias))
    end)
  end
  if confirmed then
    go()
    return
  end
  local prompt = ("Forget '%s' and delete its snapshot? Its login then has to be made again"):format(alias)
  vim.ui.select({ 'Forget ' .. alias, 'Keep it' }, { prompt = prompt, kind = 'switchboard.confirm' }, function(_, index)
    if index == 1 then
      go()
    end
  end)
end

M.subcommands = { 'use', 'list', 'status', 'add', 'remove' }

--- Runs `:Switchboard[!] [SUBCOMMAND [ARG]]`. Without arguments it opens the picker.
---@param opts { fargs: string[], bang: boolean }
function M.run(opts)
  local sub, arg = opts.fargs[1], opts.fargs[2]
  if opts.fargs[3] then
    notify('Switchboard: too many arguments', vim.log.levels.ERROR)
    return
  end
  if sub == nil then
    M.pick()
  elseif sub == 'use' then
    if arg then
      M.use(arg)
    else
      M.pick()
    end
  elseif sub == 'list' then
    list()
  elseif sub == 'status' then
    status(arg)
  elseif sub == 'add' then
    add(arg)
  elseif sub == 'remove' then
    remove(arg, opts.bang)
  else
    notify(
      ("Switchboard: unknown subcommand '%s'; use one of %s"):format(sub, table.concat(M.subcommands, ', ')),
      vim.log.levels.ERROR
    )
  end
end

local function starting_with(candidates, prefix)
  return vim.tbl_filter(function(c)
    return vim.startswith(c, prefix)
  end, candidates)
end

--- Whether a word of a command line is `:Switchboard` itself, as typed: Neovim accepts any
--- prefix of a user command's name that no other command shares, so the word is checked as a
--- prefix of the name rather than the name in full.
---@param word string
---@return boolean
local function is_command_word(word)
  local name = word:gsub('^[^%a]*', ''):gsub('!$', '')
  return #name >= 1 and name:match('^%u') ~= nil and vim.startswith('Switchboard', name)
end

--- Completion for `:Switchboard`, from the cached account list.
---@param arglead string
---@param cmdline string
---@return string[]
function M.complete(arglead, cmdline)
  -- A completion request is a good moment to start the sidecar so the next one has names.
  if state.sidecar() == 'idle' then
    vim.schedule(client.ensure)
  end
  local words = vim.split(cmdline, '%s+', { trimempty = true })
  -- Drop modifiers such as `:silent` so that the command itself comes first. The command
  -- may be any prefix of its name (`:Switchb`), after a range and before a `!`.
  while words[1] and not is_command_word(words[1]) do
    table.remove(words, 1)
  end
  -- An empty arglead means a new word is starting.
  local index = #words - (arglead == '' and 0 or 1)
  if index <= 1 then
    return starting_with(M.subcommands, arglead)
  end
  if index == 2 then
    local sub = words[2]
    if sub == 'use' then
      local aliases = state.aliases()
      table.insert(aliases, '-')
      return starting_with(aliases, arglead)
    elseif sub == 'status' or sub == 'remove' then
      return starting_with(state.aliases(), arglead)
    end
  end
  return {}
end

return M
