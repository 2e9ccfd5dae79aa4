//! Text for people: the tables and sentences the terminal commands print.

use std::fmt::Write;

use crate::protocol::{
    Account, AccountState, ListResult, StatusResult, StoreInfo, UnmanagedLogin, UseResult,
    VaultInfo,
};
use crate::service::now_ms;

pub fn list(view: &ListResult) -> String {
    let mut out = String::new();
    if view.accounts.is_empty() {
        out.push_str(
            "No accounts yet. Log in with `claude /login`, then `switchboard add NAME`.\n",
        );
    } else {
        let rows: Vec<[String; 6]> = view
            .accounts
            .iter()
            .map(|a| {
                [
                    format!("{} {}", if a.active { "*" } else { " " }, a.alias),
                    a.email.clone().unwrap_or_default(),
                    a.organization_name.clone().unwrap_or_default(),
                    a.subscription_type.clone().unwrap_or_default(),
                    state_word(a.state).to_owned(),
                    a.expires_at.map(relative).unwrap_or_default(),
                ]
            })
            .collect();
        let header =
            ["  ACCOUNT", "EMAIL", "ORGANIZATION", "PLAN", "STATE", "EXPIRES"].map(String::from);
        table(&mut out, &header, &rows);
    }
    if let Some(unmanaged) = &view.unmanaged {
        out.push_str(&unmanaged_line(unmanaged));
    }
    out
}

pub fn status(status: &StatusResult) -> String {
    let mut out = String::new();
    match &status.account {
        Some(account) => {
            let _ = writeln!(out, "{}", describe(account));
            let _ = writeln!(out, "  state:      {}", state_word(account.state));
            if let Some(at) = account.expires_at {
                let _ = writeln!(out, "  expires:    {}", relative(at));
            }
            if let Some(at) = account.validated_at {
                let _ = writeln!(out, "  validated:  {}", relative(at));
            }
            if let Some(at) = account.synced_at {
                let _ = writeln!(out, "  synced:     {}", relative(at));
            }
            if let Some(fingerprint) = &account.fingerprint {
                let _ = writeln!(out, "  token:      {fingerprint} (fingerprint)");
            }
        }
        None => out.push_str("No managed account is active in Claude Code.\n"),
    }
    let store = match &status.store {
        StoreInfo::File { path } => path.clone(),
        StoreInfo::Keychain { service, account } => format!("Keychain item {service} ({account})"),
    };
    let _ = writeln!(out, "  store:      {store}");
    if let Some(vault) = &status.vault {
        let vault = match vault {
            VaultInfo::File { path } => path.clone(),
            VaultInfo::Keychain { service } => format!("Keychain items of service {service}"),
            VaultInfo::Keyring { service } => format!("keyring entries of service {service}"),
        };
        let _ = writeln!(out, "  snapshots:  {vault}");
    }
    let _ = writeln!(out, "  config:     {}", status.global_config);
    if !status.shadowed_by.is_empty() {
        let _ = writeln!(
            out,
            "  warning:    Claude Code ignores the stored login while {} is set",
            status.shadowed_by.join(", ")
        );
    }
    for warning in &status.store_warnings {
        let _ = writeln!(out, "  warning:    {}", warning.message);
    }
    if let Some(unmanaged) = &status.unmanaged {
        out.push_str(&unmanaged_line(unmanaged));
    }
    out
}

pub fn used(result: &UseResult) -> String {
    let mut out = format!("Switched to {}.\n", describe(&result.active));
    let _ = writeln!(out, "{}.", capitalized(&result.sessions.message));
    out
}

pub fn added(account: &Account) -> String {
    format!("Added {}.\n", describe(account))
}

fn describe(account: &Account) -> String {
    let mut detail: Vec<&str> = Vec::new();
    detail.extend(account.email.as_deref());
    detail.extend(account.organization_name.as_deref());
    detail.extend(account.subscription_type.as_deref());
    if detail.is_empty() {
        format!("'{}'", account.alias)
    } else {
        format!("'{}' ({})", account.alias, detail.join(", "))
    }
}

fn unmanaged_line(login: &UnmanagedLogin) -> String {
    let who = login.email.as_deref().unwrap_or("an account Switchboard does not know");
    format!(
        "Claude Code is logged in as {who}, which Switchboard does not manage: \
         `switchboard add NAME` keeps it.\n"
    )
}

fn state_word(state: AccountState) -> &'static str {
    match state {
        AccountState::Ok => "ok",
        AccountState::Expiring => "expiring",
        AccountState::Expired => "expired",
        AccountState::NeedsLogin => "needs login",
        AccountState::Unknown => "unknown",
    }
}

/// "in 3h 12m" or "12m ago".
fn relative(at_ms: i64) -> String {
    let delta = (at_ms - now_ms()) / 1000;
    if delta.abs() < 5 {
        return "just now".to_owned();
    }
    let span = delta.unsigned_abs();
    let text = match span {
        0..60 => format!("{span}s"),
        60..3600 => format!("{}m", span / 60),
        3600..86400 => format!("{}h {}m", span / 3600, span % 3600 / 60),
        _ => format!("{}d {}h", span / 86400, span % 86400 / 3600),
    };
    if delta >= 0 { format!("in {text}") } else { format!("{text} ago") }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn table(out: &mut String, header: &[String; 6], rows: &[[String; 6]]) {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let line: Vec<String> =
            row.iter().zip(widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert!(relative(now_ms() + 2 * 3600 * 1000 + 5 * 60 * 1000 + 500).starts_with("in 2h 5m"));
        assert_eq!(relative(now_ms() - 12 * 60 * 1000 - 500), "12m ago");
        assert_eq!(relative(now_ms() - 1000), "just now");
    }
}
