//! monodit-server library.
