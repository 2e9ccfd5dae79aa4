//! Placeholder until the protocol module lands.
