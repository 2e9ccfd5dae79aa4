//! Claude Code's side of the world: where its config folder and live store are, the login
//! stored there, the locks Claude takes around it, and the `oauthAccount` block that names who
//! is logged in. Everything here mirrors Claude Code's own behaviour; nothing here decides
//! anything about accounts.

pub mod login;
