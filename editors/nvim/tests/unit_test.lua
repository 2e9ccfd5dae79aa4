-- Tests of the plugin's own logic that need no sidecar: formatting, options, the restart
-- delays, the lazy command definition, the lualine component and the help tags.
local h = require('harness')
local env = require('env')

local view = require('switchboard.view')
local config = require('switchboard.config')

local function account(alias, state, active)
  return {
    alias = alias,
    email = alias .. '@example.com',
    organizationName = alias .. ' org',
    state = state,
    active = active,
  }
end

local marks = config.default_marks

h.test('unit: status line shows the alias and a mark per state', function()
  for state, mark in pairs({ ok = '', expiring = ' ~', expired = ' !', needsLogin = ' !login', unknown = ' ?' }) do
    local list = { active = 'work', accounts = { account('home', 'ok', false), account('work', state, true) } }
    h.eq('work' .. mark, view.statusline({ sidecar = 'running', list = list }, marks), state)
  end
  local future = { active = 'work', accounts = { account('work', 'someNewState', true) } }
  h.eq('work', view.statusline({ sidecar = 'running', list = future }, marks), 'a state this version does not know')
end)

h.test('unit: status line for no login, unmanaged, shadowed, starting, down, missing', function()
  h.eq('no Claude login', view.statusline({ sidecar = 'running', list = { accounts = {} } }, marks))
  local unmanaged = { accounts = { account('work', 'ok', false) }, unmanaged = { email = 'new@example.com' } }
  h.eq('new@example.com (not managed)', view.statusline({ sidecar = 'running', list = unmanaged }, marks))
  local list = { active = 'work', accounts = { account('work', 'ok', true) } }
  h.eq('work (shadowed)', view.statusline({ sidecar = 'running', list = list, shadowed_by = { 'ANTHROPIC_API_KEY' } }, marks))
  h.eq('switchboard …', view.statusline({ sidecar = 'starting' }, marks))
  h.eq('switchboard down', view.statusline({ sidecar = 'down', list = list }, marks))
  h.eq('switchboard not found', view.statusline({ sidecar = 'missing' }, marks))
  h.eq('switchboard error', view.statusline({ sidecar = 'running', error = 'store unreadable' }, marks))
  h.eq('Claude: work', view.statusline({ sidecar = 'running', list = list }, marks, 'Claude: '), 'prefix')
end)

h.test('unit: picker label shows alias, email, organization, state and the active mark', function()
  h.eq('* work  work@example.com  work org  needs login', view.account_label(account('work', 'needsLogin', true)))
  h.eq('  home  (no email)  (no organization)  ok', view.account_label({ alias = 'home', state = 'ok', active = false }))
end)

h.test('unit: error notices branch on data.kind and say what to do', function()
  local msg, level = view.error_notice({ code = -32002, message = 'x', data = { kind = 'needsLogin', alias = 'old' } })
  h.contains(msg, 'claude /login')
  h.contains(msg, ':Switchboard add old')
  h.eq(vim.log.levels.ERROR, level)
  msg = view.error_notice({ code = -32001, message = 'x', data = { kind = 'unknownAccount', alias = '-' } })
  h.contains(msg, 'no previous account')
  msg, level = view.error_notice({ code = -32005, message = 'x', data = { kind = 'busy', retryAfterMs = 250 } })
  h.contains(msg, 'try again in 250 ms')
  h.eq(vim.log.levels.WARN, level)
  msg = view.error_notice({ code = -32099, message = 'said by the sidecar', data = { kind = 'someFutureKind' } })
  h.eq('Switchboard: said by the sidecar', msg, 'an unknown kind falls back to the message')
end)

h.test('unit: use notice repeats sessions.message and warns when shadowed', function()
  local result = {
    active = account('home', 'ok', true),
    previous = 'work',
    sessions = { follow = 'nextRequest', message = 'running Claude Code sessions switch on their next request' },
    shadowedBy = {},
  }
  local msg, level = view.use_notice(result)
  h.contains(msg, 'home (home@example.com, home org)')
  h.contains(msg, 'running Claude Code sessions switch on their next request')
  h.eq(vim.log.levels.INFO, level)
  result.shadowedBy = { 'CLAUDE_CODE_OAUTH_TOKEN' }
  result.sessions = { follow = 'restart', message = 'restart them' }
  msg, level = view.use_notice(result)
  h.contains(msg, 'CLAUDE_CODE_OAUTH_TOKEN overrides it')
  h.contains(msg, 'restart them')
  h.eq(vim.log.levels.WARN, level)
end)

