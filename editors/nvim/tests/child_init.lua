-- Init file of the Neovim each end-to-end test drives: the plugin on the runtimepath the
-- way a plugin manager puts it there, and vim.notify and the change event recorded so the
-- test can read what a person would have seen.
local root = assert(vim.env.SWITCHBOARD_NVIM_ROOT)
vim.opt.runtimepath:prepend(root)
vim.o.swapfile = false

_G.notes = {}
vim.notify = function(msg, level)
  table.insert(_G.notes, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end

_G.events = {}
vim.api.nvim_create_autocmd('User', {
  pattern = 'SwitchboardChanged',
  callback = function(ev)
    table.insert(_G.events, { t = vim.uv.hrtime(), data = ev.data })
  end,
})
