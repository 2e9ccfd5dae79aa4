//! The catalog: which accounts Switchboard manages, under which alias, and which one is active.
//!
//! The catalog holds no token. It names each account by its identity (account UUID plus
//! organization UUID, never an email) and keeps what a client shows about it. Its rule is that
//! every alias and every identity appears at most once, which [`Catalog::check`] enforces
//! before the vault writes it.

use serde::{Deserialize, Serialize};

use super::VaultError;

/// The catalog format this build reads and writes. A newer number is refused, never guessed at.
pub const CATALOG_VERSION: u32 = 1;

/// Longest alias accepted, in bytes (aliases are ASCII).
pub const MAX_ALIAS_LEN: usize = 64;

/// Who an account is: the Anthropic account plus the organization it acts in.
///
/// One person with one email in two organizations is two accounts, so both halves count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountId {
    pub account_uuid: String,
    pub organization_uuid: String,
}

impl AccountId {
    pub fn new(account_uuid: impl Into<String>, organization_uuid: impl Into<String>) -> Self {
        AccountId { account_uuid: account_uuid.into(), organization_uuid: organization_uuid.into() }
    }

    /// Checks that both halves look like identifiers the service hands out (ASCII letters,
    /// digits and `-`, at most 64 long), so that neither can smuggle a path into a file name.
    pub fn validate(&self) -> Result<(), VaultError> {
        for part in [&self.account_uuid, &self.organization_uuid] {
            let ok = !part.is_empty()
                && part.len() <= 64
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(VaultError::InvalidId { id: part.escape_debug().to_string() });
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account_uuid, self.organization_uuid)
    }
}

/// One managed account as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRecord {
    pub alias: String,
    #[serde(flatten)]
    pub id: AccountId,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub organization_name: Option<String>,
    #[serde(default)]
    pub subscription_type: Option<String>,
    /// Epoch milliseconds of the last time the profile endpoint accepted the access token.
    #[serde(default)]
    pub validated_at: Option<i64>,
    /// Epoch milliseconds of the last time the snapshot was brought up to date.
    #[serde(default)]
    pub synced_at: Option<i64>,
    /// The refresh token was refused or Claude blanked the login: only a new login helps.
    #[serde(default)]
    pub needs_login: bool,
    /// Epoch milliseconds of the `add` that created this entry.
    pub added_at: i64,
}

/// The whole catalog file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub version: u32,
    #[serde(default)]
    pub accounts: Vec<AccountRecord>,
    /// The alias whose login Claude Code has now, when it is a managed one.
    #[serde(default)]
    pub active: Option<String>,
    /// The alias `use -` goes back to.
    #[serde(default)]
    pub previous: Option<String>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog { version: CATALOG_VERSION, accounts: Vec::new(), active: None, previous: None }
    }
}

impl Catalog {
    pub fn by_alias(&self, alias: &str) -> Option<&AccountRecord> {
        self.accounts.iter().find(|a| a.alias == alias)
    }

    pub fn by_alias_mut(&mut self, alias: &str) -> Option<&mut AccountRecord> {
        self.accounts.iter_mut().find(|a| a.alias == alias)
    }

    pub fn by_id(&self, id: &AccountId) -> Option<&AccountRecord> {
        self.accounts.iter().find(|a| &a.id == id)
    }

    pub fn by_id_mut(&mut self, id: &AccountId) -> Option<&mut AccountRecord> {
        self.accounts.iter_mut().find(|a| &a.id == id)
    }

    /// Every account with this email, compared without regard to case. More than one means
    /// the same person in several organizations: choosing by email is then ambiguous.
    pub fn by_email(&self, email: &str) -> Vec<&AccountRecord> {
        self.accounts
            .iter()
            .filter(|a| a.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)))
            .collect()
    }

    /// The record of the active account, if the active alias names one.
    pub fn active_record(&self) -> Option<&AccountRecord> {
        self.active.as_deref().and_then(|alias| self.by_alias(alias))
    }

    /// Checks the rules a catalog on disk must keep: a known version, valid and unique
    /// aliases, valid and unique identities, and `active` and `previous` naming listed
    /// aliases. The vault refuses to write a catalog that breaks one, so that a bug upstream
    /// shows up as an error instead of as two accounts sharing a snapshot.
    pub fn check(&self) -> Result<(), VaultError> {
        if self.version != CATALOG_VERSION {
            return Err(VaultError::InvalidCatalog(format!(
                "version {} is not {CATALOG_VERSION}",
                self.version
            )));
        }
        let mut aliases = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for record in &self.accounts {
            validate_alias(&record.alias)?;
            record.id.validate()?;
            if !aliases.insert(record.alias.as_str()) {
                return Err(VaultError::InvalidCatalog(format!(
                    "alias {} appears twice",
                    record.alias
                )));
            }
            if !ids.insert(&record.id) {
                return Err(VaultError::InvalidCatalog(format!(
                    "account {} appears twice",
                    record.id
                )));
            }
        }
        for (field, alias) in [("active", &self.active), ("previous", &self.previous)] {
            if let Some(alias) = alias
                && !aliases.contains(alias.as_str())
            {
                return Err(VaultError::InvalidCatalog(format!(
                    "{field} names {alias}, which is not in the catalog"
                )));
            }
        }
        Ok(())
    }
}

