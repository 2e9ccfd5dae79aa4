--- A lualine component named `switchboard`: `lualine_x = { 'switchboard' }`. It shows the
--- same cached text as `require('switchboard').statusline()` and never waits.

local component = require('lualine.component'):extend()

function component:update_status()
  return require('switchboard').statusline()
end

return component
