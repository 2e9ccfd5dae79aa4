//! Placeholder until the vault module lands.
