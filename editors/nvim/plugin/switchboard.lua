-- Defines :Switchboard and nothing else; the plugin's modules load on first use.
if vim.g.loaded_switchboard == 1 then
  return
end
vim.g.loaded_switchboard = 1

if vim.fn.has('nvim-0.10') ~= 1 then
  vim.notify_once('switchboard.nvim needs Neovim 0.10 or newer', vim.log.levels.WARN)
  return
end

vim.api.nvim_create_user_command('Switchboard', function(opts)
  require('switchboard.commands').run(opts)
end, {
  nargs = '*',
  bang = true,
  desc = 'Switch Claude Code between accounts',
  complete = function(arglead, cmdline)
    return require('switchboard.commands').complete(arglead, cmdline)
  end,
})
