--- The world the end-to-end tests run in: the real fake-anthropic service, scratch HOME
--- folders with Claude Code logins in them, the real `switchboard` CLI, and a fresh
--- Neovim per test, driven over its RPC channel, with the plugin on its runtimepath.
---
--- Rule kept here: nothing from the developer's own environment leaks in. Every child
--- process gets a complete, explicit environment without Claude or Anthropic variables,
--- so a test can never touch a real login.

local M = {}

local uv = vim.uv

M.root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
M.switchboard_bin = os.getenv('SWITCHBOARD_BIN')
M.fake_bin = os.getenv('FAKE_ANTHROPIC_BIN')
M.nvim = vim.v.progpath
M.run_dir = vim.fn.tempname() .. "-switchboard-nvim-tests"
vim.fn.mkdir(M.run_dir, 'p', tonumber('700', 8))

local fake = { proc = nil, base = nil, log = M.run_dir .. '/fake-anthropic.log' }

--- Starts fake-anthropic once for the whole run; answers its base URL.
---@return string
function M.fake_base()
  if fake.base then
    return fake.base
  end
  -- scripts/test.sh runs the fake itself, so that it outlives no run.
  local given = os.getenv('FAKE_ANTHROPIC_URL')
  if given and given ~= '' then
    fake.base = given
    return given
  end
  assert(M.fake_bin and M.fake_bin ~= '', 'FAKE_ANTHROPIC_BIN is not set')
  local first_line
  local buffered = ''
  local log = assert(io.open(fake.log, 'a'))
  fake.proc = vim.system({ M.fake_bin, '--listen', '127.0.0.1:0' }, {
    stdout = function(_, data)
      if data and not first_line then
        buffered = buffered .. data
        first_line = buffered:match('^([^\n]*)\n')
      end
    end,
    stderr = function(_, data)
      if data then
        log:write(data)
        log:flush()
      end
    end,
  })
  vim.wait(20000, function()
    return first_line ~= nil
  end, 10)
  local base = first_line and first_line:match('^listening on (http://%S+)')
  assert(base, 'fake-anthropic did not say where it listens: ' .. tostring(first_line))
  fake.base = base
  return base
end

function M.stop_fake()
  if fake.proc then
    fake.proc:kill(15)
    fake.proc:wait(5000)
    fake.proc = nil
    fake.base = nil
  end
end

--- Calls the fake's control API; answers the decoded JSON body.
---@param method string
---@param path string
---@param body table|nil
---@return table
function M.control(method, path, body)
  local url = M.fake_base() .. path
  local args = { 'curl', '-sS', '-X', method, '-w', '\n%{http_code}', url }
  local input = nil
  if body then
    vim.list_extend(args, { '-H', 'content-type: application/json', '--data-binary', '@-' })
    input = vim.json.encode(body)
  end
  local obj = vim.system(args, { text = true, stdin = input }):wait(10000)
  assert(obj.code == 0, ('curl %s %s failed: %s'):format(method, path, obj.stderr))
  local text, status = obj.stdout:match('^(.*)\n(%d+)$')
  assert(status and tonumber(status) < 300, ('%s %s answered %s: %s'):format(method, path, tostring(status), obj.stdout))
  if text == nil or vim.trim(text) == '' then
    return {}
  end
  return vim.json.decode(text, { luanil = { object = true } })
end

local function write_private(path, text)
  vim.fn.mkdir(vim.fn.fnamemodify(path, ':h'), 'p', tonumber('700', 8))
  local fd = assert(uv.fs_open(path .. '.tmp', 'w', tonumber('600', 8)))
  assert(uv.fs_write(fd, text))
  assert(uv.fs_fsync(fd))
  assert(uv.fs_close(fd))
  assert(uv.fs_rename(path .. '.tmp', path))
end

local function read_json(path)
  local f = io.open(path, 'r')
  if not f then
    return nil
  end
  local text = f:read('*a')
  f:close()
  local ok, decoded = pcall(vim.json.decode, text)
  return ok and decoded or nil
end

local names_left = {
  'CLAUDE_CODE_OAUTH_TOKEN',
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR',
  'CLAUDE_CONFIG_DIR',
}

