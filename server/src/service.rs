//! Placeholder until the service module lands.