h.test('unit: options, RUST_LOG and restart delays', function()
  h.eq('debug', config.rust_level('DEBUG'))
  h.eq('warn', config.rust_level(vim.log.levels.WARN))
  h.eq(nil, config.rust_level(false))
  h.truthy(config.check({ log_level = 'loud' }), 'an unknown level is refused')
  h.truthy(config.check({ cmd = 42 }), 'a numeric cmd is refused')
  h.truthy(config.check({ cmd = {} }), 'an empty command is refused')
  h.eq(nil, config.apply({ cmd = '/opt/sb', log_level = 'debug', restart = { initial_ms = 1000, max_ms = 5000 } }))
  h.eq({ '/opt/sb', 'serve', '--framing', 'lsp' }, config.sidecar_command())
  h.eq({ RUST_LOG = 'warn,switchboard=debug' }, config.sidecar_env())
  local delays = {}
  for attempt = 1, 5 do
    delays[attempt] = config.restart_delay(attempt)
  end
  h.eq({ 1000, 2000, 4000, 5000, 5000 }, delays)
  h.eq(nil, config.apply({ cmd = { 'x', 'serve' } }))
  h.eq({ 'x', 'serve' }, config.sidecar_command(), 'a list is used as it is')
  h.eq('x', config.binary())
  config.apply({})
end)

h.test('unit: the plugin file defines :Switchboard without loading the plugin', function()
  local child = env.child(env.scratch('lazy-load'))
  h.eq(2, child:lua("return vim.fn.exists(':Switchboard')"), ':Switchboard exists')
  h.eq(
    {},
    child:lua([[
      local loaded = {}
      for name in pairs(package.loaded) do
        if name:match('^switchboard') then table.insert(loaded, name) end
      end
      return loaded
    ]]),
    'switchboard modules loaded at startup'
  )
end)

h.test('unit: a missing binary is reported once, and the status line says so', function()
  local scratch = env.scratch('missing-binary')
  local child = env.child(scratch)
  child:lua("require('switchboard').setup({ cmd = '/nonexistent/switchboard' })")
  child:lua("return require('switchboard').statusline()")
  child:wait_statusline('switchboard not found', 2000)
  child:cmd('Switchboard list')
  child:wait_notify("the switchboard binary '/nonexistent/switchboard' was not found")
  local notes = child:lua('return _G.notes')
  local told = 0
  for _, n in ipairs(notes) do
    if n.msg:find('cannot run', 1, true) then
      told = told + 1
    end
  end
  h.eq(1, told, 'times the missing binary was told')
end)

h.test('unit: setup refuses bad options with the option name', function()
  local child = env.child(env.scratch('bad-setup'))
  child:lua("require('switchboard').setup({ log_level = 'loud' })")
  child:wait_notify('log_level: unknown level')
end)

h.test('unit: lualine component shows the status line text', function()
  local child = env.child(env.scratch('lualine'))
  local text = child:lua([[
    -- A stand-in for lualine's base class: only the part the component relies on.
    package.preload['lualine.component'] = function()
      local base = {}
      function base:extend() local c = setmetatable({}, { __index = self }); c.__index = c; return c end
      return base
    end
    require('switchboard').setup({ cmd = '/nonexistent/switchboard', prefix = 'Claude: ' })
    local component = require('lualine.components.switchboard')
    local instance = setmetatable({}, component)
    require('switchboard').statusline()
    vim.wait(1000, function() return require('switchboard').info().status == 'missing' end)
    return { component = instance:update_status(), fn = require('switchboard').lualine() }
  ]])
  h.eq({ component = 'Claude: switchboard not found', fn = 'Claude: switchboard not found' }, text)
end)

h.test('unit: help file has tags and :help switchboard opens it', function()
  local scratch = env.scratch('helptags')
  local copy = scratch.home .. '/plugin-copy'
  vim.fn.mkdir(copy .. '/doc', 'p')
  vim.fn.writefile(vim.fn.readfile(env.root .. '/doc/switchboard.txt', 'b'), copy .. '/doc/switchboard.txt', 'b')
  local child = env.child(scratch)
  child:lua('vim.opt.runtimepath:prepend(...)', copy)
  child:cmd('helptags ' .. vim.fn.fnameescape(copy .. '/doc'))
  local tags = table.concat(vim.fn.readfile(copy .. '/doc/tags'), '\n')
  for _, tag in ipairs({
    'switchboard',
    ':Switchboard',
    ':Switchboard-use',
    ':Switchboard-add',
    ':Switchboard-remove',
    'switchboard-setup',
    'switchboard-marks',
    'switchboard.statusline()',
    'SwitchboardChanged',
    'switchboard-health',
  }) do
    h.contains(tags, tag .. '\tswitchboard.txt', 'tags')
  end
  child:cmd('help switchboard')
  h.contains(child:lua('return vim.api.nvim_buf_get_name(0)'), 'plugin-copy/doc/switchboard.txt')
  child:cmd('help switchboard-marks')
  h.contains(child:lua("return vim.api.nvim_get_current_line()"), '*switchboard-marks*')
end)

