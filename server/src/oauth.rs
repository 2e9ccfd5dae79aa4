//! Placeholder until the oauth module lands.
