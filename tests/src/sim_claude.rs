//! Placeholder until the simulated Claude lands.
