//! Placeholder until the watch module lands.
