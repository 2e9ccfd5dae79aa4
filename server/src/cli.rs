//! Placeholder until the cli module lands.