--- A fresh HOME for one test, with the environment every process of that test gets.
---@param name string
---@param extra_env table<string, string>|nil
---@return table scratch `{ home, env, bin }`
function M.scratch(name, extra_env)
  local home = M.run_dir .. '/' .. name:gsub('[^%w]+', '-')
  vim.fn.delete(home, 'rf')
  vim.fn.mkdir(home, 'p', tonumber('700', 8))
  local bin = home .. '/bin'
  vim.fn.mkdir(bin, 'p')
  if M.switchboard_bin and M.switchboard_bin ~= '' then
    -- The plugin's default command is `switchboard` from PATH, as for a user.
    uv.fs_symlink(M.switchboard_bin, bin .. '/switchboard')
  end
  local env = {
    HOME = home,
    PATH = bin .. ':' .. (os.getenv('PATH') or '/usr/bin:/bin'),
    LANG = 'C.UTF-8',
    TMPDIR = home .. '/tmp',
    XDG_CONFIG_HOME = home .. '/.config',
    XDG_DATA_HOME = home .. '/.local/share',
    XDG_STATE_HOME = home .. '/.local/state',
    XDG_CACHE_HOME = home .. '/.cache',
    XDG_RUNTIME_DIR = home .. '/run',
  }
  vim.fn.mkdir(env.TMPDIR, 'p', tonumber('700', 8))
  vim.fn.mkdir(env.XDG_RUNTIME_DIR, 'p', tonumber('700', 8))
  if fake.base or M.fake_bin or os.getenv('FAKE_ANTHROPIC_URL') then
    local base = M.fake_base()
    env.SWITCHBOARD_TOKEN_URL = base .. '/v1/oauth/token'
    env.SWITCHBOARD_API_BASE = base
  end
  for key, value in pairs(extra_env or {}) do
    env[key] = value
  end
  for _, key in ipairs(names_left) do
    if not (extra_env and extra_env[key]) then
      env[key] = nil
    end
  end
  return { home = home, env = env, bin = bin, name = name }
end

--- Runs the real CLI in the scratch environment.
---@param scratch table
---@param args string[]
---@return { code: integer, stdout: string, stderr: string }
function M.cli(scratch, args)
  local cmd = { M.switchboard_bin }
  vim.list_extend(cmd, args)
  return vim.system(cmd, { env = scratch.env, clear_env = true, text = true, cwd = scratch.home }):wait(30000)
end

--- Runs the CLI and insists on exit code 0.
function M.cli_ok(scratch, args)
  local obj = M.cli(scratch, args)
  assert(obj.code == 0, ('switchboard %s exited with %d: %s'):format(table.concat(args, ' '), obj.code, obj.stderr))
  return obj
end

--- Leaves behind what `claude /login` as this person would: a new lineage in the fake,
--- the credentials file and `oauthAccount`.
---@param scratch table
---@param email string
---@param org string
---@return { accountUuid: string, organizationUuid: string, lineage: string }
function M.login(scratch, email, org)
  local account = M.control('POST', '/_control/accounts', { email = email, organizationName = org })
  local login = M.control('POST', '/_control/logins', {
    accountUuid = account.accountUuid,
    organizationUuid = account.organizationUuid,
  })
  local config_dir = scratch.home .. '/.claude'
  write_private(
    config_dir .. '/.credentials.json',
    vim.json.encode({
      claudeAiOauth = {
        accessToken = login.accessToken,
        refreshToken = login.refreshToken,
        expiresAt = login.expiresAt,
        scopes = login.scopes,
        subscriptionType = login.subscriptionType,
        rateLimitTier = login.rateLimitTier,
      },
    })
  )
  local global_path = scratch.home .. '/.claude.json'
  local global = read_json(global_path) or {}
  global.oauthAccount = {
    accountUuid = account.accountUuid,
    emailAddress = email,
    organizationUuid = account.organizationUuid,
    organizationName = org,
  }
  write_private(global_path, vim.json.encode(global))
  return { accountUuid = account.accountUuid, organizationUuid = account.organizationUuid, lineage = login.lineage }
end

--- Logs in as a new person and adds the login under `alias`.
function M.add_account(scratch, alias, email, org)
  local login = M.login(scratch, email, org)
  M.cli_ok(scratch, { 'add', alias })
  return login
end

--- The usual start: `work` and `home` managed, `work` active, `home` previous.
---@param scratch table
---@return { work: table, home: table }
function M.two_accounts(scratch)
  local tag = scratch.name:gsub('[^%w]+', '')
  local work = M.add_account(scratch, 'work', ('ada.%s@work.example'):format(tag), 'Work Org')
  local home = M.add_account(scratch, 'home', ('ada.%s@home.example'):format(tag), 'Home Org')
  M.cli_ok(scratch, { 'use', 'work' })
  return { work = work, home = home }
