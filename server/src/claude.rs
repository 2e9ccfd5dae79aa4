//! Placeholder until the claude module lands.