/// Checks an alias against the protocol's rule: 1 to 64 of `A-Z a-z 0-9 . _ -`, and not `-`
/// alone (which `account/use` reads as "the previous account").
pub fn validate_alias(alias: &str) -> Result<(), VaultError> {
    let reason = if alias.is_empty() {
        Some("it is empty")
    } else if alias.len() > MAX_ALIAS_LEN {
        Some("it is longer than 64 characters")
    } else if alias == "-" {
        Some("`-` means the previous account")
    } else if !alias.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        Some("only letters, digits, `.`, `_` and `-` are allowed")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(VaultError::InvalidAlias {
            alias: alias.chars().take(80).collect::<String>().escape_debug().to_string(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(alias: &str, account: &str, org: &str, email: &str) -> AccountRecord {
        AccountRecord {
            alias: alias.to_owned(),
            id: AccountId::new(account, org),
            email: Some(email.to_owned()),
            display_name: None,
            organization_name: None,
            subscription_type: None,
            validated_at: None,
            synced_at: None,
            needs_login: false,
            added_at: 1,
        }
    }

    #[test]
    fn aliases_follow_the_protocol_rule() {
        for good in ["work", "a", "A.b_c-9", "--", &"x".repeat(64)] {
            assert!(validate_alias(good).is_ok(), "{good} should be accepted");
        }
        for bad in ["", "-", "a b", "a/b", "..\u{0}", "émile", &"x".repeat(65)] {
            assert!(
                matches!(validate_alias(bad), Err(VaultError::InvalidAlias { .. })),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn identities_refuse_path_tricks() {
        assert!(AccountId::new("8a3c5f0e-1b7d", "4f1d2e3c").validate().is_ok());
        for bad in ["", "../x", "a/b", "a.b", "a\\b", &"a".repeat(65)] {
            assert!(AccountId::new(bad, "org").validate().is_err(), "{bad:?}");
            assert!(AccountId::new("acct", bad).validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lookups_by_alias_id_and_email() {
        let mut catalog = Catalog::default();
        catalog.accounts.push(record("work", "a1", "o1", "ada@example.com"));
        catalog.accounts.push(record("side", "a1", "o2", "Ada@Example.com"));
        catalog.accounts.push(record("home", "a2", "o3", "ada@home.example"));
        assert_eq!(catalog.by_alias("side").unwrap().id, AccountId::new("a1", "o2"));
        assert_eq!(catalog.by_id(&AccountId::new("a2", "o3")).unwrap().alias, "home");
        assert!(catalog.by_id(&AccountId::new("a2", "o1")).is_none());
        let same_person: Vec<_> =
            catalog.by_email("ada@example.com").iter().map(|r| r.alias.as_str()).collect();
        assert_eq!(same_person, ["work", "side"]);
        catalog.by_alias_mut("home").unwrap().needs_login = true;
        assert!(catalog.by_id(&AccountId::new("a2", "o3")).unwrap().needs_login);
    }

    #[test]
    fn check_refuses_duplicates_and_dangling_names() {
        let mut catalog = Catalog::default();
        catalog.accounts.push(record("work", "a1", "o1", "ada@example.com"));
        catalog.active = Some("work".into());
        assert!(catalog.check().is_ok());

        let mut twice = catalog.clone();
        twice.accounts.push(record("work", "a2", "o2", "x@example.com"));
        assert!(twice.check().unwrap_err().to_string().contains("alias work appears twice"));

        let mut same_id = catalog.clone();
        same_id.accounts.push(record("other", "a1", "o1", "x@example.com"));
        assert!(same_id.check().unwrap_err().to_string().contains("a1/o1 appears twice"));

        let mut dangling = catalog.clone();
        dangling.previous = Some("gone".into());
        assert!(dangling.check().unwrap_err().to_string().contains("previous names gone"));
    }

    #[test]
    fn records_serialize_flat_and_camel_case() {
        let value = serde_json::to_value(record("work", "a1", "o1", "ada@example.com")).unwrap();
        assert_eq!(value["accountUuid"], "a1");
        assert_eq!(value["organizationUuid"], "o1");
        assert_eq!(value["needsLogin"], false);
        assert_eq!(value["addedAt"], 1);
    }
}
