//! Placeholder until the rpc module lands.