end

local Child = {}
Child.__index = Child

--- Starts a fresh headless Neovim with the plugin on its runtimepath, in the scratch
--- environment. It is stopped after the test.
---@param scratch table
---@return table child
function M.child(scratch)
  local init = M.root .. '/tests/child_init.lua'
  local env = vim.tbl_extend('force', scratch.env, { SWITCHBOARD_NVIM_ROOT = M.root })
  local chan = vim.fn.jobstart({ M.nvim, '--embed', '--headless', '-i', 'NONE', '-n', '-u', init }, {
    rpc = true,
    env = env,
    clear_env = true,
    cwd = scratch.home,
  })
  assert(chan > 0, 'could not start nvim')
  local child = setmetatable({ chan = chan, scratch = scratch }, Child)
  require('harness').defer(function()
    child:stop()
  end)
  return child
end

--- Runs Lua in the child; `...` arrive there as `...`.
function Child:lua(code, ...)
  return vim.rpcrequest(self.chan, 'nvim_exec_lua', code, { ... })
end

function Child:cmd(command)
  return vim.rpcrequest(self.chan, 'nvim_command', command)
end

--- Waits inside the child until `expr` (a Lua expression) is true; answers its last value
--- and how long it took, failing with `what` on timeout.
function Child:wait_for(expr, timeout_ms, what)
  local result = self:lua(
    [[
    local expr, timeout = ...
    local f = assert(loadstring('return ' .. expr))
    local started = vim.uv.hrtime()
    local ok = vim.wait(timeout, function() return f() and true or false end, 5)
    return { ok = ok, value = f(), ms = (vim.uv.hrtime() - started) / 1e6 }
  ]],
    expr,
    timeout_ms
  )
  if not result.ok then
    error(('%s: not true within %d ms (last: %s)'):format(what or expr, timeout_ms, vim.inspect(result.value)), 2)
  end
  return result.value, result.ms
end

function Child:statusline()
  return self:lua("return require('switchboard').statusline()")
end

--- Waits until the status line reads `text`.
function Child:wait_statusline(text, timeout_ms)
  local ok, value, ms = pcall(self.wait_for, self, ("require('switchboard').statusline() == %q"):format(text), timeout_ms or 10000)
  if not ok then
    error(('status line: expected %q within %d ms, it shows %q'):format(text, timeout_ms or 10000, self:statusline()), 2)
  end
  return value, ms
end

--- Waits for a notification containing `needle`; answers it (`{ msg, level }`).
function Child:wait_notify(needle, timeout_ms)
  return self:wait_for(
    ([[(function() for _, n in ipairs(_G.notes) do if n.msg:find(%q, 1, true) then return n end end end)()]]):format(needle),
    timeout_ms or 10000,
    'a notification containing ' .. needle
  )
end

--- Quits the child. Its sidecar should end on its own when its stdin closes; if it has
--- not after a moment, it is ended by its pid so that no test leaves a process behind.
function Child:stop()
  if not self.chan then
    return
  end
  local ok, pid = pcall(self.lua, self, "return package.loaded['switchboard.client'] and require('switchboard').info().pid")
  pcall(vim.rpcnotify, self.chan, 'nvim_command', 'qall!')
  if vim.fn.jobwait({ self.chan }, 3000)[1] == -1 then
    vim.fn.jobstop(self.chan)
  end
  self.chan = nil
  if ok and type(pid) == 'number' then
    local gone = vim.wait(3000, function()
      if vim.uv.kill(pid, 0) ~= 0 then
        return true
      end
      -- An exited process nobody has reaped yet (a container's init may not) is gone too.
      local stat = io.open(('/proc/%d/stat'):format(pid), 'r')
      local line = stat and stat:read('*l') or ''
      if stat then
        stat:close()
      end
      return line:match('^%d+ %b() Z') ~= nil
    end, 20)
    if not gone then
      vim.uv.kill(pid, 'sigkill')
      error(('the sidecar (pid %d) outlived its Neovim'):format(pid))
    end
  end
end

function M.cleanup(keep)
  M.stop_fake()
  if not keep then
    vim.fn.delete(M.run_dir, 'rf')
  end
end

return M
