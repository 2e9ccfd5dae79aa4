-- End-to-end tests: a fresh headless Neovim with the plugin, the real `switchboard`
-- sidecar and CLI, and the real fake-anthropic, in a scratch HOME per test.
local h = require('harness')
local env = require('env')

--- A scratch HOME holding `work` (active) and `home`, and a Neovim whose status line has
--- caught up with it.
local function started(name, child_env)
  local scratch = env.scratch(name)
  local accounts = env.two_accounts(scratch)
  -- Variables meant for the editor's session only are set after the accounts exist.
  for key, value in pairs(child_env or {}) do
    scratch.env[key] = value
  end
  local child = env.child(scratch)
  return scratch, child, accounts
end

local function active_alias(scratch)
  local status = vim.json.decode(env.cli_ok(scratch, { '--json', 'status' }).stdout, { luanil = { object = true } })
  return status.account and status.account.alias
end

h.test('e2e: status line after start shows the active account', function()
  local _, child = started('statusline-start')
  h.eq('idle', child:lua("return require('switchboard.state').sidecar()"), 'sidecar before any use')
  local first = child:statusline()
  h.eq('switchboard …', first, 'first status line call answers at once from the cache')
  local _, ms = child:wait_statusline('work')
  h.out(('     status line ready %.0f ms after the first call'):format(ms))
  local last = child:lua('return _G.events[#_G.events].data')
  h.eq('work', last.active, 'SwitchboardChanged data.active')
  h.eq('running', last.sidecar, 'SwitchboardChanged data.sidecar')
  h.eq(2, #last.accounts, 'accounts in the event')
  h.eq('', vim.trim(child:lua("return vim.fn.execute('messages')")), 'messages (sidecar stderr must go to the log)')
end)

h.test('e2e: :Switchboard use home, then use - goes back', function()
  local scratch, child = started('use-inside')
  child:statusline()
  child:wait_statusline('work')
  child:cmd('Switchboard use home')
  child:wait_statusline('home')
  local note = child:wait_notify('now using home')
  h.contains(note.msg, 'Home Org')
  h.contains(note.msg, 'next request', 'sessions.message in the notice')
  h.eq('home', active_alias(scratch), 'active account seen by the CLI')
  child:cmd('Switchboard use -')
  child:wait_statusline('work')
  child:wait_notify('now using work')
  h.eq('work', active_alias(scratch), 'active account after use -')
  child:cmd('Switchboard use nosuch')
  local err = child:wait_notify("no account is named 'nosuch'")
  h.eq(vim.log.levels.ERROR, err.level)
end)

h.test('e2e: a switch made by another process reaches the status line within 1 s', function()
  local scratch, child = started('external-switch')
  child:statusline()
  child:wait_statusline('work')
  child:lua('_G.events = {}')
  local before = vim.uv.hrtime()
  env.cli_ok(scratch, { 'use', 'home' })
  local after = vim.uv.hrtime()
  -- Only waiting happens in Neovim from here on: no command, no request.
  child:wait_statusline('home', 1000)
  local event = child:lua([[
    for _, e in ipairs(_G.events) do
      if e.data.active == 'home' then return { t = e.t, external = e.data.external, reason = e.data.reason } end
    end
  ]])
  h.truthy(event, 'a SwitchboardChanged event for home')
  h.eq(true, event.external, 'the change is marked external')
  local since_cli_done = (event.t - after) / 1e6
  local since_cli_start = (event.t - before) / 1e6
  h.out(
    ('     external switch latency: %.0f ms after `switchboard use home` returned (%.0f ms after it started)'):format(
      since_cli_done,
      since_cli_start
    )
  )
  h.truthy(since_cli_done < 1000, 'latency under 1 s')
end)

h.test('e2e: an external switch redraws the status line and lualine with no action in Neovim', function()
  local scratch, child = started('external-redraw')
  -- What a user's configuration has: the function in 'statusline', and lualine loaded. Each
  -- evaluation of 'statusline' is recorded, so only a real redraw counts, not the cache.
  child:lua([[
    _G.drawn, _G.refreshed = {}, {}
    function _G.record_statusline()
      local text = require('switchboard').statusline()
      table.insert(_G.drawn, { t = vim.uv.hrtime(), text = text })
      return text
    end
    vim.o.laststatus = 2
    vim.o.statusline = '%!v:lua.record_statusline()'
    package.loaded['lualine'] = {
      refresh = function(opts)
        table.insert(_G.refreshed, { t = vim.uv.hrtime(), text = require('switchboard').lualine(), place = opts and opts.place })
      end,
    }
  ]])
  child:cmd('redrawstatus')
  child:wait_statusline('work')
  child:wait_for("_G.drawn[#_G.drawn].text == 'work'", 2000, "'work' drawn")
  local after
  env.cli_ok(scratch, { 'use', 'home' })
  after = vim.uv.hrtime()
  local function first(list_name)
    return child:wait_for(
      ([[(function() for _, d in ipairs(_G.%s) do if d.text == 'home' then return d end end end)()]]):format(list_name),
      1000,
      list_name .. " with 'home' within 1 s of `switchboard use home` returning"
    )
  end
  local drawn, refreshed = first('drawn'), first('refreshed')
  h.eq({ 'statusline' }, refreshed.place, 'lualine.refresh place')
  h.out(
    ('     status line redrawn %.0f ms, lualine refreshed %.0f ms after `switchboard use home` returned'):format(
      math.max(0, drawn.t - after) / 1e6,
      math.max(0, refreshed.t - after) / 1e6
    )
  )
end)

h.test('e2e: completion offers subcommands and cached aliases', function()
  local _, child = started('completion')
  child:statusline()
  child:wait_statusline('work')
  local complete = function(line)
    return child:lua('return vim.fn.getcompletion(..., "cmdline")', line)
  end
  h.eq({ 'use', 'list', 'status', 'add', 'remove' }, complete('Switchboard '))
  h.eq({ 'status' }, complete('Switchboard st'))
  h.eq({ 'home', 'work', '-' }, complete('Switchboard use '))
  h.eq({ 'home' }, complete('Switchboard use h'))
  h.eq({ 'home' }, complete('silent Switchboard use h'), 'after a modifier')
  -- Neovim runs a user command from any unambiguous prefix of its name.
  h.eq({ 'home' }, complete('Switchb use h'), 'abbreviated command')
  h.eq({ 'home', 'work', '-' }, complete('Sw use '), 'short abbreviation')
  h.eq({ 'home', 'work' }, complete("silent! Switchboard! remove "), 'bang and modifier')
  h.eq({ 'use' }, complete('Switchb u'), 'subcommand after an abbreviation')
  h.eq({}, complete('Switchboard use home '), 'no third word')
  h.eq({ 'home', 'work' }, complete('Switchboard remove '))
  h.eq({}, complete('Switchboard add '))
end)

h.test('e2e: :Switchboard use without alias opens the picker', function()
  local _, child = started('picker')
  child:statusline()
  child:wait_statusline('work')
  child:lua([[
    vim.ui.select = function(items, opts, on_choice)
      _G.picked = { prompt = opts.prompt, labels = vim.tbl_map(opts.format_item, items) }
      for _, item in ipairs(items) do
        if item.alias == 'home' then on_choice(item) end
      end
    end
  ]])
  child:cmd('Switchboard use')
  child:wait_statusline('home')
  local picked = child:lua('return _G.picked')
  h.eq(2, #picked.labels, 'items in the picker')
  h.truthy(picked.labels[1]:match('^  home  ada%.picker@home%.example  Home Org  ok$'), 'home item: ' .. picked.labels[1])
  h.truthy(picked.labels[2]:match('^%* work  ada%.picker@work%.example  Work Org  ok$'), 'work item: ' .. picked.labels[2])
end)

h.test('e2e: a refused refresh token gives a needs-login message', function()
  -- Short-lived access tokens make every switch refresh, so the revoked lineage shows.
  local settings = env.control('PUT', '/_control/settings', {})
  env.control('PUT', '/_control/settings', { accessTokenLifetimeSecs = 120 })
  h.defer(function()
    env.control('PUT', '/_control/settings', { accessTokenLifetimeSecs = settings.accessTokenLifetimeSecs })
  end)
  local scratch = env.scratch('needs-login')
  local accounts = env.two_accounts(scratch)
  env.control('POST', ('/_control/lineages/%s/revoke'):format(accounts.home.lineage))
  local child = env.child(scratch)
  child:statusline()
  -- Its access token lives 120 s, so work is shown as expiring.
  child:wait_statusline('work ~')
  child:cmd('Switchboard use home')
  local note = child:wait_notify('has expired for good')
  h.eq(vim.log.levels.ERROR, note.level)
  h.contains(note.msg, 'claude /login')
  h.contains(note.msg, ':Switchboard add home')
  h.eq('work ~', child:statusline(), 'status line after the refused switch')
  -- The sidecar then reports home's state through account/didChange, with no command;
  -- at the latest on its 5 s backstop tick.
  child:wait_for(
    [[(function() for _, a in ipairs(require('switchboard').view().accounts) do if a.alias == 'home' then return a.state == 'needsLogin' end end end)()]],
    7000,
    "home's state shown as needsLogin"
  )
  h.eq('work', active_alias(scratch), 'nothing changed in the live store')
end)

h.test('e2e: a killed sidecar is shown down, then restarted', function()
  local _, child = started('sidecar-restart')
  child:statusline()
  child:wait_statusline('work')
  local pid = child:wait_for("require('switchboard').info().pid", 2000, 'sidecar pid')
  h.truthy(vim.uv.kill(pid, 'sigterm') == 0, 'kill the sidecar')
  local _, down_ms = child:wait_statusline('switchboard down', 2000)
  local _, back_ms = child:wait_statusline('work', 5000)
  h.out(('     down shown after %.0f ms, back %.0f ms later'):format(down_ms, back_ms))
  h.truthy(back_ms >= 500, 'the restart waits for its delay (about 1 s)')
  local info = child:lua("return require('switchboard').info()")
  h.eq(1, info.restarts, 'restarts')
  h.truthy(info.pid and info.pid ~= pid, 'a new sidecar process')
  local log = table.concat(vim.fn.readfile(info.log_file), '\n')
  h.contains(log, 'restarting in 1000 ms', 'log file')
  h.eq('', vim.trim(child:lua("return vim.fn.execute('messages')")), 'messages')
  child:cmd('Switchboard use home')
  child:wait_statusline('home')
end)

h.test('e2e: checkhealth reports binary, version, store and shadowing', function()
  local scratch, child = started('checkhealth', { ANTHROPIC_API_KEY = 'not-a-real-key' })
  local version = vim.trim(env.cli_ok(scratch, { '--version' }).stdout)
  local function health()
    child:cmd('checkhealth switchboard')
    local text = table.concat(child:lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)'), '\n')
    child:cmd('bwipeout!')
    return text
  end
  -- With no sidecar running yet, the check asks the CLI.
  local text = health()
  h.contains(text, 'found ' .. scratch.bin .. '/switchboard')
  h.contains(text, 'version: ' .. version)
  h.contains(text, 'asking the CLI instead')
  h.contains(text, 'store reachable: file ' .. scratch.home .. '/.claude/.credentials.json')
  h.contains(text, 'ANTHROPIC_API_KEY is set')
  h.not_contains(text, 'ERROR')
  -- With the sidecar running, through it; the status line also marks the shadowing.
  child:statusline()
  child:wait_statusline('work (shadowed)')
  text = health()
  h.contains(text, 'sidecar running')
  h.contains(text, 'store reachable: file ' .. scratch.home .. '/.claude/.credentials.json')
  h.contains(text, 'active account: work')
  h.contains(text, 'ANTHROPIC_API_KEY is set')
  -- A switch while shadowed warns that it does not take effect in Claude Code.
  child:cmd('Switchboard use home')
  local note = child:wait_notify('overrides it')
  h.contains(note.msg, 'ANTHROPIC_API_KEY')
  h.eq(vim.log.levels.WARN, note.level)
end)

h.test('e2e: remove, a new login shown as not managed, then add', function()
  local scratch, child = started('add-remove')
  child:statusline()
  child:wait_statusline('work')
  child:cmd('Switchboard! remove home')
  child:wait_notify("forgot 'home'")
  child:wait_for([[vim.deep_equal(vim.fn.getcompletion('Switchboard use ', 'cmdline'), { 'work', '-' })]], 2000, 'aliases after remove')
  -- What `claude /login` with a third account leaves behind, seen without any command.
  env.login(scratch, 'grace.addremove@new.example', 'New Org')
  child:wait_statusline('grace.addremove@new.example (not managed)', 2000)
  child:cmd('Switchboard add new')
  child:wait_notify('added new')
  child:wait_statusline('new')
  child:cmd('Switchboard list')
  local listing = child:wait_notify('* new')
  h.contains(listing.msg, 'work  ada.addremove@work.example  Work Org')
end)

h.test('e2e: setup() naming the binary after a missing one starts the sidecar', function()
  -- A plugin manager may run setup() only after the status line first tried the default.
  local scratch, child = started('setup-after-missing')
  child:lua("require('switchboard').setup({ cmd = '/nonexistent/switchboard' })")
  child:statusline()
  child:wait_statusline('switchboard not found', 2000)
  child:lua("require('switchboard').setup({ cmd = ... })", scratch.bin .. '/switchboard')
  child:wait_statusline('work', 5000)
end)

h.test('e2e: setup() again restarts the sidecar only when its options changed', function()
  local _, child = started('setup-twice')
  child:statusline()
  child:wait_statusline('work')
  local pid = child:wait_for("require('switchboard').info().pid", 2000, 'sidecar pid')
  child:lua("require('switchboard').setup({ prefix = 'Claude: ' })")
  child:wait_statusline('Claude: work')
  h.eq(pid, child:lua("return require('switchboard').info().pid"), 'same sidecar after a change of prefix')
  child:lua("require('switchboard').setup({ prefix = 'Claude: ', log_level = 'debug' })")
  child:wait_for(("(require('switchboard').info().pid or %d) ~= %d"):format(pid, pid), 3000, 'a new sidecar after a change of log_level')
  child:wait_statusline('Claude: work')
end)

h.test('e2e: after stop() and restart(), a death of the new sidecar still restarts it', function()
  local _, child = started('stop-restart')
  child:statusline()
  child:wait_statusline('work')
  child:lua("require('switchboard').stop(); require('switchboard').restart()")
  child:wait_for("require('switchboard').info().status == 'running'", 3000, 'running again')
  local pid = child:wait_for("require('switchboard').info().pid", 2000, 'sidecar pid')
  h.truthy(vim.uv.kill(pid, 'sigterm') == 0, 'kill the sidecar')
  child:wait_statusline('switchboard down', 2000)
  child:wait_statusline('work', 5000)
end)

h.test('e2e: a sidecar that keeps dying is restarted with doubling delays up to the cap', function()
  local scratch = env.scratch('backoff')
  local child = env.child(scratch)
  -- A command that dies at once, as a broken install would; short delays keep this quick.
  child:lua(
    "require('switchboard').setup({ cmd = { 'sh', '-c', 'exit 3' }, restart = { initial_ms = 100, max_ms = 400 } })"
  )
  child:statusline()
  child:wait_for("require('switchboard').info().restarts >= 4", 5000, 'four restarts')
  h.eq('switchboard down', child:statusline(), 'status line while it keeps dying')
  local info = child:lua("return require('switchboard').info()")
  local delays = {}
  for _, line in ipairs(vim.fn.readfile(info.log_file)) do
    local ms = line:match('restarting in (%d+) ms')
    if ms then
      delays[#delays + 1] = tonumber(ms)
    end
  end
  h.eq({ 100, 200, 400, 400 }, vim.list_slice(delays, 1, 4), 'restart delays from the log')
  h.eq('down', info.status, 'info().status')
  child:cmd('Switchboard list')
  -- Depending on whether a doomed process is alive at that moment, the request is refused
  -- at once or fails when it dies; either way the person learns it restarts on its own.
  local note = child:wait_notify('restarts')
  h.contains(note.msg, 'switchboard.log', 'the message names the log')
  h.eq(vim.log.levels.WARN, note.level)
  h.eq('', vim.trim(child:lua("return vim.fn.execute('messages')")), 'messages')
end)
