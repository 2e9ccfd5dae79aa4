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
env.cleanup(failed > 0 and os.getenv('SWITCHBOARD_NVIM_KEEP') ~= '0')
if failed > 0 then
  h.out('scratch folders kept in ' .. env.run_dir)
end
h.out(('%d passed, %d failed'):format(passed, failed))
os.exit((failed > 0 or passed == 0) and 1 or 0)
