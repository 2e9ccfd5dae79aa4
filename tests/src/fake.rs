//! Placeholder until the fake lands.
