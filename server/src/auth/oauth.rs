//! OAuth login (GitHub, Google).
