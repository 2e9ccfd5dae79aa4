-- Entry point of the plugin's test suite: `nvim -l tests/run.lua [FILTER]`.
-- Unit tests need nothing else; end-to-end tests need SWITCHBOARD_BIN and
-- FAKE_ANTHROPIC_BIN. scripts/test.sh sets them up.
local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
package.path = here .. '/?.lua;' .. here .. '/../lua/?.lua;' .. here .. '/../lua/?/init.lua;' .. package.path

local h = require('harness')
local env = require('env')

dofile(here .. '/unit_test.lua')
if os.getenv('SWITCHBOARD_NVIM_UNIT_ONLY') ~= '1' then
  dofile(here .. '/e2e_test.lua')
end

local filter = _G.arg and _G.arg[1] or nil
local passed, failed = h.run(filter)
local keep = failed > 0 and os.getenv('SWITCHBOARD_NVIM_KEEP') ~= '0'
if keep then
  -- Outside Neovim's own temporary folder, which goes away when it quits.
  local kept = vim.fn.fnamemodify(os.getenv('TMPDIR') or '/tmp', ':p') .. vim.fn.fnamemodify(env.run_dir, ':t')
  vim.fn.rename(env.run_dir, kept)
  h.out('scratch folders kept in ' .. kept)
end
env.cleanup(keep)
h.out(('%d passed, %d failed'):format(passed, failed))
-- :cquit rather than os.exit, so that Neovim removes its temporary folder on the way out.
vim.cmd(((failed > 0 or passed == 0) and 'cquit 1' or 'qall!'))