h.test('unit: checkhealth without the binary says how to get it and still checks shadowing', function()
  local scratch = env.scratch('health-missing', { CLAUDE_CODE_OAUTH_TOKEN = 'not-a-real-token' })
  local child = env.child(scratch)
  child:lua("require('switchboard').setup({ cmd = '/nonexistent/switchboard' })")
  child:cmd('checkhealth switchboard')
  local text = table.concat(child:lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)'), '\n')
  h.contains(text, 'ERROR /nonexistent/switchboard not found')
  h.contains(text, 'cargo install --path server')
  h.contains(text, "setup({ cmd = '/path/to/switchboard' })")
  h.contains(text, 'switchboard: shadowing')
  h.contains(text, 'CLAUDE_CODE_OAUTH_TOKEN is set')
  h.not_contains(text, 'not-a-real-token', 'the value of a secret variable')
end)

h.test('unit: help file parses as vimdoc, fits in 78 columns and every link resolves', function()
  local path = env.root .. '/doc/switchboard.txt'
  local lines = vim.fn.readfile(path)
  local wide = {}
  for i, line in ipairs(lines) do
    if vim.fn.strdisplaywidth(line) > 78 then
      wide[#wide + 1] = ('%d: %s'):format(i, line)
    end
  end
  h.eq({}, wide, 'lines wider than the textwidth of 78 the modeline sets')
  local text = table.concat(lines, '\n')
  local root = vim.treesitter.get_string_parser(text, 'vimdoc'):parse()[1]:root()
  local errors = {}
  local query = vim.treesitter.query.parse('vimdoc', '(ERROR) @error')
  for _, node in query:iter_captures(root, text) do
    local row = node:start()
    -- The parser takes every modeline for an error, Neovim's own help files' included.
    if not lines[row + 1]:match('^%s*vim:') then
      errors[#errors + 1] = ('%d: %s'):format(row + 1, lines[row + 1])
    end
  end
  h.eq({}, errors, 'vimdoc parse errors')
  local tags = {}
  for tag in text:gmatch('%*([^%s*|]+)%*') do
    tags[tag] = true
  end
  local unresolved = {}
  local links = vim.treesitter.query.parse('vimdoc', '(taglink (word) @link)')
  for _, node in links:iter_captures(root, text) do
    local link = vim.treesitter.get_node_text(node, text)
    -- Links to Neovim's own help resolve through its tags file.
    if not tags[link] and #vim.fn.getcompletion(link, 'help') == 0 then
      unresolved[#unresolved + 1] = link
    end
  end
  h.eq({}, unresolved, 'links with no tag')
end)

h.test('unit: a bad :Switchboard line says what is accepted; a second load changes nothing', function()
  local child = env.child(env.scratch('bad-command'))
  -- Two copies on the runtimepath, or a manager sourcing plugin/ again, load it twice.
  child:cmd('runtime! plugin/switchboard.lua')
  child:cmd('source ' .. vim.fn.fnameescape(env.root .. '/plugin/switchboard.lua'))
  h.eq(2, child:lua("return vim.fn.exists(':Switchboard')"), ':Switchboard still defined')
  child:cmd('Switchboard frobnicate')
  local note = child:wait_notify("unknown subcommand 'frobnicate'")
  h.contains(note.msg, 'use, list, status, add, remove')
  h.eq(vim.log.levels.ERROR, note.level)
  child:cmd('Switchboard use work home')
  h.eq(vim.log.levels.ERROR, child:wait_notify('too many arguments').level)
  child:cmd('Switchboard add')
  child:wait_notify('usage: :Switchboard add NAME')
  child:cmd('Switchboard remove')
  child:wait_notify('usage: :Switchboard remove NAME')
  -- None of these needed the sidecar, so none started it.
  h.eq('idle', child:lua("return require('switchboard').info().status"), 'sidecar')
end)
